"""What a result's JSON sidecar says about where its audio belongs: video range start and camera direction.

Why: the delivery commands (binaural preview, sound map, mux) take a result WAV and should not make
the user repeat what ``visage generate`` already recorded: where in the video the audio starts, which
way the camera looked (a preview listener faces it; the map's camera is it), and whether the video was
read as 360° only because ``--equirect`` said so (its file says nothing, so mux and viz must be told
again). Any of it may be missing (a WAV from elsewhere, a moving camera); then the commands use their
defaults.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, NamedTuple

from visage.model.features.direction import CameraDirection, DirectionError
from visage.model.files import result_files as rf

EQUIRECT_FLAG = "--equirect"  # the sidecar's input.detected_by when the caller forced 360°


class ResultContext(NamedTuple):
    """Facts from a result's sidecar; None where it does not say (or there is no sidecar)."""

    start_s: float | None  # media seconds of the video where the audio's first sample belongs
    camera: CameraDirection | None  # a fixed camera direction (None for a direction curve)
    forced_equirect: bool = False  # the video was read as a 360° panorama because of --equirect


def read_result_context(result_wav: str | Path) -> ResultContext:
    """Read ``<result>.wav.json`` if it exists; unreadable or foreign sidecars give an empty context."""
    try:
        document = json.loads(rf.sidecar_path(result_wav).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ResultContext(None, None)
    if not isinstance(document, dict):
        return ResultContext(None, None)
    return ResultContext(
        _start(document.get(rf.RANGE_KEY)),
        _camera(document.get(rf.DIRECTION_KEY)),
        _forced_equirect(document.get(rf.INPUT_KEY)),
    )


def _start(section: Any) -> float | None:
    value = section.get(rf.RANGE_START_KEY) if isinstance(section, dict) else None
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    ):
        return float(value)
    return None


def _camera(section: Any) -> CameraDirection | None:
    if not isinstance(section, dict) or section.get(rf.DIRECTION_CURVE_KEY):
        return None
    try:
        return CameraDirection(section[rf.DIRECTION_YAW_KEY], section[rf.DIRECTION_PITCH_KEY])
    except (KeyError, TypeError, DirectionError):
        return None


def _forced_equirect(section: Any) -> bool:
    """Whether the sidecar's input entry says 360° found by ``--equirect`` (not by the file's metadata)."""
    return (
        isinstance(section, dict)
        and section.get("projection") == "equirectangular"
        and section.get("detected_by") == EQUIRECT_FLAG
    )
