"""A spatial benchmark that runs on a CPU: does training teach a tiny ViSAGe where sounds come from?

1. Procedural clips (``synthetic_scenes``): a camera direction and a moving, pulsing shape whose sound
   sits where the shape is, plus an ambient bed fixed in the world. Each clip is written as a
   field-of-view MP4, an AmbiX WAV and a row of a clip table (yaw, pitch).
2. The dataset is built from that table by the real builder (``dataset_build``): PyAV frames, a tiny
   random CLIP (whose patch tokens locate the shape: its energy map peaks within a patch of it), the
   real patch energy map, and the codec. The codec is ``carrier_codec``, a deterministic stand-in: a
   randomly initialised DAC does not keep the relative level and sign of W, Y, Z and X (so no model
   could be scored spatially through it) and the released DAC cannot be downloaded here.
3. Two tiny ViSAGe models are trained by the real training loop (``training.train``) for the same
   number of steps (a step budget, not a time budget, so results do not depend on the machine's
   load): ViSAGe, and a direction-blind model whose direction is always replaced by the null
   embedding.
4. On held-out clips: ViSAGe and the direction-blind model generate codes (guided, sampled, as the
   official inference does), decoded by the codec; the paper's "Ambi Enc." baseline (paper §6.1) takes
   the W channel of the direction-blind model's output (a video-to-audio model's mono sound) and
   encodes it at the ground-truth camera direction with the paper's formula. The codec round trip of the
   ground truth shows the best any model could score.
5. CC and AUC against the ground-truth FOA, both metric modes, as ``visage eval`` computes them.

Dimension letters: B clips, F CLIP frames, T code frames, K code rows, N samples.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from visage.model.audio.carrier_codec import CarrierCodec
from visage.model.audio.codec import FoaCodec
from visage.model.dataset.build import BuildOptions, FeatureModels, build_dataset
from visage.model.dataset.clip_selection import SelectionRules
from visage.model.dataset.direction_table import read_clip_table
from visage.model.dataset.shard_format import Manifest
from visage.model.features.direction import CameraDirection
from visage.model.features.vision import ClipVisionEncoder, build_tiny_random_clip
from visage.model.files.audio_io import resample, write_ambix
from visage.model.files.panorama_video import write_view_clip
from visage.model.network.generation import Guidance, generate
from visage.model.training.config import config_from_dict
from visage.model.training.loop import train

from . import spatial_metrics as sm
from .paper_metrics import spatial_scores
from .synthetic_scenes import (
    AMBIENT_LEVEL,
    SHAPES,
    SOURCE_LEVEL,
    Scene,
    random_scene,
    render_foa,
    render_frames,
)

Log = Callable[[str], None]
CODEC_SPEC = "carrier:{books}:{levels}"


@dataclass(frozen=True)
class BenchmarkConfig:
    """Sizes and budgets. The defaults take about six minutes on two otherwise idle CPU cores.

    Attributes:
        train_clips, test_clips: procedural clips for training and for scoring.
        clip_seconds: clip length (2 s: 8 CLIP frames, 172 code frames, 345 pattern steps).
        train_steps: optimiser steps of each of the two trainings.
        batch_size, lr: training batch and learning rate (higher than the official 1e-4: tiny model).
        d_model, layers, heads, ffn: the tiny architecture (encoder and decoder alike).
        codebooks, levels: the carrier codec's codebooks per channel and levels per codebook.
        ambient_level: amplitude of the world-fixed ambient bed against the shape's 0.3 peak. With a
            quiet bed (0.1) the one shape, always within 27° of the camera axis, is nearly all the
            sound, and "Ambi Enc.", which is handed the true camera direction, is close to an oracle.
        guidance_scale: classifier-free guidance at generation (official 2.5); sampling keeps the top
            quarter of the levels, as the official top-k 256 of 1024 codes.
        seed: everything random derives from it.
    """

    train_clips: int = 384
    test_clips: int = 32
    clip_seconds: int = 2
    train_steps: int = 700
    batch_size: int = 16
    lr: float = 2e-3
    d_model: int = 64
    layers: int = 2
    heads: int = 4
    ffn: int = 128
    codebooks: int = 1 + len(SHAPES)
    levels: int = 63
    ambient_level: float = AMBIENT_LEVEL
    guidance_scale: float = 2.5
    seed: int = 0


@dataclass(frozen=True)
class BenchmarkRow:
    """One system's mean scores on the held-out clips, per metric mode."""

    name: str
    spatial: dict[str, sm.SpatialScores]


@dataclass(frozen=True)
class BenchmarkResult:
    rows: list[BenchmarkRow]
    train_steps: dict[str, int]
    seconds: float
    config: BenchmarkConfig

    def to_json(self) -> str:
        data = {
            "rows": [
                {"name": r.name, "spatial": {m: asdict(s) for m, s in r.spatial.items()}} for r in self.rows
            ],
            "train_steps": self.train_steps,
            "seconds": self.seconds,
            "config": asdict(self.config),
        }
        return json.dumps(data, indent=1) + "\n"


def ambi_enc(mono: np.ndarray, camera: CameraDirection) -> np.ndarray:
    """The paper's "Ambi Enc." baseline: a mono W signal encoded at the camera direction.

    Paper §6.1: ``W = s/√2, X = cos φ cos θ s, Y = sin φ cos θ s, Z = sin θ s`` with ``s = √2 W``, i.e.
    W unchanged and the dipoles √2 times the plane-wave (SN3D) gains. φ, θ: the camera's AmbiX azimuth
    and elevation.

    Returns:
        ``[4, N]`` AmbiX (W, Y, Z, X).
    """
    az, el = math.radians(camera.yaw_deg), math.radians(camera.pitch_deg)
    s = math.sqrt(2.0) * np.asarray(mono, dtype=np.float64)
    foa = np.stack(
        [
            s / math.sqrt(2.0),
            math.sin(az) * math.cos(el) * s,
            math.sin(el) * s,
            math.cos(az) * math.cos(el) * s,
        ]
    )
    return foa.astype(np.float32)


def write_scene_files(
    folder: Path,
    scenes: list[Scene],
    splits: list[str],
    codec: CarrierCodec,
    seconds: int,
    ambient_level: float = AMBIENT_LEVEL,
) -> Path:
    """Field-of-view MP4s, AmbiX WAVs and the clip table of the scenes; returns the table's path."""
    (folder / "views").mkdir(parents=True, exist_ok=True)
    (folder / "audio").mkdir(exist_ok=True)
    n = seconds * codec.sample_rate
    carriers = np.stack([codec.carrier_signal(q, n) for q in range(codec.num_codebooks)])
    table = folder / "clips.csv"
    with table.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["id", "video", "audio", "yaw", "pitch", "split"])
        for i, (scene, split) in enumerate(zip(scenes, splits, strict=True)):
            clip_id = f"scene{i:05d}"
            write_view_clip(
                folder / "views" / f"{clip_id}.mp4", render_frames(scene, seconds * 4), fps=4, overwrite=True
            )
            foa = render_foa(scene, carriers, codec.sample_rate, ambient_level=ambient_level)
            write_ambix(
                folder / "audio" / f"{clip_id}.wav", foa, codec.sample_rate, subtype="FLOAT", overwrite=True
            )
            out.writerow(
                [
                    clip_id,
                    f"views/{clip_id}.mp4",
                    f"audio/{clip_id}.wav",
                    scene.camera.yaw_deg,
                    scene.camera.pitch_deg,
                    split,
                ]
            )
    return table


def _train_config(c: BenchmarkConfig, dataset: Path, output: Path, direction_dropout: float) -> dict:
    frames = c.clip_seconds * 4
    steps = 2 * (frames * 86 // 4) + 1
    return {
        "data": {"dataset": str(dataset), "batch_size": c.batch_size},
        "model": {
            "preset": "tiny",
            "architecture": {
                "d_model": c.d_model,
                "encoder_layers": c.layers,
                "decoder_layers": c.layers,
                "encoder_attention_heads": c.heads,
                "decoder_attention_heads": c.heads,
                "encoder_ffn_dim": c.ffn,
                "decoder_ffn_dim": c.ffn,
                "num_rvq": c.codebooks,
                "dac_vocab_size": c.levels,
                "dac_pad_token_id": c.levels,
                "max_source_length": frames,
                "max_target_length": steps,
            },
        },
        "optim": {"lr": c.lr},
        "train": {
            "output_dir": str(output),
            "epochs": 0,
            "max_steps": c.train_steps,
            "seed": c.seed,
            "direction_dropout": direction_dropout,
            "val_every": 0,
            "checkpoint_every": 0,
            "log_every": 25,
            "loss_chunk_rows": 0,  # tiny heads: no need to trade compute for memory
            "resume": False,
        },
    }


def _generate_audio(
    checkpoint: Path, manifest: Manifest, folder: Path, codec: FoaCodec, c: BenchmarkConfig, blind: bool
) -> np.ndarray:
    """Decoded AmbiX [B, 4, N] of the test clips generated by a trained checkpoint."""
    from visage.model.network.checkpoint import load_pretrained
    from visage.model.training.data import ClipDataset

    model = load_pretrained(checkpoint / "model")
    data = ClipDataset(folder, manifest.split("val"), model.config.sequence)
    examples = [data.example(i) for i in range(len(data))]
    clip = torch.stack([e.clip for e in examples])
    energy = torch.stack([e.energy for e in examples])
    direction = torch.stack([e.direction for e in examples])
    if blind:  # the direction-blind model only ever saw the null direction
        direction = model.null_direction.detach().expand(len(examples), -1).clone()  # type: ignore[union-attr]
    generators = [torch.Generator().manual_seed(c.seed * 7919 + i) for i in range(len(examples))]
    result = generate(
        model,
        clip,
        energy,
        direction,
        guidance=Guidance("joint", c.guidance_scale),
        top_k=max(1, c.levels // 4),
        generator=generators,
    )
    return codec.decode(result.codes).numpy()


def _eval_audio(foa: np.ndarray, rate: int, seconds: int) -> np.ndarray:
    """``[4, N]`` at ``rate`` -> ``[T, 4]`` at 16 kHz, the clip's length (padded to 5 s by the metrics)."""
    return resample(foa[:, : seconds * rate], rate, sm.SAMPLE_RATE, num_samples=seconds * sm.SAMPLE_RATE).T


WORK_DIR_MARKER = ".visage-synthetic-bench"  # marks a folder this benchmark may replace


def claim_work_dir(work: Path) -> None:
    """Empty ``work`` for a new run, deleting only a folder an earlier run made."""
    if work.exists() and not work.is_dir():
        raise ValueError(f"{work} is a file; the benchmark needs a folder")
    if work.is_dir() and any(work.iterdir()):
        if not (work / WORK_DIR_MARKER).is_file():
            raise ValueError(
                f"{work} is not empty and was not made by the synthetic benchmark; choose a new folder"
            )
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / WORK_DIR_MARKER).write_text("made by `visage synthetic-bench`; replaced by its next run\n")


def run_benchmark(
    work_dir: str | Path, config: BenchmarkConfig | None = None, *, log: Log = print
) -> BenchmarkResult:
    """Run the whole benchmark in ``work_dir`` and return its table.

    ``work_dir`` must be new, empty, or the folder of an earlier run (which is replaced).

    Raises:
        ValueError: ``work_dir`` holds anything else (it is never deleted).
    """
    c = config or BenchmarkConfig()
    started = time.monotonic()
    work = Path(work_dir)
    claim_work_dir(work)
    carrier = CarrierCodec(num_codebooks=c.codebooks, cardinality=c.levels)
    codec = FoaCodec(carrier)
    rng = np.random.default_rng(c.seed)
    scenes = [random_scene(rng) for _ in range(c.train_clips + c.test_clips)]
    splits = ["train"] * c.train_clips + ["val"] * c.test_clips
    log(f"writing {len(scenes)} procedural clips")
    table = write_scene_files(work / "scenes", scenes, splits, carrier, c.clip_seconds, c.ambient_level)
    vision = ClipVisionEncoder.from_pretrained(build_tiny_random_clip(work / "tiny-clip", seed=c.seed))
    models = FeatureModels(
        vision, codec, "tiny-random", CODEC_SPEC.format(books=c.codebooks, levels=c.levels)
    )
    log("building the dataset")
    options = BuildOptions(
        rules=SelectionRules(clip_seconds=c.clip_seconds, min_valid_seconds=0),
        shard_size=256,
        write_views=False,
    )
    report = build_dataset(work / "dataset", models, table=read_clip_table(table), options=options, log=log)
    if report.failures:
        raise RuntimeError(f"the benchmark dataset has failures: {report.failures[:3]}")
    manifest = Manifest.read(work / "dataset")
    steps, audio = {}, {}
    for name, dropout in (("ViSAGe", 0.1), ("direction-blind", 1.0)):
        log(f"training {name} for {c.train_steps} steps")
        trained = train(config_from_dict(_train_config(c, work / "dataset", work / name, dropout)), log=log)
        steps[name] = trained.steps
        assert trained.checkpoint is not None  # the training config saves at its end
        audio[name] = _generate_audio(
            trained.checkpoint, manifest, work / "dataset", codec, c, blind=name != "ViSAGe"
        )
    test = scenes[c.train_clips :]
    rate = carrier.sample_rate
    n = c.clip_seconds * rate
    carriers = np.stack([carrier.carrier_signal(q, n) for q in range(carrier.num_codebooks)])
    truth = [render_foa(s, carriers, rate, ambient_level=c.ambient_level) for s in test]
    round_trip = codec.decode(codec.encode(torch.from_numpy(np.stack(truth)))).numpy()
    systems = {
        "ViSAGe": list(audio["ViSAGe"]),
        "direction-blind": list(audio["direction-blind"]),
        "Ambi Enc.": [ambi_enc(a[0], s.camera) for a, s in zip(audio["direction-blind"], test, strict=True)],
        "codec round trip (bound)": list(round_trip),
    }
    reference = [_eval_audio(t, rate, c.clip_seconds) for t in truth]
    rows = []
    for name, outputs in systems.items():
        generated = [_eval_audio(o, rate, c.clip_seconds) for o in outputs]
        rows.append(BenchmarkRow(name, spatial_scores(generated, reference, seed=c.seed)))
    result = BenchmarkResult(rows, steps, time.monotonic() - started, c)
    (work / "benchmark.json").write_text(result.to_json())
    return result


def format_benchmark(result: BenchmarkResult) -> str:
    """The table: CC and AUC (paper mode) per system, and CC_all in corrected mode."""
    head = (
        f"{'system':<26} {'CC_all':>7} {'CC_1fps':>7} {'CC_5fps':>7} {'AUC_all':>7} {'AUC_1fps':>8} "
        f"{'AUC_5fps':>8} {'CC_all*':>7}"
    )
    lines = [head]
    for row in result.rows:
        p, k = row.spatial["paper"], row.spatial["corrected"]
        lines.append(
            f"{row.name:<26} {p.cc_all:7.3f} {p.cc_1fps:7.3f} {p.cc_5fps:7.3f} {p.auc_all:7.3f} "
            f"{p.auc_1fps:8.3f} "
            f"{p.auc_5fps:8.3f} {k.cc_all:7.3f}"
        )
    steps = ", ".join(f"{k} {v} steps" for k, v in result.train_steps.items())
    lines.append(
        f"paper-mode metrics; CC_all* = corrected mode. Training: {steps}. Ambient bed "
        f"{result.config.ambient_level:g} (shape peak {SOURCE_LEVEL:g}). Wall time {result.seconds:.0f} s."
    )
    return "\n".join(lines)
