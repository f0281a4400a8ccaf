"""This machine's measured kernel choices (``network/kernel_choice.py``), kept in the user cache.

A store is valid only for the CPU, torch build and thread count that measured it: after a torch upgrade
(or on another machine sharing a home folder) it is ignored, and the choices are measured again.
"""

from __future__ import annotations

import json
from pathlib import Path

from visage.model.files.output_files import atomic_write_bytes
from visage.model.network import few_rows_linear
from visage.model.network.kernel_choice import machine_identity

from .user_cache import user_cache_folder

STORE_NAME = "linear-kernels.json"
STORE_VERSION = 1


def default_store() -> Path:
    """``linear-kernels.json`` in the user cache folder (``$VISAGE_CACHE_DIR`` overrides it)."""
    return user_cache_folder() / STORE_NAME


def read_store(path: Path) -> dict[str, str]:
    """Choices in ``path`` if it was written on this machine with this torch; else nothing."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict) or document.get("version") != STORE_VERSION:
        return {}
    if document.get("machine") != machine_identity():
        return {}
    choices = document.get("choices")
    if not isinstance(choices, dict):
        return {}
    return {str(k): v for k, v in choices.items() if isinstance(v, str)}


def write_store(path: Path, choices: dict[str, str]) -> None:
    """Replace the store atomically; a cache that cannot be written is only a missed shortcut."""
    document = {
        "version": STORE_VERSION,
        "machine": machine_identity(),
        "choices": dict(sorted(choices.items())),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, (json.dumps(document, indent=1) + "\n").encode(), overwrite=True)
    except OSError:
        return


def use_store(path: Path | None = None) -> Path:
    """Load this machine's choices from ``path`` (default :func:`default_store`) and keep it updated."""
    store = path or default_store()
    few_rows_linear.CHOICES.remember(read_store(store))
    few_rows_linear.CHOICES.on_new_choice = lambda choices: write_store(store, choices)
    return store
