"""The offline ``tiny-random`` bundle: ViSAGe, CLIP and DAC with seeded random weights, built once.

Tests and ``--model tiny-random`` run every production code path on it without downloading anything;
its output is noise. Processes that find it missing at once (Ray actors on one machine, parallel tests)
each build their own copy in a temporary folder beside it and rename it into place: the first rename
wins, the others drop theirs, and no process ever reads a half-built bundle.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from .user_cache import user_cache_folder

TINY_RANDOM = "tiny-random"  # the checkpoint name that selects this bundle
_COMPLETE = "complete"  # the marker file: the bundle is whole


def tiny_random_folder(root: Path | None = None) -> Path:
    """Build (once) the bundle under ``root`` (default: ``$VISAGE_CACHE_DIR`` or the user cache)."""
    from visage.model.audio.codec import build_tiny_random_dac
    from visage.model.features.vision import build_tiny_random_clip
    from visage.model.network.tiny_random import write_tiny_random_visage

    base = root or user_cache_folder() / "tiny-random-v1"
    if (base / _COMPLETE).exists():
        return base
    base.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{base.name}.", suffix=".building", dir=base.parent))
    try:
        write_tiny_random_visage(building / "visage")
        build_tiny_random_clip(building / "clip")
        build_tiny_random_dac(building / "dac.pth")
        (building / _COMPLETE).write_text("tiny random ViSAGe + CLIP + DAC; their output is noise\n")
        _publish(building, base)
    finally:
        shutil.rmtree(building, ignore_errors=True)  # gone when renamed; else a loser's or a failed copy
    return base


def _publish(building: Path, base: Path) -> None:
    """Rename the whole bundle ``building`` to ``base``, unless another process already did. An
    incomplete ``base`` (an interrupted build of an earlier version, which built in place) is set aside
    first."""
    for _ in range(2):
        try:
            os.rename(building, base)
            return
        except OSError:
            if (base / _COMPLETE).exists():
                return  # another process published its bundle first
        stale = base.with_name(f".{base.name}.stale-{os.getpid()}")
        with contextlib.suppress(OSError):
            os.rename(base, stale)
        shutil.rmtree(stale, ignore_errors=True)
    raise OSError(f"{base}: could not put the tiny-random bundle in place")
