"""What the extension reads from and writes to Blender data, across the 4.2 -> 5.x API changes.

Blender API drift handled here (and only here):

* ``SequenceEditor.strips`` (4.4+) vs ``.sequences`` (4.2/4.3; removed in 5.0);
* ``context.selected_strips`` (4.4+) vs ``context.selected_sequences`` (older);
* ``context.sequencer_scene`` (5.0+: the scene whose sequencer is edited; the 3D scene is
  ``context.scene``).

Everything else is computed by the bpy-free modules in ``common/``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import bpy

from .common import camera, direction_curve, media_range

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


def strip_timing(strip: Any) -> media_range.StripTiming:
    """Scene frames -> media seconds for a movie strip (see `media_range.blender_strip_timing`)."""
    return media_range.blender_strip_timing(
        frame_start=strip.frame_start,
        frame_final_start=strip.frame_final_start,
        frame_final_end=strip.frame_final_end,
        frame_duration=strip.frame_duration,
        media_frame_count=media_frame_count(media_path(strip)),
        movie_fps=strip.fps,
    )


def scene_rate(scene: Any) -> Fraction:
    return media_range.parse_rate(scene.render.fps, scene.render.fps_base)


def _rows(matrix: Any) -> camera.Matrix3:
    m = matrix.to_3x3()
    return tuple(tuple(float(m[r][c]) for c in range(3)) for r in range(3))  # type: ignore[return-value]


def sample_camera_curve(
    scene: Any,
    timing: media_range.StripTiming,
    *,
    front: Any = None,
) -> tuple[direction_curve.CurveSample, ...]:
    """The active camera's yaw/pitch at every scene frame the strip shows, at media times.

    Sets each frame with ``scene.frame_set`` (so parents, constraints, drivers and camera-switching
    markers apply) and restores the current frame afterwards.

    Args:
        scene: the scene whose camera and animation are sampled.
        timing: the strip's frame -> media time mapping.
        front: object whose local +Y is the front (None: world +Y).

    Raises:
        ValueError: the scene has no camera at some frame.
    """
    first = math.floor(timing.frame_final_start)
    last = math.ceil(timing.frame_final_end)  # exclusive
    saved = (scene.frame_current, scene.frame_subframe)
    rows: list[tuple[float, float, float]] = []
    yaw = 0.0
    try:
        for frame in range(first, last):
            scene.frame_set(frame)
            active = scene.camera
            if active is None:
                raise ValueError(f"scene {scene.name!r} has no active camera at frame {frame}")
            reference = None if front is None else _rows(front.matrix_world)
            yaw, pitch = camera.camera_angles(_rows(active.matrix_world), reference, fallback_yaw_deg=yaw)
            rows.append((float(timing.media_time(frame)), yaw, pitch))
    finally:
        scene.frame_set(saved[0], subframe=saved[1])
    return direction_curve.build_curve(rows)


def occupied_spans(editor: Any) -> list[tuple[int, float, float]]:
    """(channel, start, end) of every top-level strip, end exclusive."""
    return [(s.channel, s.frame_final_start, s.frame_final_end) for s in strip_collection(editor)]


def add_sound_strip(editor: Any, name: str, path: str, channel: int, frame_start: int) -> Any:
    """A sound strip for ``path`` on ``channel`` starting at ``frame_start``."""
    return strip_collection(editor).new_sound(name, path, channel, frame_start)


def strip_names(strips: Sequence[Any]) -> str:
    return ", ".join(s.name for s in strips)
