"""The command-line options several ``visage`` stages share, each defined once: flag, type, default, help.

Standard library only: the bridge's stages (serve, submit, fill) import it at module level and may not
import torch or `visage.model` then, and the model's stages (generate, bench, binaural, viz, mux) use the
same definitions. A stage passes ``help=`` only where the option means more there (fill's ``--yaw`` is
the default for shots without metadata); the flag, type and default stay these.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import const

# `visage.model.network.generation.GUIDANCE_MODES`, which this module cannot import; a test pins them equal.
GUIDANCE_MODES = ("joint", "directional", "visual", "dual", "none")
SAMPLE_FORMATS = ("pcm24", "float")
# `visage.model.inference.panorama_input.LOOK_MODES` (and osc_protocol's, not imported: python-osc); pinned.
LOOK_MODES = ("auto",)
DEVICE_HELP = "torch device: auto, cpu, cuda, cuda:1, mps"
RELEASED_CHECKPOINT = "jaeyeonkim99/visage"  # named in help texts only; the model side owns the id

Container = argparse._ActionsContainer  # a parser or an argument group: where add_argument is called


def add_range_arguments(parser: Container) -> None:
    """``--start``/``--end``: the range of the video to generate for, in media seconds."""
    parser.add_argument("--start", type=float, default=0.0, help="range start, seconds into the video")
    parser.add_argument(
        "--end",
        type=float,
        default=None,
        help="range end (exclusive), seconds; default: the end of the video",
    )


def add_direction_arguments(
    parser: Container,
    *,
    note: str = "",
    unset_from: str | None = None,
    subject: str = "camera",
    curve: bool = False,
) -> None:
    """``--yaw``/``--pitch`` (and with ``curve``, ``--direction-curve``): the camera direction.

    Args:
        parser: where the options go.
        note: what the direction is for, appended to both helps (e.g. "for shots without metadata").
        unset_from: the file whose recorded camera is used when neither is given; then both default to
            None instead of 0.
        subject: who looks that way (``camera``, ``listener``).
        curve: also add ``--direction-curve``, which overrides yaw/pitch over time.
    """
    default = None if unset_from is not None else 0.0
    yaw_note = pitch_note = f", {note}" if note else ""
    if unset_from is not None:
        yaw_note += f"; unset: the camera recorded in {unset_from}'s sidecar, else 0"
        pitch_note += "; 0 if only --yaw is given"
    parser.add_argument(
        "--yaw",
        type=float,
        default=default,
        help=f"{subject} yaw in degrees, positive = left (AmbiX){yaw_note}",
    )
    parser.add_argument(
        "--pitch", type=float, default=default, help=f"{subject} pitch in degrees, positive = up{pitch_note}"
    )
    if curve:
        parser.add_argument(
            "--direction-curve",
            type=Path,
            default=None,
            help="JSON/CSV file of time,yaw,pitch samples (media seconds); overrides --yaw/--pitch",
        )


def add_model_arguments(parser: Container, *, exclusive: bool = False) -> None:
    """``--checkpoint`` and ``--model tiny-random``: which weights to load (``exclusive``: not both)."""
    group: Container = parser.add_mutually_exclusive_group() if exclusive else parser
    group.add_argument(
        "--checkpoint",
        default=None,
        help=f"ViSAGe checkpoint folder or Hugging Face repo id; default: the released {RELEASED_CHECKPOINT}",
    )
    group.add_argument(
        "--model",
        default=None,
        choices=["tiny-random"],
        help="tiny-random: offline tiny random models to check an installation (output is noise)",
    )


def add_device_argument(parser: Container, *, help: str = DEVICE_HELP) -> None:
    """``--device``: the torch device (``auto`` picks CUDA, then MPS, then the CPU)."""
    parser.add_argument("--device", default="auto", help=help)


def add_guidance_arguments(parser: Container, *, mode: bool = True) -> None:
    """``--guidance`` (and with ``mode``, ``--guidance-mode``): classifier-free guidance."""
    parser.add_argument(
        "--guidance",
        type=float,
        default=const.DEFAULT_GUIDANCE,
        help="guidance scale (official convention c+s(c-u))",
    )
    if mode:
        parser.add_argument("--guidance-mode", default="joint", choices=GUIDANCE_MODES)


def add_seed_argument(parser: Container, *, help: str = "sampling seed; default: random, recorded") -> None:
    """``--seed``: the sampling seed of the generated audio."""
    parser.add_argument("--seed", type=int, default=None, help=help)


def add_output_format_arguments(parser: Container, *, format: bool = True) -> None:
    """``--sample-rate`` (and with ``format``, ``--format``): how the AmbiX WAV is written."""
    parser.add_argument(
        "--sample-rate",
        type=int,
        default=const.DEFAULT_SAMPLE_RATE_HZ,
        help="output sample rate in Hz; 44100 keeps the codec's",
    )
    if format:
        parser.add_argument("--format", default="pcm24", choices=SAMPLE_FORMATS, help="WAV sample format")


def add_loudness_argument(parser: Container, *, example: str) -> None:
    """``--loudness LUFS``: one gain for the ambisonic channels so that W reaches a loudness."""
    parser.add_argument(
        "--loudness",
        type=float,
        default=None,
        metavar="LUFS",
        help=f"scale the ambisonic channels together (one gain) so that W reaches this integrated loudness, "
        f"{example}",
    )


def add_force_argument(parser: Container, *, help: str = "replace existing output files") -> None:
    """``--force``: a user's file is only replaced when asked."""
    parser.add_argument("--force", action="store_true", help=help)


def add_token_argument(
    parser: Container, *, help: str = "the daemon's token; $VISAGE_TOKEN when not given"
) -> None:
    """``--token``: the daemon's shared secret; the caller falls back to ``$VISAGE_TOKEN``."""
    parser.add_argument("--token", default=None, help=help)


def add_daemon_argument(parser: Container, *, what: str = "shots") -> None:
    """``--daemon auto|HOST:PORT|none``: generate ``what`` on a running `visage serve` daemon, or here."""
    parser.add_argument(
        "--daemon",
        default="auto",
        metavar="auto|HOST:PORT|none",
        help=f"generate the {what} on a running `visage serve` daemon; auto = one if found, else in this "
        "process",
    )


def add_ray_arguments(parser: Container) -> None:
    """``--ray ADDRESS`` and the actors' sizes: generation spread over a Ray cluster's actors, each of
    which loads the model once (`visage.bridge.cluster`)."""
    group = parser.add_argument_group("Ray cluster (pip install 'visage[ray]')")
    group.add_argument(
        "--ray",
        default=None,
        metavar="ADDRESS",
        help="generate on Ray: local (start Ray here), auto (the cluster this machine joined with "
        "`ray start`), ray://HOST:10001 (Ray Client); every node must see the media and output folders "
        "at the same paths",
    )
    group.add_argument(
        "--ray-gpus-per-actor",
        type=float,
        default=None,
        metavar="G",
        help="GPUs each actor holds (0.5: two share one); default 1 when the cluster has GPUs; 0: CPU actors",
    )
    group.add_argument(
        "--ray-cpus-per-actor",
        type=float,
        default=1.0,
        metavar="C",
        help="CPUs each actor holds (its torch threads on a CPU actor)",
    )
    group.add_argument(
        "--ray-actors",
        type=int,
        default=None,
        metavar="N",
        help="at most N actors; default: as many as the cluster's GPUs (or CPUs) hold",
    )
    group.add_argument(
        "--ray-retries",
        type=int,
        default=2,
        metavar="N",
        help="times a shot is retried on another actor when its actor or node dies; then it fails alone",
    )


def add_panorama_arguments(parser: Container, *, save_view: bool = False) -> None:
    """``--equirect``, ``--look`` (and with ``save_view``, ``--save-view``): 360° video as input.

    A video with spherical metadata is read as 360° without them; a 2:1 one without metadata is read
    as flat unless ``--equirect`` says otherwise.
    """
    group = parser.add_argument_group("360° video")
    group.add_argument(
        "--equirect",
        action="store_true",
        help="read the video as an equirectangular 360° panorama even without spherical metadata",
    )
    group.add_argument(
        "--look",
        default=None,
        choices=LOOK_MODES,
        help="auto: each 5-s window of a 360° video looks where things move (else --yaw/--pitch)",
    )
    if save_view:
        group.add_argument(
            "--save-view",
            type=Path,
            default=None,
            metavar="VIEW.mp4",
            help="also write the frames the model saw (the 90° views of a 360° video), 4 fps",
        )
