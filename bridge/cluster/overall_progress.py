"""One progress bar for a run on Ray: the whole run is one batch there (the actors pack their own), and a
bar per shot, as the stages draw for a local batch of ``--jobs``, would be hundreds of bars."""

from __future__ import annotations

from visage.bridge.fill.shot_generation import FillProgress


class OverallProgress(FillProgress):
    """Passes the run's start, each result's end and the close on to ``bars``; no per-result bars."""

    def __init__(self, bars: FillProgress) -> None:
        self.bars = bars

    def start(self, total: int, done: int) -> None:
        self.bars.start(total, done)

    def batch(self, labels: list[str]) -> None:
        self.bars.batch([])

    def finish(self, index: int, ok: bool) -> None:
        self.bars.finish(index, ok)

    def close(self) -> None:
        self.bars.close()
