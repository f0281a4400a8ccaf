"""`SoundMaps`: the page's "sound map" button: `visage viz`'s MP4 of a result, rendered one at a time.

Rendering decodes the video and draws every frame (numpy, PyAV, the model's delivery code, imported
lazily in the render thread), so it runs in its own single worker thread, never on the event loop and
never in the daemon's job worker. The state of a render is kept in memory; after a restart a finished
map is found by its file, ``<output stem>.soundmap.mp4`` next to the result.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

RENDERING, READY, FAILED = "rendering", "ready", "error"


class SoundMaps:
    """Args:
    on_change: called with a job id when its map's state changes (from the render thread).
    """

    def __init__(self, on_change: Callable[[str], None]) -> None:
        self._on_change = on_change
        self._lock = threading.Lock()
        self._states: dict[str, str] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="visage-soundmap")

    def state(self, job_id: str, target: Path | None) -> str | None:
        """``rendering``, ``ready``, ``error`` or None (never asked for, and no file)."""
        with self._lock:
            known = self._states.get(job_id)
        if known is not None:
            return known
        return READY if target is not None and target.is_file() else None

    def request(self, job_id: str, result: Path, media: Path, target: Path) -> str:
        """Start rendering ``result`` over ``media`` into ``target`` unless it is there or under way."""
        with self._lock:
            if self._states.get(job_id) == RENDERING:
                return RENDERING
            if target.is_file():
                self._states[job_id] = READY
                return READY
            self._states[job_id] = RENDERING
        self._executor.submit(self._render, job_id, result, media, target)
        self._on_change(job_id)
        return RENDERING

    def _render(self, job_id: str, result: Path, media: Path, target: Path) -> None:
        try:
            from visage.model.delivery.sound_map_render import render_sound_map

            render_sound_map(result, media, target)
            state = READY
        except Exception as exc:  # a bad video, a missing result: the page shows "error", the log says why
            log.warning("sound map of job %s failed: %s: %s", job_id, type(exc).__name__, exc)
            state = FAILED
        with self._lock:
            self._states[job_id] = state
        self._on_change(job_id)

    def close(self) -> None:
        """Wait for the render under way (others waiting are dropped)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
