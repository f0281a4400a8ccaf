"""Operators: Generate Ambisonics (selected movie strips), Cancel, Test connection.

A 360° strip (``common.panorama``: the user says so, or its file's spherical metadata, or an
equirectangular panoramic camera as the scene's camera or the front) is sent with the daemon option
``equirect``, and its direction is relative to the panorama's front.

The generate operator runs the pure stages (range, direction, request) and then the host stage
(submit), turning every domain error into ``self.report``: strip without a file, daemon not running,
file outside the daemon's allowed folders. Sampling the camera runs from a modal timer, a slice per
tick, with the progress on the cursor and Esc to cancel, so that a long strip does not freeze Blender
(in background mode, where no event reaches a modal handler, it runs at once). Waiting for the
daemon happens in a worker thread (``jobs``).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty

from . import jobs, preferences, scene_data
from .common import media_range, panorama, result_files, spherical_movie

SAMPLING_TICK_S = 0.01  # modal timer interval while the camera is sampled
SAMPLING_SLICE_S = 0.03  # camera sampling per tick: the rest of the time Blender handles its events

DIRECTION_MODES = (
    (
        "CAMERA",
        "Scene Camera",
        "Follow the active camera of the scene, frame by frame (markers switch cameras)",
    ),
    ("FIXED", "Fixed", "One yaw/pitch for the whole strip"),
)
PANORAMA_MODES = (
    (
        "AUTO",
        "Auto",
        "360° when the movie's metadata says so or the scene's camera (or the front) is an "
        "equirectangular panoramic camera",
    ),
    ("ON", "360°", "The movie is an equirectangular 360° panorama; directions are relative to its centre"),
    (
        "OFF",
        "Flat",
        "The movie is what the camera sees (a file whose own metadata says 360° is still read as 360° by "
        "the daemon)",
    ),
)


class StripProblem(Exception):
    """A selected strip cannot be sent (no file, missing file, bad range, no camera)."""


@dataclass
class StripWork:
    """A selected strip as read when the operator ran: what its request needs once the camera is sampled."""

    name: str
    path: str
    timing: media_range.StripTiming
    record_frame: int
    channel: int
    paths: result_files.ResultPaths
    job_id: str
    sampler: scene_data.CameraSampler | None  # None: a fixed direction
    equirect: bool  # sent as a 360° panorama


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
    panorama: EnumProperty(name="360° Video", items=PANORAMA_MODES, default="AUTO")  # type: ignore[valid-type]
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
        layout.prop(self, "panorama")
        layout.prop(self, "seed")

    def execute(self, context: Any) -> set[str]:
        from .common import host_client

        prefs = preferences.get(context)
        try:
            self._address = host_client.locate_daemon(prefs.daemon_address)
        except ValueError as error:
            self.report({"ERROR"}, f"Bad daemon address in the add-on preferences: {error}")
            return {"CANCELLED"}
        if not host_client.is_loopback(self._address.host) and not bpy.app.online_access:
            self.report(
                {"ERROR"},
                f"The daemon at {self._address.host} is on another machine and Blender's online access is "
                "off (Preferences > System > Network > Allow Online Access)",
            )
            return {"CANCELLED"}
        folder = preferences.output_folder(context)
        self._work: list[StripWork] = []
        try:
            for strip in scene_data.selected_movie_strips(context):
                try:
                    self._work.append(self._read(context, strip, folder))
                except StripProblem as problem:
                    self.report({"ERROR"}, str(problem))
        except BaseException:
            self._close_samplers()
            raise
        if not self._work:
            return {"CANCELLED"}
        if bpy.app.background or context.window is None or all(w.sampler is None for w in self._work):
            try:  # no UI to keep responsive (background mode: no events for a modal handler) or no camera
                for work in self._work:
                    if work.sampler is not None:
                        work.sampler.step(math.inf)
            finally:
                self._close_samplers()
            return self._submit(context)
        window_manager = context.window_manager
        self._timer = window_manager.event_timer_add(SAMPLING_TICK_S, window=context.window)
        window_manager.modal_handler_add(self)
        window_manager.progress_begin(0, 100)
        return {"RUNNING_MODAL"}

    def modal(self, context: Any, event: Any) -> set[str]:
        if event.type == "ESC":
            self._end_modal(context)
            self.report({"WARNING"}, "Camera sampling cancelled: nothing was sent")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}  # the rest of Blender keeps working while the camera is sampled
        deadline = time.monotonic() + SAMPLING_SLICE_S
        samplers = [work.sampler for work in self._work if work.sampler is not None]
        try:
            current = next((sampler for sampler in samplers if not sampler.done), None)
            if current is not None:
                current.step(deadline)
        except (ReferenceError, ValueError) as error:  # a camera or the scene was deleted meanwhile
            self._end_modal(context)
            self.report({"ERROR"}, f"Camera sampling stopped: {error}")
            return {"CANCELLED"}
        context.window_manager.progress_update(100 * self._progress())
        if not all(sampler.done for sampler in samplers):
            return {"RUNNING_MODAL"}
        self._end_modal(context, keep_samples=True)
        return self._submit(context)

    def _progress(self) -> float:
        samplers = [work.sampler for work in self._work if work.sampler is not None]
        return sum(sampler.progress for sampler in samplers) / len(samplers)

    def _end_modal(self, context: Any, *, keep_samples: bool = False) -> None:
        window_manager = context.window_manager
        window_manager.event_timer_remove(self._timer)
        window_manager.progress_end()
        self._close_samplers()
        if not keep_samples:
            self._work = []

    def _close_samplers(self) -> None:
        for work in self._work:
            if work.sampler is not None:
                work.sampler.close()

    def _read(self, context: Any, strip: Any, folder: str) -> StripWork:
        """What a strip's request needs, read now (the strip may change while the camera is sampled)."""
        from .common import host_client

        path = scene_data.media_path(strip)
        if not path:
            raise StripProblem(f"Strip {strip.name!r} has no media file")
        if not os.path.isfile(path):
            raise StripProblem(f"Strip {strip.name!r}: media file not found: {path}")
        try:
            timing = scene_data.strip_timing(strip, scene_data.sequencer_scene(context))
            timing.media_range  # noqa: B018  (validates the range now)
        except media_range.RangeError as error:
            raise StripProblem(f"Strip {strip.name!r}: {error}") from None
        if timing.speed != 1:
            self._warn(
                f"Strip {strip.name!r} plays its {float(timing.media_rate):.5g}-fps movie at "
                f"{float(timing.speed):.4g}x speed in this {float(timing.scene_rate):.5g}-fps scene (it was "
                "added without adjusting the playback rate): the ambisonics, made in the movie's own time, "
                "will drift from the picture. Re-add it with Add > Movie, or set the scene's frame rate to "
                "the movie's"
            )
        sampler = front = None
        if self.direction == "CAMERA":
            if self.front_object:
                front = bpy.data.objects.get(self.front_object)
                if front is None:
                    raise StripProblem(f"Front object {self.front_object!r} not found")
            try:
                sampler = scene_data.CameraSampler(context.scene, timing, front=front)
            except ValueError as error:
                raise StripProblem(f"Strip {strip.name!r}: {error}") from None
        job_id = host_client.new_job_id("blender")
        return StripWork(
            name=strip.name,
            path=path,
            timing=timing,
            record_frame=int(strip.frame_final_start),
            channel=int(strip.channel),
            paths=result_files.result_paths(folder, strip.name, job_id),
            job_id=job_id,
            sampler=sampler,
            equirect=self._is_panorama(context, path, front),
        )

    def _is_panorama(self, context: Any, path: str, front: Any) -> bool:
        """Whether the strip goes as a 360° panorama (``AUTO``: the file's metadata, or the scene)."""
        metadata = None
        if self.panorama == "AUTO":
            try:
                metadata = spherical_movie.read_spherical_movie(path)
            except OSError:  # unreadable now: the daemon will say why when it opens the file
                metadata = None
        renders = scene_data.is_equirect_camera(context.scene.camera) or scene_data.is_equirect_camera(front)
        return panorama.is_panorama(
            self.panorama, has_spherical_metadata=metadata is not None, scene_renders_panorama=renders
        )

    def _warn(self, text: str) -> None:
        self.report({"WARNING"}, text)
        jobs.notify("WARNING", text)  # also in the sidebar panel: a report from a dialog is easy to miss

    def _submit(self, context: Any) -> set[str]:
        from .common import direction_curve, host_client

        prefs = preferences.get(context)
        client = host_client.bridge()
        submitted = 0
        for work in self._work:
            span = work.timing.media_range
            curve_path = None
            if work.sampler is not None:
                samples = work.sampler.curve()
                yaw, pitch = direction_curve.mean_direction(samples, span.start, span.end)
                if len(samples) > 1:
                    curve_path = str(direction_curve.write_curve(work.paths.curve, samples))
            else:
                yaw, pitch = self.yaw, self.pitch
            request = host_client.JobRequest(
                media=work.path,
                start_s=span.start,
                end_s=span.end,
                yaw_deg=yaw,
                pitch_deg=pitch,
                output=str(work.paths.wav),
                direction_curve=curve_path,
                guidance=prefs.guidance,
                seed=None if self.seed < 0 else self.seed,
                label=work.name,
                equirect=work.equirect,
            )
            job = host_client.HostJob(request, self._address, job_id=work.job_id, token=prefs.token or None)
            try:
                job.start()
            except (client.JobFailed, client.DaemonUnavailable) as error:
                self.report({"ERROR"}, f"{work.name}: {host_client.describe_error(error, self._address)}")
                if isinstance(error, client.DaemonUnavailable):
                    break  # the other strips would wait for the same silence
                continue
            jobs.add(
                jobs.ActiveJob(
                    job=job,
                    scene_name=scene_data.sequencer_scene(context).name,
                    strip_name=work.name,
                    record_frame=work.record_frame,
                    source_channel=work.channel,
                    mute_ambix_with_preview=prefs.mute_ambix_with_preview,
                )
            )
            submitted += 1
        self._work = []
        if not submitted:
            return {"CANCELLED"}
        self.report({"INFO"}, f"Generating ambisonics for {submitted} strip(s); progress: sidebar > ViSAGe")
        return {"FINISHED"}


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
