"""Training: the loss goes down, a resumed run continues bit for bit, samples, initialisations, patterns."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from visage.model.audio.carrier_codec import CarrierCodec
from visage.model.audio.codec import FoaCodec
from visage.model.dataset.build import BuildOptions, FeatureModels, build_dataset
from visage.model.dataset.clip_selection import SelectionRules
from visage.model.dataset.direction_table import read_clip_table
from visage.model.evaluation.synthetic_benchmark import write_scene_files
from visage.model.evaluation.synthetic_scenes import random_scene
from visage.model.features.vision import ClipVisionEncoder, build_tiny_random_clip
from visage.model.network.config import VisageConfig
from visage.model.network.visage import Visage
from visage.model.training.checkpoints import latest_checkpoint
from visage.model.training.config import ConfigError, config_from_dict
from visage.model.training.loop import agree_to_stop, train

ARCH = {
    "d_model": 32,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 32,
    "decoder_ffn_dim": 32,
    "num_rvq": 4,
    "dac_vocab_size": 63,
    "dac_pad_token_id": 63,
    "max_source_length": 4,
    "max_target_length": 173,
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train-data")
    rng = np.random.default_rng(0)
    scenes = [random_scene(rng) for _ in range(10)]
    table = write_scene_files(root / "scenes", scenes, ["train"] * 8 + ["val"] * 2, CarrierCodec(), seconds=1)
    vision = ClipVisionEncoder.from_pretrained(build_tiny_random_clip(root / "clip"))
    models = FeatureModels(vision, FoaCodec(CarrierCodec()), "tiny-random", "carrier:4:63")
    options = BuildOptions(rules=SelectionRules(clip_seconds=1, min_valid_seconds=0), write_views=False)
    build_dataset(root / "ds", models, table=read_clip_table(table), options=options)
    return root / "ds"


def config(dataset: Path, out: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {
        "data": {"dataset": str(dataset), "batch_size": 4},
        "model": {"preset": "tiny", "architecture": dict(ARCH)},
        "optim": {"lr": 3e-3},
        "train": {
            "output_dir": str(out),
            "max_steps": 4,
            "val_every": 0,
            "checkpoint_every": 0,
            "log_every": 1,
        },
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return base


def losses(out: Path) -> list[float]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["train/loss"] for r in rows if "train/loss" in r]


def test_a_few_steps_lower_the_loss(dataset: Path, tmp_path: Path) -> None:
    cfg = config(
        dataset,
        tmp_path,
        train={
            "max_steps": 25,
            "rotation_prob": 0.0,
            "video_dropout": 0.0,
            "direction_dropout": 0.0,
            "val_every": 25,
        },
    )
    result = train(config_from_dict(cfg), log=lambda _: None)
    seen = losses(tmp_path)
    assert result.steps == 25 and len(seen) == 25
    assert np.mean(seen[-5:]) < 0.7 * seen[0]
    assert result.val_loss is not None and result.val_loss < seen[0]
    assert (tmp_path / "tensorboard").is_dir()


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / "model" / "model.safetensors"))


def test_a_resumed_run_continues_bit_for_bit(dataset: Path, tmp_path: Path) -> None:
    noisy = {"rotation_prob": 0.5, "video_dropout": 0.3, "direction_dropout": 0.3, "dropout_mode": "sample"}
    straight = config(dataset, tmp_path / "straight", train={"max_steps": 6, **noisy})
    first = train(config_from_dict(straight), log=lambda _: None)
    half = copy.deepcopy(straight)
    half["train"].update(output_dir=str(tmp_path / "resumed"), max_steps=3)
    train(config_from_dict(half), log=lambda _: None)
    half["train"]["max_steps"] = 6
    messages: list[str] = []
    second = train(config_from_dict(half), log=messages.append)
    assert any("resumed from" in m and "step 3" in m for m in messages)
    assert first.checkpoint is not None and second.checkpoint is not None
    a, b = weights(first.checkpoint), weights(second.checkpoint)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    opt_a = torch.load(first.checkpoint / "optimizer.pt", weights_only=True)["state"]
    opt_b = torch.load(second.checkpoint / "optimizer.pt", weights_only=True)["state"]
    assert all(torch.equal(opt_a[i]["exp_avg"], opt_b[i]["exp_avg"]) for i in opt_a)
    assert losses(tmp_path / "straight")[3:] == losses(tmp_path / "resumed")[3:]


def test_checkpoints_are_complete_and_pruned(dataset: Path, tmp_path: Path) -> None:
    train(
        config_from_dict(
            config(dataset, tmp_path, train={"max_steps": 4, "checkpoint_every": 1, "keep_checkpoints": 2})
        ),
        log=lambda _: None,
    )
    done = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert done == ["step_00000003", "step_00000004"]
    latest = latest_checkpoint(tmp_path)
    assert latest is not None and json.loads((latest / "state.json").read_text())["step"] == 4
    model = Visage.from_pretrained(latest / "model")  # the official layout loads as a model
    assert model.config.num_rvq == 4


def test_a_resumed_run_that_is_already_done_leaves_its_checkpoint_alone(
    dataset: Path, tmp_path: Path
) -> None:
    # Re-saving the same step would delete the only complete checkpoint before replacing it.
    cfg = config(dataset, tmp_path, train={"max_steps": 2, "keep_checkpoints": 1})
    train(config_from_dict(cfg), log=lambda _: None)
    latest = latest_checkpoint(tmp_path)
    assert latest is not None
    (latest / "marker").write_text("kept")
    result = train(config_from_dict(cfg), log=lambda _: None)
    assert result.steps == 2 and result.checkpoint == latest and (latest / "marker").is_file()


def test_per_batch_dropout_draws_from_the_generator_every_process_shares(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from visage.model.training import loop as training
    from visage.model.training.data import draw, shared_generator

    seeds: list[int] = []

    def spy(count: int, augmentation: Any, generator: torch.Generator, shared: Any = None) -> Any:
        seeds.append(shared.initial_seed() if shared is not None else -1)
        return draw(count, augmentation, generator, shared)

    monkeypatch.setattr(training, "draw", spy)
    train(config_from_dict(config(dataset, tmp_path, train={"max_steps": 2, "seed": 7})), log=lambda _: None)
    assert seeds == [shared_generator(7, step).initial_seed() for step in range(2)]


class _TwoProcesses:
    """An accelerator stand-in whose other process wants to stop (or not)."""

    num_processes = 2
    device = torch.device("cpu")

    def __init__(self, other_stops: bool) -> None:
        self.other_stops = other_stops

    def reduce(self, tensor: torch.Tensor, reduction: str) -> torch.Tensor:
        assert reduction == "sum"
        return tensor + float(self.other_stops)


def test_a_stop_seen_by_one_process_stops_them_all() -> None:
    assert agree_to_stop(False, _TwoProcesses(other_stops=True))
    assert agree_to_stop(True, _TwoProcesses(other_stops=False))
    assert not agree_to_stop(False, _TwoProcesses(other_stops=False))


def test_sample_audio_is_written(dataset: Path, tmp_path: Path) -> None:
    cfg = config(dataset, tmp_path, train={"max_steps": 2}, samples={"every": 2, "clips": 1})
    train(config_from_dict(cfg), log=lambda _: None)
    wavs = list((tmp_path / "samples" / "step_00000002").glob("*.wav"))
    assert len(wavs) == 1


def test_fine_tuning_from_a_mono_checkpoint(dataset: Path, tmp_path: Path) -> None:
    arch = {k: v for k, v in ARCH.items()}
    mono = Visage(VisageConfig(**arch, num_channels=1))
    mono.init_weights(torch.Generator().manual_seed(0))
    mono.save_pretrained(tmp_path / "mono")
    cfg = config(
        dataset,
        tmp_path / "run",
        model={"init": "mono", "checkpoint": str(tmp_path / "mono"), "architecture": {}},
    )
    assert train(config_from_dict(cfg), log=lambda _: None).steps == 4


@pytest.mark.parametrize("pattern", ["delay", "residual", "spatial"])
def test_ablation_patterns_train(dataset: Path, tmp_path: Path, pattern: str) -> None:
    cfg = config(dataset, tmp_path, model={"pattern": pattern}, train={"max_steps": 1})
    assert train(config_from_dict(cfg), log=lambda _: None).steps == 1


def test_a_dataset_that_does_not_fit_the_model_is_a_clear_error(dataset: Path, tmp_path: Path) -> None:
    cfg = config(dataset, tmp_path, model={"architecture": {}})  # tiny preset: 36 rows x 1024
    with pytest.raises(ConfigError, match="16 code rows vs the model's 36"):
        train(config_from_dict(cfg), log=lambda _: None)
