"""Arguments and entry functions of the model-side ``visage`` stages (doctor, bench, ...).

Only argparse lives at module level; each ``run_*`` imports the heavy modules it needs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from visage.bridge.cli_arguments import (
    add_device_argument,
    add_direction_arguments,
    add_force_argument,
    add_guidance_arguments,
    add_loudness_argument,
    add_model_arguments,
    add_output_format_arguments,
    add_panorama_arguments,
    add_range_arguments,
    add_seed_argument,
)
from visage.model.cli import command_error


def add_doctor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fix",
        action="store_true",
        help="repair what can be repaired here (torchaudio's CUDA-only native libraries)",
    )
    parser.add_argument(
        "--check-direction",
        metavar="VIDEO",
        default=None,
        help="instead: generate VIDEO's first 5 s with the camera at yaw +-90 and pitch +-45 and report "
        "whether the sound follows the camera or is mirrored (needs the weights)",
    )
    add_model_arguments(parser, exclusive=True)
    add_device_argument(parser)


def run_doctor(args: argparse.Namespace) -> int:
    if args.check_direction:
        return _run_direction_check(args)
    from visage.model.environment import doctor, format_report

    checks = doctor(fix=args.fix)
    print(format_report(checks))
    return 0 if all(c.ok for c in checks if c.name in ("torch", "torchaudio", "dac", "transformers")) else 1


def _run_direction_check(args: argparse.Namespace) -> int:
    from visage.model.environment import quiet_libraries
    from visage.model.evaluation.direction_check import check_direction, format_direction_report
    from visage.model.files.video_io import probe_video
    from visage.model.inference.pipeline import VideoToAmbisonics
    from visage.model.network.checkpoint import DEFAULT_REPO_ID

    try:
        probe_video(args.check_direction)  # a bad path fails before the models load
        quiet_libraries()
        checkpoint = args.model or args.checkpoint or DEFAULT_REPO_ID
        pipeline = VideoToAmbisonics.load(checkpoint, device=args.device)
        report = check_direction(pipeline, args.check_direction)
    except Exception as exc:  # one line naming the file or the missing weights
        return command_error("doctor", exc)
    print(format_direction_report(report))
    return 0


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    p = sub.add_parser(
        "generate",
        help="decoder steps/s and seconds per 5-s clip vs the official loop",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_device_argument(p)
    p.add_argument("--dtype", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
    p.add_argument("--batch", nargs="+", type=int, default=[1, 16])
    p.add_argument(
        "--frames",
        type=int,
        default=None,
        help="code frames per run (default 430 = a 5-s clip on GPU, 24 on CPU)",
    )
    p.add_argument("--no-reference", action="store_true", help="skip the official-structure loop")
    p.add_argument("--preset", default="released", help="architecture preset (released, tiny)")
    p.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    p = sub.add_parser(
        "pipeline",
        help="one clip end to end, stage by stage, vs the official structure (random weights, no download)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--seconds", type=float, default=5.0, help="clip length in seconds (at most 5)")
    p.add_argument("--size", default="full", choices=["full", "tiny"], help="full: CLIP ViT-B/32, DAC 44 kHz")
    add_device_argument(p)
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--no-reference", action="store_true", help="skip the official structure")
    p.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    p = sub.add_parser(
        "codec",
        help="DAC decoding: as released vs as the pipeline runs it (bit equality and speed)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--seconds", type=float, default=1.0, help="seconds of 4-channel audio per decode")
    p.add_argument("--size", default="full", choices=["full", "tiny"], help="full: DAC 44 kHz")
    p.add_argument("--repeats", type=int, default=3, help="decodes per variant (the fastest counts)")
    add_device_argument(p)
    p = sub.add_parser(
        "fast-path",
        help="speed of generate --fast bf16/int8 vs the exact fp32 loop, beside its fidelity (CPU)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--kind", nargs="+", default=["bf16", "int8"], choices=["bf16", "int8"])
    p.add_argument("--preset", nargs="+", default=["tiny", "released"], help="architectures, random weights")
    p.add_argument("--checkpoint", default=None, help="measure these weights instead (folder or repo id)")
    p.add_argument("--frames", type=int, default=430, help="code frames per run (430: 861 steps, a 5-s clip)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2, help="runs per loop, interleaved (the fastest counts)")
    p.add_argument("--no-reference", action="store_true", help="skip the official-structure loop")


def run_bench(args: argparse.Namespace) -> int:
    if args.what == "pipeline":
        return _run_pipeline_bench(args)
    if args.what == "codec":
        from visage.model.evaluation.codec_bench import run_codec_benchmark

        run_codec_benchmark(
            seconds=args.seconds, size=args.size, repeats=args.repeats, device=args.device, log=_print_now
        )
        return 0
    if args.what == "fast-path":
        from visage.model.evaluation.fast_path_bench import run_fast_path_benchmark

        run_fast_path_benchmark(
            presets=tuple(args.preset),
            checkpoint=args.checkpoint,
            kinds=tuple(args.kind),
            frames=args.frames,
            batch=args.batch,
            repeats=args.repeats,
            reference=not args.no_reference,
            log=_print_now,
        )
        return 0
    from visage.model.evaluation.bench import run_benchmark

    rows = run_benchmark(
        device=args.device,
        dtypes=tuple(args.dtype),
        batches=tuple(args.batch),
        frames=args.frames,
        reference=not args.no_reference,
        preset=args.preset,
        log=lambda line: print(line, flush=True),
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) | {"steps_per_second": r.steps_per_second} for r in rows], f, indent=2)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _print_now(line: str) -> None:
    print(line, flush=True)


def _run_pipeline_bench(args: argparse.Namespace) -> int:
    from visage.model.environment import quiet_libraries
    from visage.model.evaluation.pipeline_bench import run_pipeline_benchmark, write_json

    quiet_libraries()
    try:
        result = run_pipeline_benchmark(
            size=args.size,
            seconds=args.seconds,
            device=args.device,
            dtype=args.dtype,
            reference=not args.no_reference,
            log=_print_now,
        )
    except ValueError as exc:
        return command_error("bench", exc)
    if args.json:
        write_json(result, args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="video file (any container/codec FFmpeg reads)")
    parser.add_argument("-o", "--output", required=True, help="AmbiX WAV to write (W, Y, Z, X; SN3D)")
    add_range_arguments(parser)
    add_direction_arguments(parser, curve=True)
    add_model_arguments(parser)
    parser.add_argument("--subfolder", default=None, help="checkpoint folder inside the repo or folder")
    add_guidance_arguments(parser)
    parser.add_argument(
        "--direction-scale", type=float, default=None, help="dual mode: directional guidance scale"
    )
    add_seed_argument(parser)
    parser.add_argument("--top-k", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=1.0)
    add_device_argument(parser)
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="auto = bf16 on CUDA, fp32 elsewhere (fp32 reproduces the official model exactly)",
    )
    parser.add_argument(
        "--fast",
        default=None,
        choices=["bf16", "int8"],
        help="not exact: the decoder's per-step weights in bf16 or int8, faster on a CPU (default off)",
    )
    add_output_format_arguments(parser)
    parser.add_argument(
        "--binaural-preview",
        action="store_true",
        help="also write OUT.binaural.wav, stereo for headphones facing the camera",
    )
    parser.add_argument(
        "--preview-renderer",
        choices=["spherical-head", "youtube"],
        default="spherical-head",
        help="the preview's decoder: the built-in head, or the one YouTube plays 360° videos with",
    )
    add_loudness_argument(parser, example="e.g. -23")
    add_panorama_arguments(parser, save_view=True)
    add_force_argument(parser)


def run_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from visage.model.environment import quiet_libraries
    from visage.model.files.result_files import INPUT_KEY
    from visage.model.inference.job_request import JobOptions, job_request
    from visage.model.inference.pipeline import VideoToAmbisonics, validate_request
    from visage.model.network.checkpoint import DEFAULT_REPO_ID

    try:
        if args.preview_renderer != "spherical-head" and not args.binaural_preview:
            raise ValueError(
                f"--preview-renderer {args.preview_renderer} chooses the preview's decoder; "
                "add --binaural-preview to write one"
            )
        request = job_request(
            Path(args.video),
            output=Path(args.output),
            start=args.start,
            end=args.end,
            yaw_deg=args.yaw,
            pitch_deg=args.pitch,
            direction_curve=args.direction_curve,
            guidance_scale=args.guidance,
            seed=args.seed,
            sample_rate=args.sample_rate,
            overwrite=args.force,
            options=JobOptions(
                guidance_mode=args.guidance_mode,
                direction_scale=args.direction_scale,
                format=args.format,
                top_k=args.top_k,
                temperature=args.temperature,
                binaural_preview=args.binaural_preview,
                preview_renderer=args.preview_renderer,
                loudness_target=args.loudness,
                equirect=args.equirect,
                look=args.look,
            ),
            save_view=args.save_view,
        )
        validate_request(request)  # before the slow part: model loading
        checkpoint = args.model or args.checkpoint or DEFAULT_REPO_ID
        quiet_libraries()
        pipeline = VideoToAmbisonics.load(
            checkpoint, subfolder=args.subfolder, device=args.device, dtype=args.dtype, fast=args.fast
        )
    except Exception as exc:  # every failure is one line naming the file or argument
        return command_error("generate", exc)
    with tqdm(
        total=100,
        unit="%",
        desc="generating",
        disable=None,
        bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}]{postfix}",
    ) as bar:

        def progress(_index: int, fraction: float, stage: str) -> None:
            percent = int(100 * fraction)
            if percent != bar.n or stage != bar.postfix:
                bar.n = percent
                bar.set_postfix_str(stage, refresh=False)
                bar.refresh()

        (result,) = pipeline.generate([request], progress=progress)
    if isinstance(result, Exception):
        return command_error("generate", result)
    written = result.written
    print(
        f"wrote {written.path} ({written.num_frames / written.sample_rate:.3f} s, {written.sample_rate} Hz, "
        f"4 ch AmbiX) and {written.sidecar.name}"
    )
    if result.preview is not None:
        print(f"wrote {result.preview.path} (binaural preview for headphones)")
    if args.save_view is not None:
        print(f"wrote {args.save_view} (the frames the model saw, 4 fps)")
    read_as = result.metadata.get(INPUT_KEY, {})
    if read_as.get("projection") == "equirectangular":
        print(_panorama_line(read_as))
    if read_as.get("note"):
        print(f"note: {read_as['note']}")
    loudness = result.metadata.get("loudness")
    if loudness and loudness.get("w_lufs") is not None:
        print(f"loudness: W {loudness['w_lufs']:.1f} LUFS")
    if args.model == "tiny-random":
        print("note: tiny-random models produce noise; use the released checkpoint for real audio")
    return 0


def _panorama_line(read_as: dict[str, Any]) -> str:
    """How a 360° video was read, from the sidecar's input entry: so the user sees it was 360°, where
    the views looked and which way the result's front is, without opening the sidecar."""
    views = ", ".join(f"{round(v['yaw_deg'])}°/{round(v['pitch_deg'])}°" for v in read_as["views"])
    looked = " (--look auto)" if any(v["looked"] for v in read_as["views"]) else ""
    return (
        f"360° video ({read_as['detected_by']}): views at panorama yaw/pitch {views}{looked}; "
        f"{read_as['sound_field']}"
    )


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", default=None, help="ViSAGe repo id or folder (default jaeyeonkim99/visage)"
    )
    parser.add_argument("--subfolder", default=None, help="checkpoint folder inside the repo")
    parser.add_argument("--clip", default=None, help="CLIP model (default openai/clip-vit-base-patch32)")
    parser.add_argument(
        "--skip", nargs="+", default=[], choices=["visage", "clip", "dac"], help="parts to skip"
    )


def run_download(args: argparse.Namespace) -> int:
    import os

    from visage.model.audio.codec import DacCodec
    from visage.model.features.vision import DEFAULT_CLIP_MODEL, ClipVisionEncoder
    from visage.model.network.checkpoint import DEFAULT_REPO_ID, resolve_checkpoint_dir

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline:
        print("HF_HUB_OFFLINE is set: checking the caches only (unset it to download)", file=sys.stderr)
    steps = {
        "visage": lambda: resolve_checkpoint_dir(
            args.checkpoint or DEFAULT_REPO_ID, subfolder=args.subfolder, local_files_only=offline
        ),
        "clip": lambda: ClipVisionEncoder.from_pretrained(
            args.clip or DEFAULT_CLIP_MODEL, local_files_only=offline
        ),
        "dac": lambda: DacCodec.load(None),
    }
    failures = 0
    for name, step in steps.items():
        if name in args.skip:
            continue
        print(f"{name}: fetching (cached files are reused)...", flush=True)
        try:
            where = step()
        except Exception as exc:
            failures += 1
            print(f"{name}: error: {exc}", file=sys.stderr)
            continue
        print(f"{name}: ready{f' at {where}' if isinstance(where, (str, os.PathLike)) else ''}")
    return 1 if failures else 0
