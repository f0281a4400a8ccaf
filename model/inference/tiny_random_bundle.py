"""The offline ``tiny-random`` bundle: ViSAGe, CLIP and DAC with seeded random weights, built once.

Tests and ``--model tiny-random`` run every production code path on it without downloading anything;
its output is noise.
"""

from __future__ import annotations

from pathlib import Path

from .user_cache import user_cache_folder

TINY_RANDOM = "tiny-random"  # the checkpoint name that selects this bundle


def tiny_random_folder(root: Path | None = None) -> Path:
    """Build (once) the bundle under ``root`` (default: ``$VISAGE_CACHE_DIR`` or the user cache)."""
    from visage.model.audio.codec import build_tiny_random_dac
    from visage.model.features.vision import build_tiny_random_clip
    from visage.model.network.tiny_random import write_tiny_random_visage

    base = root or user_cache_folder() / "tiny-random-v1"
    if (base / "complete").exists():
        return base
    base.mkdir(parents=True, exist_ok=True)
    write_tiny_random_visage(base / "visage")
    build_tiny_random_clip(base / "clip")
    build_tiny_random_dac(base / "dac.pth")
    (base / "complete").write_text("tiny random ViSAGe + CLIP + DAC; their output is noise\n")
    return base
