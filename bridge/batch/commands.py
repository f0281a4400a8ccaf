"""`visage batch`: the argparse front end over `batch.batch_run`.

Only argparse and the shared option definitions are imported at module level, so ``visage --help`` stays
instant. Exit status, as `visage fill`'s: 0 every clip has its file, 1 some clip failed (the others are
kept), 2 the run could not start (a bad job list, a file in the way, no model or daemon), 130
interrupted (finished clips are kept for ``--resume``).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from visage.bridge.cli_arguments import (
    DEVICE_HELP,
    add_daemon_argument,
    add_device_argument,
    add_direction_arguments,
    add_force_argument,
    add_guidance_arguments,
    add_model_arguments,
    add_output_format_arguments,
    add_panorama_arguments,
    add_ray_arguments,
    add_seed_argument,
    add_token_argument,
)

if TYPE_CHECKING:  # pragma: no cover
    from visage.bridge.fill.generators import ShotGenerator


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``visage batch`` to ``parser``."""
    parser.add_argument(
        "job_list",
        metavar="JOBS",
        help="the clips: a .csv file with a header row, or .jsonl/.ndjson (one JSON object per line); "
        "fields media (required), start, end, yaw, pitch, direction_curve, seed, output",
    )
    parser.add_argument(
        "-o", "--output-dir", metavar="DIR", required=True, help="where the WAVs and the manifest go"
    )
    add_direction_arguments(parser, note="for jobs that give no direction")
    add_daemon_argument(parser, what="clips")
    add_token_argument(parser)
    add_ray_arguments(parser)
    parser.add_argument("--jobs", type=int, default=4, help="clips generated together")
    parser.add_argument("--resume", action="store_true", help="keep intact results of an earlier run")
    add_force_argument(parser, help="regenerate an earlier run's clips; replace files it did not make")
    add_model_arguments(parser, exclusive=True)
    add_device_argument(parser, help=f"{DEVICE_HELP} (generating here, without a daemon)")
    add_guidance_arguments(parser)
    add_seed_argument(parser, help="seed of jobs that give none; else one derived from each clip's content")
    add_output_format_arguments(parser)
    add_panorama_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_batch(args: argparse.Namespace, *, generator: ShotGenerator | None = None) -> int:
    """Run ``visage batch``; ``generator`` replaces the one chosen from the arguments (tests)."""
    import math
    from pathlib import Path

    from visage.bridge.client import DaemonUnavailable, JobFailed
    from visage.bridge.fill.commands import (
        choose_generator,
        close_generator,
        generation_settings,
        run_progress,
    )
    from visage.bridge.fill.generators import GeneratorUnavailable
    from visage.bridge.fill.manifest import ManifestError

    from .batch_run import BatchError, BatchOptions, run_batch_jobs
    from .batch_summary import format_batch_summary
    from .job_list import MAX_SEED, JobListError, job_list_format

    if args.jobs < 1:
        return _fail("--jobs must be at least 1")
    if not (math.isfinite(args.yaw) and math.isfinite(args.pitch) and -90.0 <= args.pitch <= 90.0):
        return _fail(f"--yaw {args.yaw} --pitch {args.pitch}: both finite, pitch in [-90, 90] degrees")
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        return _fail(f"--seed {args.seed}: expected an integer in [0, 2**63 - 1]")
    try:
        job_list_format(Path(args.job_list))  # a wrong suffix fails before a model loads
    except JobListError as exc:
        return _fail(str(exc))
    settings = generation_settings(args)
    options = BatchOptions(
        job_list=Path(args.job_list),
        output_dir=Path(args.output_dir),
        yaw_deg=args.yaw,
        pitch_deg=args.pitch,
        seed=args.seed,
        resume=args.resume,
        force=args.force,
        jobs=sys.maxsize if args.ray else args.jobs,  # Ray packs --jobs clips per actor itself
        settings=settings,
    )
    try:
        chosen = generator if generator is not None else choose_generator(args, settings, command="batch")
    except (DaemonUnavailable, JobFailed, ValueError) as exc:
        return _fail(str(exc))
    try:
        report = run_batch_jobs(options, chosen, run_progress(args))
    except JobListError as exc:
        problems = exc.problems
        print("\n".join(f"visage batch: error: {p}" for p in problems), file=sys.stderr)
        print(f"visage batch: {len(problems)} problem(s); nothing was generated", file=sys.stderr)
        return 2
    except (BatchError, ManifestError, GeneratorUnavailable) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print(
            "visage batch: interrupted; finished clips are kept: re-run with --resume to continue",
            file=sys.stderr,
        )
        return 130
    finally:
        close_generator(chosen)
    print(format_batch_summary(report))
    return report.exit_code


def _fail(message: str) -> int:
    print(f"visage batch: error: {message}", file=sys.stderr)
    return 2
