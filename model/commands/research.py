"""Arguments and entry functions of the research stages: dataset, train, eval, synthetic-bench.

Only argparse lives at module level; each ``run_*`` imports what it needs. Errors are one line,
``visage <command>: error: ...``, and exit status 1.

``visage train`` runs under ``accelerate launch`` unchanged (``accelerate launch -m visage.model.cli
train CONFIG`` on one GPU, several GPUs or several machines).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visage.bridge.cli_arguments import add_ray_arguments
from visage.model.cli import command_error

if TYPE_CHECKING:  # pragma: no cover
    from visage.model.dataset.build import FeatureModels


def _write_json(path: Path, text: str) -> None:
    """Write a results file the user named, atomically (a crash never leaves half a JSON)."""
    from visage.model.files.output_files import atomic_output

    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")


# -- dataset ------------------------------------------------------------------------------------------


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser(
        "build",
        help="360° recordings and/or a field-of-view clip table -> features in shards + manifest",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "sources",
        nargs="*",
        metavar="SRC",
        help="equirectangular 360° videos (4-channel track inside or in <stem>.wav)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="dataset folder (created, or extended: interrupted builds resume)",
    )
    p.add_argument(
        "--table",
        default=None,
        help="CSV of already-cropped field-of-view clips (id[,video,audio,split,yaw,pitch])",
    )
    p.add_argument(
        "--directions", default=None, help="ambi.json-style direction file {id: [e, a]} for --table"
    )
    p.add_argument(
        "--fuma", action="store_true", help="the 4-channel tracks are FuMa (W, X, Y, Z), not AmbiX"
    )
    p.add_argument("--clip-seconds", type=int, default=5)
    p.add_argument(
        "--min-valid-seconds", type=int, default=3, help="keep clips with more valid seconds than this"
    )
    p.add_argument(
        "--rms-threshold-db", type=float, default=-50.0, help="per-second RMS of W for a valid second (dBFS)"
    )
    p.add_argument(
        "--val-fraction", type=float, default=0.0, help="share of recordings put in the validation split"
    )
    p.add_argument("--shard-size", type=int, default=64, help="clips per shard")
    p.add_argument("--no-views", action="store_true", help="do not write the rendered field-of-view MP4s")
    p.add_argument(
        "--clip-model",
        default=None,
        help="CLIP weights (default openai/clip-vit-base-patch32; tiny-random: offline check)",
    )
    p.add_argument(
        "--codec",
        default=None,
        help="dac (release), dac:PATH, carrier[:K:C]; default dac (tiny random DAC with tiny-random CLIP)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    add_ray_arguments(p)


def load_feature_models(
    clip_source: str | Path, codec_spec: str, clip_model: str, device: str
) -> FeatureModels:
    """The dataset's feature models: CLIP from ``clip_source``, the codec ``codec_spec`` names; on a Ray
    actor, each loads its own (module-level, so that it travels to the actors by reference)."""
    from visage.model.audio.codec_spec import load_codec
    from visage.model.dataset.build import FeatureModels
    from visage.model.environment import quiet_libraries
    from visage.model.features.vision import ClipVisionEncoder
    from visage.model.inference.device_choice import resolve_device

    quiet_libraries()
    resolved = str(resolve_device(device))
    vision = ClipVisionEncoder.from_pretrained(clip_source, device=resolved)
    return FeatureModels(vision, load_codec(codec_spec, device=resolved), clip_model, codec_spec)


def run_dataset(args: argparse.Namespace) -> int:
    from pathlib import Path

    if not args.sources and not args.table:
        return command_error("dataset", "give 360° recordings (SRC...) and/or --table")
    if args.directions and not args.table:
        return command_error("dataset", "--directions goes with --table")
    try:
        from visage.model.dataset.build import BuildOptions, build_dataset
        from visage.model.dataset.clip_selection import SelectionRules
        from visage.model.dataset.direction_table import read_clip_table
        from visage.model.environment import quiet_libraries
        from visage.model.features.vision import DEFAULT_CLIP_MODEL
        from visage.model.inference.tiny_random_bundle import tiny_random_folder

        quiet_libraries()

        options = BuildOptions(
            rules=SelectionRules(args.clip_seconds, args.min_valid_seconds, args.rms_threshold_db),
            fuma=args.fuma,
            shard_size=args.shard_size,
            val_fraction=args.val_fraction,
            write_views=not args.no_views,
        )
        missing = [s for s in args.sources if not Path(s).is_file()]
        if missing:
            return command_error("dataset", f"no such recording(s): {', '.join(missing)}")
        table = read_clip_table(args.table, args.directions) if args.table else []
        clip_model, codec_spec = args.clip_model or DEFAULT_CLIP_MODEL, args.codec or "dac"
        clip_source: str | Path = clip_model
        if clip_model == "tiny-random":
            folder = tiny_random_folder()  # built here once, before any actor reads it
            clip_source = folder / "clip"
            codec_spec = args.codec or f"dac:{folder / 'dac.pth'}"
        build: dict[str, Any] = {"recordings": args.sources, "table": table, "options": options, "log": print}
        if args.ray:
            report = _build_on_ray(args, (clip_source, codec_spec, clip_model), build)
        else:
            models = load_feature_models(clip_source, codec_spec, clip_model, args.device)
            report = build_dataset(args.output, models, **build)
    except KeyboardInterrupt:
        print(
            "visage dataset: interrupted; the shards written are kept: run again to resume", file=sys.stderr
        )
        return 130
    except Exception as exc:  # one line naming the file, row or option
        return command_error("dataset", exc)
    print(
        f"{report.built} clips built, {report.already_done} already there, "
        f"{len(report.failures)} failed; {report.manifest}"
    )
    return 0


def _build_on_ray(
    args: argparse.Namespace, models: tuple[str | Path, str, str], build: dict[str, Any]
) -> Any:
    """`build_dataset` with the features computed on the Ray cluster ``--ray`` names: as many actors as
    it holds (``--ray-actors`` at most), each loading the feature models once."""
    import functools

    from visage.bridge.cluster.actor_plan import actor_count, actor_shape
    from visage.bridge.cluster.ray_session import connect
    from visage.model.dataset.build import build_dataset
    from visage.model.dataset.ray_build import ActorSize, RayFeaturizer

    if args.ray_actors is not None and args.ray_actors < 1:
        raise ValueError("--ray-actors must be at least 1")
    with connect(args.ray) as session:
        nodes = session.nodes()
        shape = actor_shape(
            nodes, cpus_per_actor=args.ray_cpus_per_actor, gpus_per_actor=args.ray_gpus_per_actor
        )
        count = actor_count(nodes, shape, args.ray_actors)
        if count < 1:
            raise ValueError(f"the Ray cluster has no node with room for one actor of {shape.needs()}")
        size = ActorSize(actors=count, cpus=shape.cpus, gpus=shape.gpus, retries=args.ray_retries)
        print(f"visage dataset: {session.describe()}; {count} feature actor(s) of {shape.needs()}")
        load = functools.partial(load_feature_models, *models, shape.device)
        with RayFeaturizer(load, size) as featurizer:
            return build_dataset(args.output, featurizer, **build)


# -- train --------------------------------------------------------------------------------------------


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="TOML training configuration (see visage.model.training.config)")
    parser.add_argument(
        "--check", action="store_true", help="validate the configuration and the dataset, then stop"
    )


def run_train(args: argparse.Namespace) -> int:
    try:
        from visage.model.dataset.shard_format import Manifest
        from visage.model.training.config import load_config

        config = load_config(args.config)
        manifest = Manifest.read(config.data.dataset)
        if args.check:
            print(
                f"{args.config}: ok ({len(manifest.split('train'))} training, "
                f"{len(manifest.split('val'))} validation clips)"
            )
            return 0
        from visage.model.environment import quiet_libraries
        from visage.model.training.loop import train

        quiet_libraries()

        result = train(config)
    except Exception as exc:
        return command_error("train", exc)
    val = f", validation loss {result.val_loss:.4f}" if result.val_loss is not None else ""
    print(f"trained {result.steps} steps in {result.seconds:.0f} s{val}; checkpoint {result.checkpoint}")
    return 0


# -- eval ---------------------------------------------------------------------------------------------


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("generated", metavar="GENERATED_DIR", help="generated AmbiX files, <id>.wav")
    parser.add_argument("reference", metavar="REFERENCE_DIR", help="reference AmbiX files, <id>.wav")
    parser.add_argument(
        "--directions", default=None, help="camera directions: ambi.json-style JSON or CSV (id,yaw,pitch)"
    )
    parser.add_argument("--spatial-only", action="store_true", help="skip FAD/KLD (no VGGish/PaSST needed)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the paper-mode AUC jitter")
    parser.add_argument("--device", default="cpu", help="device of the VGGish/PaSST models")


def run_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    if not args.spatial_only and not args.directions:
        return command_error("eval", "the semantic metrics need --directions (or pass --spatial-only)")
    try:
        from visage.model.evaluation.paper_metrics import evaluate, format_table

        embedder = classifier = None
        if not args.spatial_only:
            from visage.model.evaluation.audio_feature_models import (
                FeatureModelUnavailable,
                load_passt,
                load_vggish,
            )

            try:
                embedder, classifier = load_vggish(args.device), load_passt(args.device)
            except FeatureModelUnavailable as exc:
                return command_error("eval", f"{exc}; or pass --spatial-only for CC and AUC alone")
        result = evaluate(
            args.generated,
            args.reference,
            directions=args.directions,
            embedder=embedder,
            classifier=classifier,
            seed=args.seed,
        )
    except Exception as exc:
        return command_error("eval", exc)
    print(format_table(result))
    if args.json:
        _write_json(Path(args.json), result.to_json())
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


# -- synthetic benchmark ------------------------------------------------------------------------------


def add_synthetic_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--work-dir",
        default="synthetic-bench",
        help="folder for clips, dataset and runs: new, empty, or an earlier run's (replaced)",
    )
    parser.add_argument("--train-clips", type=int, default=384)
    parser.add_argument("--test-clips", type=int, default=32)
    parser.add_argument("--train-steps", type=int, default=700, help="steps of each of the two trainings")
    parser.add_argument(
        "--ambient-level",
        type=float,
        default=0.25,
        help="amplitude of the world-fixed ambient bed (the shape peaks at 0.3); 0.1: a near-centre "
        "single source, where Ambi Enc. (given the true direction) is close to an oracle",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the table to this JSON file")


def run_synthetic_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    try:
        from visage.model.environment import quiet_libraries
        from visage.model.evaluation.synthetic_benchmark import (
            BenchmarkConfig,
            format_benchmark,
            run_benchmark,
        )

        quiet_libraries()

        config = BenchmarkConfig(
            train_clips=args.train_clips,
            test_clips=args.test_clips,
            train_steps=args.train_steps,
            ambient_level=args.ambient_level,
            seed=args.seed,
        )
        result = run_benchmark(args.work_dir, config, log=print)
    except Exception as exc:
        return command_error("synthetic-bench", exc)
    print(format_benchmark(result))
    if args.json:
        _write_json(Path(args.json), result.to_json())
    return 0
