"""The table `visage batch` prints when it ends: one row per job, then the problems and what to do next.

Progress while it runs is `visage fill`'s (`fill.report.TqdmProgress`, on stderr); this summary goes to
stdout.
"""

from __future__ import annotations

from visage.bridge.fill.fill_edit import ShotStatus
from visage.bridge.fill.manifest import MANIFEST_NAME
from visage.bridge.fill.report import direction_cell

from .batch_run import BatchReport, ClipOutcome

_HAS_AUDIO = (ShotStatus.GENERATED, ShotStatus.REUSED)


def format_batch_summary(report: BatchReport) -> str:
    """The summary table and the list of failed jobs, as printed at the end of a run."""
    header = ("line", "media", "range (s)", "direction", "seed", "status", "output")
    rows = [_row(report, o) for o in report.outcomes]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    counts = {status: sum(o.status is status for o in report.outcomes) for status in ShotStatus}
    total = ", ".join(f"{n} {status.value}" for status, n in counts.items() if n)
    lines += ["", f"{len(report.outcomes)} clips: {total or 'none'}; model {report.model}"]
    if report.failed:
        lines.append("problems:")
        lines += [f"  line {o.job.line} ({o.job.media.name}): {o.message}" for o in report.failed]
    lines.append(f"results in {report.output_dir} (manifest {MANIFEST_NAME})")
    if report.failed:
        lines.append("fix the failed clips and re-run with --resume to keep the others")
    return "\n".join(lines)


def _row(report: BatchReport, outcome: ClipOutcome) -> tuple[str, ...]:
    start, end = outcome.media_range_s
    output = "-"
    if outcome.status in _HAS_AUDIO:
        output = outcome.wav.relative_to(report.output_dir.absolute()).as_posix()
    return (
        str(outcome.job.line),
        _short(outcome.job.media.name),
        f"{start:.3f}-{end:.3f}",
        direction_cell(outcome.direction, report.look),
        str(outcome.seed),
        outcome.status.value,
        output,
    )


def _short(text: str, width: int = 32) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
