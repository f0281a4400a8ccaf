"""`visage fill`: the argparse front end over `fill.fill_edit`.

Only argparse and the shared option definitions are imported at module level, so ``visage --help`` stays
instant; the run imports OTIO, the bridge client and (for local generation) torch when it starts. Exit
status: 0 every shot has its audio, 1 some shot failed (the output is still written, with gaps), 2 the
run could not start, 130 interrupted (finished shots are kept for ``--resume``).
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
    from .generators import GenerationSettings, ShotGenerator
    from .shot_generation import FillProgress

FILL_DESCRIPTION = (
    "Generate AmbiX audio for every shot of an edit and write the edit again with a new "
    '"Ambisonics (AmbiX)" audio track: clips at exactly the shots\' positions, gaps elsewhere. '
    "EDIT is anything an installed OpenTimelineIO adapter reads (.otio, .otioz, .edl, .xml, .aaf, ...); "
    "OUT is written in the format its suffix names. The input is never modified."
)


def add_fill_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``visage fill`` to ``parser``."""
    parser.add_argument("edit", metavar="EDIT", help="editorial file to read (never modified)")
    parser.add_argument("-o", "--output", metavar="OUT", required=True, help="editorial file to write")
    parser.add_argument(
        "--video-track",
        action="append",
        default=[],
        metavar="N|NAME",
        help="video track to fill, 1 = V1 (bottom); repeatable; without it: all, the top track wins",
    )
    add_direction_arguments(parser, note="for shots without metadata")
    parser.add_argument(
        "--media-root",
        action="append",
        default=[],
        metavar="DIR",
        help="folder searched (recursively) for media by file name, clip name or reel; repeatable",
    )
    add_daemon_argument(parser)
    add_token_argument(parser)
    parser.add_argument("--jobs", type=int, default=4, help="shots generated together")
    parser.add_argument("--resume", action="store_true", help="keep intact results of an earlier run")
    add_force_argument(parser, help="replace OUT; regenerate an earlier run's shots")
    parser.add_argument(
        "--output-dir",
        default=None,
        metavar="DIR",
        help="where the WAVs go; OUT's stem + .ambix beside OUT when not given",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="frame rate of an EDL's timecodes (EDLs do not record it; the reader assumes 24)",
    )
    add_model_arguments(parser, exclusive=True)
    add_device_argument(parser, help=f"{DEVICE_HELP} (generating here, without a daemon)")
    add_guidance_arguments(parser)
    add_seed_argument(parser, help="seed for every shot; one derived from each shot's content when not given")
    add_output_format_arguments(parser)
    add_panorama_arguments(parser)
    add_ray_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_fill(args: argparse.Namespace, *, generator: ShotGenerator | None = None) -> int:
    """Run ``visage fill``; ``generator`` replaces the one chosen from the arguments (tests)."""
    from pathlib import Path

    from visage.bridge.client import DaemonUnavailable, JobFailed

    from .edit_files import EditFileError
    from .fill_edit import FillError, FillOptions, fill_edit
    from .generators import GeneratorUnavailable
    from .manifest import ManifestError
    from .report import format_summary

    if args.jobs < 1:
        return _fail("--jobs must be at least 1")
    settings = generation_settings(args)
    options = FillOptions(
        edit=Path(args.edit),
        output=Path(args.output),
        video_tracks=tuple(args.video_track),
        yaw_deg=args.yaw,
        pitch_deg=args.pitch,
        media_roots=tuple(Path(p) for p in args.media_root),
        output_dir=Path(args.output_dir) if args.output_dir else None,
        resume=args.resume,
        force=args.force,
        jobs=sys.maxsize if args.ray else args.jobs,  # Ray packs --jobs shots per actor itself
        rate=args.rate,
        seed=args.seed,
        settings=settings,
    )
    try:
        chosen = generator if generator is not None else choose_generator(args, settings)
    except (DaemonUnavailable, JobFailed, ValueError) as exc:
        return _fail(str(exc))
    try:
        report = fill_edit(options, chosen, run_progress(args))
    except (FillError, EditFileError, ManifestError, GeneratorUnavailable) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print(
            "visage fill: interrupted; finished shots are kept: re-run with --resume to continue",
            file=sys.stderr,
        )
        return 130
    finally:
        close_generator(chosen)
    print(format_summary(report))
    return report.exit_code


def generation_settings(args: argparse.Namespace) -> GenerationSettings:
    """The engine settings every shot of a fill or batch run shares, from the run's options."""
    from .generators import GenerationSettings

    return GenerationSettings(
        guidance_mode=args.guidance_mode,
        guidance_scale=args.guidance,
        sample_rate=args.sample_rate,
        subtype="FLOAT" if args.format == "float" else "PCM_24",
        equirect=args.equirect,
        look=args.look,
    )


def run_progress(args: argparse.Namespace) -> FillProgress:
    """A bar per batch here or on a daemon; one overall bar on Ray, where the shots spread over actors."""
    from .report import TqdmProgress

    progress: FillProgress = TqdmProgress(enabled=False if args.no_progress else None)
    if args.ray:
        from visage.bridge.cluster.overall_progress import OverallProgress

        progress = OverallProgress(progress)
    return progress


def close_generator(generator: ShotGenerator) -> None:
    """Release what a generator holds beyond the run (a Ray generator's actors and connection)."""
    close = getattr(generator, "close", None)
    if close is not None:
        close()


def choose_generator(
    args: argparse.Namespace, settings: GenerationSettings, *, command: str = "fill"
) -> ShotGenerator:
    """A daemon generator (``--daemon``, or ``auto`` when one answers with the requested model) or a
    local one; ``command`` names the stage in what it prints."""
    from visage.bridge.client import DaemonUnavailable, find_daemon, parse_daemon

    from .generators import DaemonGenerator, LocalGenerator

    requested = args.model or args.checkpoint
    if getattr(args, "ray", None):
        from visage.bridge.cluster.ray_generator import RayGenerator, ray_options

        return RayGenerator(
            settings,
            ray_options(args, batch_size=args.jobs),
            checkpoint=requested,
            log=lambda message: print(f"visage {command}: {message}", file=sys.stderr),
        )
    if args.daemon != "none":
        explicit = args.daemon != "auto"
        address = parse_daemon(args.daemon) if explicit else find_daemon("auto", timeout_s=1.0)
        try:
            daemon = DaemonGenerator(
                settings, address, token=args.token, timeout_s=None if explicit else 1.0, command=command
            )
        except DaemonUnavailable:
            if explicit:
                raise DaemonUnavailable(f"no daemon answered at {args.daemon}") from None
        else:
            if requested is None or daemon.model_id.split("@")[0] == requested:
                where = f"{address.host}:{address.port}"
                print(
                    f"visage {command}: generating on the daemon at {where} ({daemon.model_id})",
                    file=sys.stderr,
                )
                return daemon
            if explicit:
                raise ValueError(f"the daemon at {args.daemon} runs {daemon.model_id}, not {requested}")
            print(
                f"visage {command}: the daemon runs {daemon.model_id}, not {requested}; generating here",
                file=sys.stderr,
            )
    from visage.model.environment import quiet_libraries

    quiet_libraries()  # the stage's own progress bars only
    return LocalGenerator(settings, checkpoint=requested, device=args.device)


def _fail(message: str) -> int:
    print(f"visage fill: error: {message}", file=sys.stderr)
    return 2
