"""Where the inference layer keeps what it builds or measures once per machine (tiny models, kernels)."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_folder() -> Path:
    """``$VISAGE_CACHE_DIR``, else the platform's user cache folder for visage (not created here)."""
    override = os.environ.get("VISAGE_CACHE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("visage"))
