"""The ``visage`` command: one entry point, a fixed table of stages, each imported only when used.

Keeping imports lazy makes ``visage --help`` instant and lets a stage whose optional dependencies are
missing fail with its own message instead of breaking every other stage.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# name -> (module, help). The module has add_<name>_arguments(parser) and run_<name>(args) -> int and
# imports nothing heavy at module level.
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": (
        "visage.model.commands.generate",
        "report what is installed, cached and usable; --fix repairs torchaudio; --check-direction VIDEO",
    ),
    "generate": (
        "visage.model.commands.generate",
        "generate an AmbiX WAV for a video range and a camera direction",
    ),
    "download": ("visage.model.commands.generate", "fetch the ViSAGe, CLIP and DAC weights ahead of time"),
    "serve": ("visage.bridge.cli", "run the local daemon editors talk to over OSC (found with ZeroConf)"),
    "submit": ("visage.bridge.cli", "send one clip to a running daemon and wait for its AmbiX WAV"),
    "fill": (
        "visage.bridge.fill.commands",
        "generate an ambisonics track for every shot of an edit (OTIO, EDL, FCP XML, AAF)",
    ),
    "batch": (
        "visage.bridge.batch.commands",
        "generate an AmbiX WAV for every clip of a job list (CSV or JSON Lines), resumable",
    ),
    "binaural": ("visage.model.commands.delivery", "render an AmbiX file to binaural stereo for headphones"),
    "viz": ("visage.model.commands.delivery", "draw where the sound is: an equirectangular sound map"),
    "mux": ("visage.model.commands.delivery", "mux AmbiX into an MP4/MOV with spatial-audio (SA3D) metadata"),
    "hosts": (
        "visage.host_plugins.hosts_commands",
        "install or locate the Blender, Resolve and REAPER plugins",
    ),
    "dataset": ("visage.model.commands.research", "build a training dataset from 360-degree recordings"),
    "train": ("visage.model.commands.research", "train or fine-tune ViSAGe (multi-GPU with accelerate)"),
    "eval": ("visage.model.commands.research", "evaluate generated AmbiX against references (paper metrics)"),
    "synthetic-bench": (
        "visage.model.commands.research",
        "spatial accuracy on synthetic scenes: ViSAGe vs baselines",
    ),
    "bench": ("visage.model.commands.generate", "speed benchmarks: `visage bench generate|pipeline|codec`"),
}


def command_error(command: str, error: BaseException | str) -> int:
    """Report a failed stage as one line, ``visage COMMAND: error: ...``, and return exit status 1."""
    print(f"visage {command}: error: {error}", file=sys.stderr)
    return 1


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults, except where there is none or the help already says it in words."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if action.default is None or "default" in help_text or "unset:" in help_text:
            return help_text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="visage",
        description="First-order ambisonics (AmbiX) from video and a camera direction, with ViSAGe.",
        formatter_class=_Formatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=_Formatter)
        stem = name.replace("-", "_")
        p.set_defaults(_run=(module, f"run_{stem}"))
        getattr(importlib.import_module(module), f"add_{stem}_arguments")(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        module, func = args._run
        return int(getattr(importlib.import_module(module), func)(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
