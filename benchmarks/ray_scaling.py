"""Scaling of ``--ray`` generation: clips per second with 1, 2, ... actors, and the ratio to one actor.

For each actor count, a `RayGenerator` starts its actors (each loads the model once), generates one
warm-up clip per actor (model load, this machine's kernel choices), then the timed run: ``--clips``
clips of ``--seconds`` each, all different, packed ``--jobs`` per actor batch. The figure is clips per
second of the timed run; the ratio divides it by the one-actor figure. Nothing is downloaded:

* ``tiny``: the offline tiny-random models (``--model tiny-random``);
* ``full`` (``--full-size``): the released ViSAGe architecture, CLIP ViT-B/32 and DAC 44.1 kHz with
  seeded random weights, written in the tiny-random bundle's layout in a private cache folder that the
  actors are pointed at (``VISAGE_CACHE_DIR``), so that they load it offline through the production path.

Not a test and never an assertion: run it by hand and record the figures in the README.

    python benchmarks/ray_scaling.py                          # tiny, 1 and 2 CPU actors, under a minute
    python benchmarks/ray_scaling.py --full-size --full-clips 2  # + full size, 2 clips a run (minutes)
    python benchmarks/ray_scaling.py --address auto --gpus-per-actor 1 --actors 1,2,4,8  # per GPU
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Figure:
    """One timed run."""

    size: str
    actors: int
    clips: int
    seconds: float

    @property
    def clips_per_s(self) -> float:
        return self.clips / self.seconds


def write_full_size_bundle(cache: Path, seed: int = 0) -> None:
    """The released architectures with random weights where ``tiny_random_folder`` looks under ``cache``."""
    import dac
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from visage.model.network.config import VisageConfig
    from visage.model.network.visage import Visage

    folder = cache / "tiny-random-v1"  # `inference.tiny_random_bundle.tiny_random_folder`'s name
    folder.mkdir(parents=True, exist_ok=True)
    model = Visage(VisageConfig.preset("released"))
    model.init_weights(torch.Generator().manual_seed(seed))
    model.save_pretrained(folder / "visage", overwrite=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        CLIPVisionModelWithProjection(CLIPVisionConfig()).save_pretrained(folder / "clip")  # ViT-B/32
        dac.DAC().save(str(folder / "dac.pth"), package=False)  # the 44.1-kHz release architecture
    (folder / "complete").write_text("released architectures, random weights (benchmarks/ray_scaling.py)\n")


def make_clips(folder: Path, count: int, seconds: float) -> list[Path]:
    """``count`` synthetic videos of different lengths (so different content)."""
    from visage.model.evaluation.pipeline_bench import write_test_video

    return [
        write_test_video(folder / f"clip{i}.mp4", seconds + 0.1 * (i + 1), size=(160, 120))
        for i in range(count)
    ]


def timed_run(size: str, actors: int, args: argparse.Namespace, media: list[Path], out: Path) -> Figure:
    from visage.bridge.cluster.ray_generator import RayGenerator, RayOptions
    from visage.bridge.fill.generators import GenerationSettings, ShotJob

    def jobs(clips: list[Path], tag: str) -> list[ShotJob]:
        return [
            ShotJob(clip, 0.0, args.seconds, 15.0 * i, 0.0, None, i, out / f"{size}-{actors}-{tag}-{i}.wav")
            for i, clip in enumerate(clips)
        ]

    options = RayOptions(
        args.address,
        cpus_per_actor=args.cpus_per_actor,
        gpus_per_actor=args.gpus_per_actor,
        max_actors=actors,
        batch_size=args.jobs,
    )
    ignore = lambda *a: None  # noqa: E731
    failures: list[str] = []

    def finished(i: int, error: Exception | None) -> None:
        if error is not None:
            failures.append(f"clip {i}: {error}")

    with RayGenerator(GenerationSettings(), options, checkpoint="tiny-random") as generator:
        generator.run(jobs(media[-actors:], "warm-up"), ignore, finished)  # loads, kernel choices
        if generator.actor_count != actors:
            raise SystemExit(f"the cluster holds {generator.actor_count} actor(s), not {actors}")
        start = time.perf_counter()
        generator.run(jobs(media[: args.clips], "timed"), ignore, finished)
        seconds = time.perf_counter() - start
    if failures:
        raise SystemExit("; ".join(failures))
    return Figure(size, actors, args.clips, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--address", default="local", help="--ray ADDRESS (local: start Ray here)")
    parser.add_argument("--actors", default="1,2", help="actor counts to time, comma-separated")
    parser.add_argument("--clips", type=int, default=8, help="clips in each timed run")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each clip")
    parser.add_argument("--jobs", type=int, default=2, help="clips per actor batch")
    parser.add_argument("--cpus-per-actor", type=float, default=1.0)
    parser.add_argument("--gpus-per-actor", type=float, default=None)
    parser.add_argument("--full-size", action="store_true", help="also the released architectures")
    parser.add_argument("--full-clips", type=int, default=2, help="clips in each full-size timed run")
    args = parser.parse_args()
    counts = [int(n) for n in args.actors.split(",")]

    import torch

    from visage.bridge.cluster.ray_session import connect
    from visage.model.inference.tiny_random_bundle import tiny_random_folder
    from visage.model.network.kernel_choice import cpu_name

    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="visage-ray-scaling-") as scratch:
        root = Path(scratch)
        media = make_clips(root, max(args.clips, args.full_clips, max(counts)), args.seconds)
        sizes = ["tiny"] + (["full"] if args.full_size else [])
        for size in sizes:
            cache = root / f"cache-{size}"
            os.environ["VISAGE_CACHE_DIR"] = str(cache)  # a local Ray instance's workers inherit it
            if size == "tiny":
                tiny_random_folder()
            else:
                write_full_size_bundle(cache)
            with connect(args.address) as session:
                print(f"# {size}: {session.describe()}", file=sys.stderr)
                run_args = argparse.Namespace(
                    **{**vars(args), "clips": args.clips if size == "tiny" else args.full_clips}
                )
                for actors in counts:
                    figure = timed_run(size, actors, run_args, media, root)
                    figures.append(figure)
                    print(
                        f"#   {actors} actor(s): {figure.clips} clips in {figure.seconds:.1f} s",
                        file=sys.stderr,
                    )
    cores = os.cpu_count()
    print(
        f"Ray scaling on {cpu_name()}, {cores} cores, torch {torch.__version__}, {args.seconds:g}-s clips, "
        f"{args.cpus_per_actor:g} CPU per actor, {args.jobs} clips per batch"
    )
    print("| models | actors | clips | seconds | clips/s | vs 1 actor |")
    print("|---|---|---|---|---|---|")
    for figure in figures:
        base = next(f for f in figures if f.size == figure.size and f.actors == min(counts))
        ratio = figure.clips_per_s / base.clips_per_s
        print(
            f"| {figure.size} | {figure.actors} | {figure.clips} | {figure.seconds:.1f} | "
            f"{figure.clips_per_s:.3f} | x{ratio:.2f} |"
        )


if __name__ == "__main__":
    main()
