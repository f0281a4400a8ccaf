"""Operators: Generate Ambisonics (selected movie strips), Cancel, Test connection.

The generate operator runs the pure stages (range, direction, request) and then the host stage
(submit), turning every domain error into ``self.report``: strip without a file, daemon not running,
file outside the daemon's allowed folders. Waiting happens in a worker thread (``jobs``).
"""

from __future__ import annotations

import os
from typing import Any

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty

from . import jobs, preferences, scene_data

DIRECTION_MODES = (
    (
        "CAMERA",
        "Scene Camera",
        "Follow the active camera of the scene, frame by frame (markers switch cameras)",
    ),
    ("FIXED", "Fixed", "One yaw/pitch for the whole strip"),
)


class StripProblem(Exception):
    """A selected strip cannot be sent (no file, missing file, bad range, no camera)."""


class VISAGE_OT_generate_ambisonics(bpy.types.Operator):
    """Generate a first-order ambisonic (AmbiX) sound strip for each selected movie strip"""

    bl_idname = "visage.generate_ambisonics"
    bl_label = "Generate Ambisonics"
    bl_options = {"REGISTER"}

    direction: EnumProperty(name="Direction", items=DIRECTION_MODES, default="CAMERA")  # type: ignore[valid-type]
    yaw: FloatProperty(  # type: ignore[valid-type]
        name="Yaw", description="Degrees, positive to the left (AmbiX)", default=0.0, min=-180.0, max=180.0
    )
    pitch: FloatProperty(  # type: ignore[valid-type]
        name="Pitch", description="Degrees, positive up", default=0.0, min=-90.0, max=90.0
    )
    front_object: StringProperty(  # type: ignore[valid-type]
        name="Front",
        description="Object whose local +Y axis is the front of the sound field (empty: world +Y)",
        default="",
    )
    seed: IntProperty(name="Seed", description="-1: random", default=-1, min=-1)  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: Any) -> bool:
        if scene_data.selected_movie_strips(context):
            return True
        cls.poll_message_set("Select one or more movie strips")
        return False

    def invoke(self, context: Any, event: Any) -> set[str]:
        return context.window_manager.invoke_props_dialog(self)

    def draw(self, context: Any) -> None:
        layout = self.layout
        layout.prop(self, "direction", expand=True)
        if self.direction == "CAMERA":
            layout.prop_search(self, "front_object", bpy.data, "objects")
        else:
            layout.prop(self, "yaw")
            layout.prop(self, "pitch")
        layout.prop(self, "seed")

    def execute(self, context: Any) -> set[str]:
        from .common import host_client

        prefs = preferences.get(context)
        client = host_client.bridge()
        try:
            address = host_client.locate_daemon(prefs.daemon_address)
        except ValueError as error:
            self.report({"ERROR"}, f"Bad daemon address in the add-on preferences: {error}")
            return {"CANCELLED"}
        if not host_client.is_loopback(address.host) and not bpy.app.online_access:
            self.report(
                {"ERROR"},
                f"The daemon at {address.host} is on another machine and Blender's online access is off "
                "(Preferences > System > Network > Allow Online Access)",
            )
            return {"CANCELLED"}
        folder = preferences.output_folder(context)
        submitted = 0
        for strip in scene_data.selected_movie_strips(context):
            job_id = host_client.new_job_id("blender")
            try:
                request = self._request(context, strip, folder, job_id, prefs.guidance)
            except StripProblem as problem:
                self.report({"ERROR"}, str(problem))
                continue
            job = host_client.HostJob(request, address, job_id=job_id, token=prefs.token or None)
            try:
                job.start()
            except (client.JobFailed, client.DaemonUnavailable) as error:
                self.report({"ERROR"}, f"{strip.name}: {host_client.describe_error(error, address)}")
                if isinstance(error, client.DaemonUnavailable):
                    break  # the other strips would wait for the same silence
                continue
            jobs.add(
                jobs.ActiveJob(
                    job=job,
                    scene_name=scene_data.sequencer_scene(context).name,
                    strip_name=strip.name,
                    record_frame=int(strip.frame_final_start),
                    source_channel=int(strip.channel),
                    mute_ambix_with_preview=prefs.mute_ambix_with_preview,
                )
            )
            submitted += 1
        if not submitted:
            return {"CANCELLED"}
        self.report({"INFO"}, f"Generating ambisonics for {submitted} strip(s); progress: sidebar > ViSAGe")
        return {"FINISHED"}

    def _request(self, context: Any, strip: Any, folder: str, job_id: str, guidance: float) -> Any:
        from .common import direction_curve, host_client, media_range, result_files

        path = scene_data.media_path(strip)
        if not path:
            raise StripProblem(f"Strip {strip.name!r} has no media file")
        if not os.path.isfile(path):
            raise StripProblem(f"Strip {strip.name!r}: media file not found: {path}")
        try:
            timing = scene_data.strip_timing(strip)
            span = timing.media_range
        except media_range.RangeError as error:
            raise StripProblem(f"Strip {strip.name!r}: {error}") from None
        paths = result_files.result_paths(folder, strip.name, job_id)
        curve_path = None
        if self.direction == "CAMERA":
            front = None
            if self.front_object:
                front = bpy.data.objects.get(self.front_object)
                if front is None:
                    raise StripProblem(f"Front object {self.front_object!r} not found")
            try:
                samples = scene_data.sample_camera_curve(context.scene, timing, front=front)
            except ValueError as error:
                raise StripProblem(f"Strip {strip.name!r}: {error}") from None
            yaw, pitch = direction_curve.mean_direction(samples, span.start, span.end)
            if len(samples) > 1:
                curve_path = str(direction_curve.write_curve(paths.curve, samples))
        else:
            yaw, pitch = self.yaw, self.pitch
        return host_client.JobRequest(
            media=path,
            start_s=span.start,
            end_s=span.end,
            yaw_deg=yaw,
            pitch_deg=pitch,
            output=str(paths.wav),
            direction_curve=curve_path,
            guidance=guidance,
            seed=None if self.seed < 0 else self.seed,
            label=strip.name,
        )


class VISAGE_OT_cancel_jobs(bpy.types.Operator):
    """Cancel a running ambisonics job (or all of them)"""

    bl_idname = "visage.cancel_jobs"
    bl_label = "Cancel"
    bl_options = {"REGISTER", "INTERNAL"}

    job_id: StringProperty(name="Job", default="", options={"SKIP_SAVE"})  # type: ignore[valid-type]

    def execute(self, context: Any) -> set[str]:
        count = jobs.cancel(self.job_id or None)
        if not count:
            self.report({"WARNING"}, "No running ViSAGe job to cancel")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Cancelling {count} job(s)")
        return {"FINISHED"}


class VISAGE_OT_test_connection(bpy.types.Operator):
    """Find the ViSAGe daemon and ask for its model and queue"""

    bl_idname = "visage.test_connection"
    bl_label = "Test Connection"
    bl_options = {"REGISTER", "INTERNAL"}

    def execute(self, context: Any) -> set[str]:
        from .common import host_client

        prefs = preferences.get(context)
        check = host_client.check_connection(prefs.daemon_address, token=prefs.token or None)
        self.report({"INFO"} if check.ok else {"ERROR"}, check.message)
        return {"FINISHED"} if check.ok else {"CANCELLED"}
