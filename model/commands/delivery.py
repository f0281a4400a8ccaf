"""Arguments and entry functions of the delivery stages: ``visage binaural``, ``visage viz``, ``visage mux``.

Only argparse lives at module level; each ``run_*`` imports what it needs. Errors are one line,
``visage <command>: error: ...``, with exit status 1.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from visage.bridge.cli_arguments import add_direction_arguments, add_force_argument, add_loudness_argument
from visage.model.cli import command_error

if TYPE_CHECKING:
    from visage.model.features.direction import CameraDirection


def add_binaural_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="AmbiX result WAV (4 ch W, Y, Z, X; SN3D)")
    parser.add_argument(
        "-o",
        "--output",
        default=None,
        help="stereo WAV to write; unset: INPUT's name ending in .binaural.wav",
    )
    add_direction_arguments(parser, subject="listener", unset_from="INPUT")
    parser.add_argument(
        "--sofa",
        default=None,
        help="SimpleFreeFieldHRIR SOFA file to use instead of the built-in spherical head (needs h5py)",
    )
    parser.add_argument(
        "--renderer",
        choices=["spherical-head", "youtube"],
        default="spherical-head",
        help="spherical-head: the built-in head (or --sofa); youtube: the decoder YouTube plays 360° with",
    )
    parser.add_argument(
        "--youtube-filters",
        default=None,
        metavar="DIR",
        help="folder of binaural_decoder_{0,1,2,3}.wav for --renderer youtube; unset: the copies shipped",
    )
    add_force_argument(parser)


def run_binaural(args: argparse.Namespace) -> int:
    from visage.model.delivery.binaural_preview import write_binaural_preview

    try:
        written = write_binaural_preview(
            args.input,
            args.output,
            listener=_direction(args),
            sofa=args.sofa,
            renderer=args.renderer,
            youtube_filters=args.youtube_filters,
            overwrite=args.force,
        )
    except Exception as exc:  # every failure is one line naming the file or argument
        return command_error("binaural", exc)
    loudness = ""
    if written.loudness is not None and written.loudness.binaural_lufs is not None:
        loudness = f", {written.loudness.binaural_lufs:.1f} LUFS"
    renderer = " through YouTube's decoder" if args.renderer == "youtube" else ""
    print(
        f"wrote {written.path} ({written.num_frames / written.sample_rate:.3f} s, {written.sample_rate} Hz, "
        f"binaural{renderer}, listener yaw {written.listener.yaw_deg:g} pitch {written.listener.pitch_deg:g}"
        f"{loudness}) and {written.sidecar.name}"
    )
    return 0


def add_viz_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("result", help="AmbiX result WAV")
    parser.add_argument("--video", required=True, help="the video the result was generated for")
    parser.add_argument("-o", "--output", required=True, help="map.mp4 (moving) or map.png (still)")
    add_direction_arguments(parser, unset_from="RESULT")
    parser.add_argument(
        "--start",
        type=float,
        default=None,
        help="seconds into the video where the result starts; unset: the range in RESULT's sidecar, else 0",
    )
    parser.add_argument("--panorama", action="store_true", help="draw the whole sphere with the frame in it")
    parser.add_argument(
        "--equirect",
        action="store_true",
        help="VIDEO is a 360° equirectangular panorama without spherical metadata (with it, or when RESULT "
        "was generated with --equirect, found alone)",
    )
    parser.add_argument("--fov", type=float, default=90.0, help="camera's horizontal field of view, degrees")
    parser.add_argument("--width", type=int, default=640, help="picture width in pixels")
    parser.add_argument("--window", type=float, default=0.25, help="seconds of audio per map")
    parser.add_argument(
        "--at", type=float, default=None, help="PNG: seconds into the result to show; unset: the whole result"
    )
    parser.add_argument("--fps", type=float, default=None, help="MP4 frame rate; unset: the video's")
    parser.add_argument("--no-audio", action="store_true", help="MP4 without the binaural preview track")
    parser.add_argument(
        "--renderer",
        choices=["spherical-head", "youtube"],
        default="spherical-head",
        help="the MP4's binaural track: the built-in head, or the decoder YouTube plays 360° with",
    )
    add_force_argument(parser)


def run_viz(args: argparse.Namespace) -> int:
    from fractions import Fraction

    from visage.model.delivery.sound_map_render import render_sound_map

    try:
        if args.fps is not None and not 0 < args.fps <= 240:
            raise ValueError(f"--fps must lie in (0, 240], got {args.fps}")
        rendered = render_sound_map(
            args.result,
            args.video,
            args.output,
            camera=_direction(args),
            start_s=args.start,
            hfov_deg=args.fov,
            panorama=args.panorama,
            equirect=True if args.equirect else None,
            width=args.width,
            window_s=args.window,
            at_s=args.at,
            fps=None if args.fps is None else Fraction(args.fps).limit_denominator(1001),
            audio=not args.no_audio,
            renderer=args.renderer,
            overwrite=args.force,
        )
    except Exception as exc:
        return command_error("viz", exc)
    width, height = rendered.size
    frames = (
        "1 still"
        if rendered.kind == "png"
        else f"{rendered.frames} frames at {float(rendered.fps or 0):g} fps"
    )
    view = f"camera yaw {rendered.camera.yaw_deg:g} pitch {rendered.camera.pitch_deg:g}"
    if rendered.on_360_video and args.panorama:
        view = "over the whole 360° video"  # no camera: the heat is drawn on the panorama itself
    elif rendered.on_360_video:
        view += " in the 360° video"
    where = f"result at {rendered.start_s:g} s of the video"
    print(f"wrote {rendered.path} ({frames}, {width}x{height}, {view}, {where})")
    return 0


def add_mux_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="video whose picture is copied (not re-encoded)")
    parser.add_argument("result", help="AmbiX result WAV")
    parser.add_argument("-o", "--output", required=True, help="OUT.mov (PCM, AAC) or OUT.mp4 (AAC, Opus)")
    parser.add_argument(
        "--codec",
        choices=["pcm", "aac", "opus"],
        default=None,
        help="audio codec; unset: pcm for .mov, aac for .mp4",
    )
    parser.add_argument(
        "--start",
        type=float,
        default=None,
        help="seconds into the video where the result starts; unset: the range in RESULT's sidecar, else 0",
    )
    parser.add_argument(
        "--head-locked",
        default=None,
        help="stereo WAV added as head-locked channels 5-6 (not rotated by players)",
    )
    parser.add_argument(
        "--equirect",
        action="store_true",
        help="VIDEO is a 2:1 equirectangular 360° panorama without spherical metadata: mark the output "
        "360°; unset: when RESULT's sidecar says it was generated with --equirect",
    )
    add_loudness_argument(parser, example="e.g. -14, the level YouTube plays at")
    add_force_argument(parser)


def run_mux(args: argparse.Namespace) -> int:
    from visage.model.delivery.spatial_mux import mux_spatial_audio

    try:
        muxed = mux_spatial_audio(
            args.video,
            args.result,
            args.output,
            codec=args.codec,
            start_s=args.start,
            head_locked=args.head_locked,
            target_lufs=args.loudness,
            equirect=True if args.equirect else None,
            overwrite=args.force,
        )
    except Exception as exc:
        return command_error("mux", exc)
    layout = "FOA + head-locked stereo" if muxed.spatial.head_locked_stereo else "FOA"
    gain = f", gain {muxed.gain_db:+.1f} dB" if args.loudness is not None else ""
    print(
        f"wrote {muxed.path} (video copied, {muxed.video_packets} packets; {muxed.codec} {muxed.channels} ch "
        f"{muxed.sample_rate} Hz {layout}, SA3D ACN/SN3D order 1; audio {muxed.audio_s:.3f} s from "
        f"{muxed.start_s:g} s of {muxed.video_s:.3f} s{gain})"
    )
    if muxed.spherical is not None:
        how = "added to the video track: --equirect" if muxed.spherical_added else "kept in the video track"
        print(f"360° video: {muxed.spherical.describe()} (spherical metadata {how})")
    return 0


def _direction(args: argparse.Namespace) -> CameraDirection | None:
    """The direction given on the command line, or None to use the recorded one."""
    from visage.model.features.direction import CameraDirection

    if args.yaw is None and args.pitch is None:
        return None
    return CameraDirection(args.yaw or 0.0, args.pitch or 0.0)
