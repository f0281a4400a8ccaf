"""What the extension reads from and writes to Blender data, across the 4.2 -> 5.x API changes.

Blender API drift handled here (and only here):

* ``SequenceEditor.strips`` (4.4+) vs ``.sequences`` (4.2/4.3; removed in 5.0);
* ``context.selected_strips`` (4.4+) vs ``context.selected_sequences`` (older);
* ``context.sequencer_scene`` (5.0+: the scene whose sequencer is edited; the 3D scene is
  ``context.scene``);
* a camera's panorama type: ``camera.data.panorama_type`` (4.x, 5.x) vs ``camera.data.cycles.panorama_type``
  (before 4.0).

Everything else is computed by the bpy-free modules in ``common/``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import bpy

from .common import camera, camera_sampling, direction_curve, media_range, panorama

MOVIE = "MOVIE"


def sequencer_scene(context: Any) -> Any:
    """The scene whose sequencer the user edits (``context.sequencer_scene`` from 5.0 on)."""
    return getattr(context, "sequencer_scene", None) or context.scene


def strip_collection(editor: Any) -> Any:
    """Top-level strips of a sequence editor: ``strips`` (4.4+) or ``sequences`` (before).

    Not ``getattr(editor, "strips", None) or editor.sequences``: an empty ``strips`` is falsy, and
    5.x has no ``sequences``.
    """
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def selected_movie_strips(context: Any) -> list[Any]:
    """Selected movie strips, whichever API the running Blender has."""
    selected = getattr(context, "selected_strips", None)
    if selected is None:
        selected = getattr(context, "selected_sequences", None)
    if selected is None:
        editor = sequencer_scene(context).sequence_editor
        selected = [] if editor is None else [s for s in strip_collection(editor) if s.select]
    return [strip for strip in selected if strip.type == MOVIE]


def media_path(strip: Any) -> str:
    """Absolute, normalised path of a movie strip's file ("" when the strip has none)."""
    raw = getattr(strip, "filepath", "") or ""
    if not raw:
        return ""
    return os.path.normpath(bpy.path.abspath(raw, library=strip.id_data.library))


def media_frame_count(path: str) -> int | None:
    """The movie's own frame count (None if Blender cannot open it), via a temporary MovieClip."""
    existing = {clip.name for clip in bpy.data.movieclips}
    try:
        clip = bpy.data.movieclips.load(path, check_existing=True)
    except RuntimeError:
        return None
    try:
        return int(clip.frame_duration) or None
    finally:
        if clip.name not in existing:
            bpy.data.movieclips.remove(clip)


def strip_timing(strip: Any, scene: Any) -> media_range.StripTiming:
    """Scene frames -> media seconds for a movie strip (see `media_range.blender_strip_timing`)."""
    return media_range.blender_strip_timing(
        frame_start=strip.frame_start,
        frame_final_start=strip.frame_final_start,
        frame_final_end=strip.frame_final_end,
        frame_duration=strip.frame_duration,
        media_frame_count=media_frame_count(media_path(strip)),
        movie_fps=strip.fps,
        scene_fps=scene_rate(scene),
        animation_offset_start=strip.animation_offset_start,
        animation_offset_end=strip.animation_offset_end,
    )


def scene_rate(scene: Any) -> Fraction:
    return media_range.parse_rate(scene.render.fps, scene.render.fps_base)


def is_equirect_camera(obj: Any) -> bool:
    """Whether an object is a camera rendering a full equirectangular panorama."""
    if obj is None or obj.type != "CAMERA":
        return False
    data = obj.data
    kind = getattr(data, "panorama_type", None)
    if kind is None:  # before 4.0: a Cycles camera setting
        kind = getattr(getattr(data, "cycles", None), "panorama_type", None)
    return panorama.is_equirect_camera(data.type, kind)


def front_reference(obj: Any, matrix: Any) -> camera.Matrix3:
    """The front frame an object stands for: a panoramic camera's picture, else the object's own axes."""
    rows = _rows(matrix)
    return panorama.picture_front(rows) if is_equirect_camera(obj) else rows


def _rows(matrix: Any) -> camera.Matrix3:
    m = matrix.to_3x3()
    return tuple(tuple(float(m[r][c]) for c in range(3)) for r in range(3))  # type: ignore[return-value]


SAMPLING_SCENE = ".visage camera sampling"  # the temporary scene (a leading dot hides it in lists)


class CameraSampler:
    """The active camera's yaw/pitch over a strip, sampled a slice at a time, evaluating only cameras.

    `camera_sampling.plan_samples` picks the frames (enough per model window, bounded). The cameras the
    scene's markers switch to, and the front object, are linked into a temporary scene and evaluated
    there: its depsgraph holds them and what they depend on (parents, constraint and driver targets), not
    the rest of the user's scene (heavy modifiers, simulations), whose frame is never changed. Which
    camera is active where follows Blender's marker rule (`camera_sampling.marker_camera`).

    Args:
        scene: the scene whose camera and markers are sampled.
        timing: the strip's frame -> media time mapping.
        front: object whose local +Y is the front, or an equirectangular camera whose picture's centre is
            (None: world +Y; a panoramic active camera is then its own front).

    Raises:
        ValueError: the scene has no active camera at some sampled frame.
    """

    def __init__(self, scene: Any, timing: media_range.StripTiming, *, front: Any = None) -> None:
        self._timing, self._front = timing, front
        first, end = math.floor(timing.frame_final_start), math.ceil(timing.frame_final_end)
        self._plan = camera_sampling.plan_samples(first, end, timing.scene_rate)
        markers = [
            (marker.frame, marker.camera)
            for marker in scene.timeline_markers
            if marker.camera is not None and not marker.camera.hide_render
        ]
        self._cameras = []
        for point in self._plan:
            active = camera_sampling.marker_camera(markers, math.floor(point.eval_frame)) or scene.camera
            if active is None:
                raise ValueError(f"scene {scene.name!r} has no active camera at frame {point.eval_frame:g}")
            self._cameras.append(active)
        self._rows: list[tuple[float, float, float]] = []
        self._yaw = 0.0
        self._temp: Any = bpy.data.scenes.new(SAMPLING_SCENE)
        try:
            render, source = self._temp.render, scene.render
            render.fps, render.fps_base = source.fps, source.fps_base
            render.frame_map_old, render.frame_map_new = source.frame_map_old, source.frame_map_new
            for obj in {*self._cameras, *([front] if front is not None else [])}:
                self._temp.collection.objects.link(obj)
            view_layer = self._temp.view_layers[0]
            view_layer.update()  # makes the depsgraph, evaluated by frame_set
            self._depsgraph = view_layer.depsgraph
        except BaseException:
            self.close()
            raise

    @property
    def progress(self) -> float:
        return len(self._rows) / len(self._plan)

    @property
    def done(self) -> bool:
        return len(self._rows) == len(self._plan)

    def step(self, deadline: float) -> bool:
        """Sample until ``time.monotonic()`` passes ``deadline`` (at least one frame); True when done."""
        while not self.done:
            point = self._plan[len(self._rows)]
            whole = math.floor(point.eval_frame)
            self._temp.frame_set(whole, subframe=point.eval_frame - whole)
            active = self._cameras[len(self._rows)]
            view = active.evaluated_get(self._depsgraph).matrix_world
            reference = None
            if self._front is not None:
                front = self._front.evaluated_get(self._depsgraph).matrix_world
                reference = front_reference(self._front, front)
            elif is_equirect_camera(active):
                reference = front_reference(active, view)
            self._yaw, pitch = camera.camera_angles(_rows(view), reference, fallback_yaw_deg=self._yaw)
            self._rows.append((float(self._timing.media_time(point.hold_frame)), self._yaw, pitch))
            if time.monotonic() >= deadline:
                break
        return self.done

    def curve(self) -> tuple[direction_curve.CurveSample, ...]:
        """The samples as a direction curve (all frames must have been sampled)."""
        if not self.done:
            raise RuntimeError("camera sampling is not finished")
        return direction_curve.build_curve(self._rows)

    def close(self) -> None:
        """Remove the temporary scene (the cameras stay in the user's scene); safe to call twice."""
        if self._temp is not None:
            bpy.data.scenes.remove(self._temp)
            self._temp = None


def sample_camera_curve(
    scene: Any, timing: media_range.StripTiming, *, front: Any = None
) -> tuple[direction_curve.CurveSample, ...]:
    """All of a strip's camera samples at once (no UI to keep responsive: background mode, scripts)."""
    sampler = CameraSampler(scene, timing, front=front)
    try:
        sampler.step(math.inf)
        return sampler.curve()
    finally:
        sampler.close()


def occupied_spans(editor: Any) -> list[tuple[int, float, float]]:
    """(channel, start, end) of every top-level strip, end exclusive."""
    return [(s.channel, s.frame_final_start, s.frame_final_end) for s in strip_collection(editor)]


def add_sound_strip(editor: Any, name: str, path: str, channel: int, frame_start: int) -> Any:
    """A sound strip for ``path`` on ``channel`` starting at ``frame_start``."""
    return strip_collection(editor).new_sound(name, path, channel, frame_start)


def strip_names(strips: Sequence[Any]) -> str:
    return ", ".join(s.name for s in strips)
