"""How a `visage fill` run shows itself: tqdm progress bars while it runs, a summary table at the end.

One bar counts shots over the whole run; under it, one bar per shot of the running batch follows that
shot's stages (features, generate, decode, write; or the daemon's). Bars go to stderr and switch
themselves off when it is not a terminal. The summary (shot, record range as timecode, media range,
direction, status, output) goes to stdout, followed by one line per shot that failed or was skipped
and a warning when generated pictures hide video. Record timecodes keep the edit's own drop-frame
flag where it has one (an EDL's ``FCM``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import IO, Any

from opentimelineio.opentime import RationalTime, TimeRange, to_timecode

from .fill_edit import FillProgress, FillReport, ShotOutcome, ShotStatus

_HAS_AUDIO = (ShotStatus.GENERATED, ShotStatus.REUSED)


class TqdmProgress(FillProgress):
    """Draws a run's progress with tqdm.

    Args:
        stream: where bars go (default stderr).
        enabled: None = only on a terminal; False = never.
    """

    def __init__(self, stream: IO[str] | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        # Decided here rather than by tqdm: even a disabled tqdm bar starts tqdm's monitor thread.
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._overall: Any = None
        self._shots: list[Any] = []

    def _bar(self, **kwargs: Any) -> Any:
        from tqdm import tqdm

        return tqdm(file=self.stream, dynamic_ncols=True, **kwargs)

    def start(self, total: int, done: int) -> None:
        if not self.enabled:
            return
        self._overall = self._bar(total=total, desc="shots", unit="shot", position=0)
        if done:
            self._overall.set_postfix_str(f"{done} reused")

    def batch(self, labels: list[str]) -> None:
        self._close_shots()
        if not self.enabled:
            return
        self._shots = [
            self._bar(
                total=100,
                desc=_short(label),
                position=i + 1,
                leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
            )
            for i, label in enumerate(labels)
        ]

    def update(self, index: int, fraction: float, stage: str) -> None:
        if 0 <= index < len(self._shots):
            bar = self._shots[index]
            bar.n = round(100 * min(max(fraction, 0.0), 1.0))
            bar.set_postfix_str(stage, refresh=False)
            bar.refresh()

    def finish(self, index: int, ok: bool) -> None:
        self.update(index, 1.0, "done" if ok else "failed")
        if self._overall is not None:
            self._overall.update(1)

    def close(self) -> None:
        self._close_shots()
        if self._overall is not None:
            self._overall.close()
            self._overall = None

    def _close_shots(self) -> None:
        for bar in self._shots:
            bar.close()
        self._shots = []


def format_summary(report: FillReport) -> str:
    """The summary table and the list of problems, as printed at the end of a run."""
    header = ("#", "shot", "record", "media range", "direction", "status", "output")
    rows = [_row(report, o) for o in report.outcomes]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [
        f"  shot {o.shot.index + 1} ({o.shot.name}): {o.status.value}: {o.message}"
        for o in report.outcomes
        if o.status in (ShotStatus.FAILED, ShotStatus.SKIPPED)
    ]
    counts = {status: sum(o.status is status for o in report.outcomes) for status in ShotStatus}
    total = ", ".join(f"{n} {status.value}" for status, n in counts.items() if n)
    lines.append("")
    lines.append(f"{len(report.outcomes)} shots: {total or 'none'}; model {report.model}")
    if notes:
        lines.append("problems:")
        lines.extend(notes)
    hiding = [o for o in report.outcomes if o.shot.hides]
    if hiding:
        hidden = sorted({name for o in hiding for name in o.shot.hides})
        lines.append(
            f"warning: {len(hiding)} generated picture(s) hide video below them, which gets no audio there: "
            + ", ".join(repr(name) for name in hidden)
        )
    lines.append(f"wrote {report.output} (audio in {report.results_dir})")
    if report.failed:
        lines.append("failed shots have no clip (a gap); fix them and re-run with --resume to keep the rest")
    return "\n".join(lines)


def _row(report: FillReport, outcome: ShotOutcome) -> tuple[str, ...]:
    shot = outcome.shot
    media = "-"
    if outcome.media_range_s is not None and outcome.media is not None:
        start, end = outcome.media_range_s
        media = f"{outcome.media.name} {start:.3f}-{end:.3f} s"
    return (
        str(shot.index + 1),
        _short(shot.name),
        _timecodes(shot.record, report.start, report.rate, report.drop_frame),
        media,
        direction_cell(outcome.direction, report.look),
        outcome.status.value,
        outcome.wav.name if outcome.wav is not None and outcome.status in _HAS_AUDIO else "-",
    )


def _timecodes(record: TimeRange, start: RationalTime, rate: float, drop_frame: bool | None) -> str:
    begin = start.rescaled_to(rate) + record.start_time
    end = begin + record.duration
    try:
        return f"{to_timecode(begin, rate, drop_frame)}-{to_timecode(end, rate, drop_frame)}"
    except ValueError:  # a rate timecode cannot express: frames
        return f"{begin.value:g}-{end.value:g} @{rate:g}"


def direction_cell(direction: Mapping[str, Any], look: str | None) -> str:
    """A summary table's direction column (fill's and batch's): the curve file, the look mode, or the
    angles; ``direction`` is a result's key direction (``{"curve"}`` or ``{"yaw", "pitch"}``)."""
    if "curve" in direction:
        return f"curve {direction['curve'].rsplit('/', 1)[-1]}"
    if look is not None:  # the yaw/pitch only stand where nothing moves (see the sidecar)
        return f"look {look}"
    if "yaw" in direction:
        return f"yaw {direction['yaw']:g} pitch {direction['pitch']:g}"
    return "-"


def _short(text: str, width: int = 32) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
