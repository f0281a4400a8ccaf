"""The training configuration file: defaults are the official recipe, and every bad field is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from visage.model.training.config import ConfigError, config_from_dict, load_config

MINIMAL = {"data": {"dataset": "d"}, "train": {"output_dir": "o"}}


def test_defaults_are_the_official_recipe() -> None:
    c = config_from_dict(MINIMAL)
    assert (c.optim.lr, c.optim.weight_decay, c.optim.grad_clip, c.optim.warmup_steps) == (1e-4, 0.01, 1.0, 0)
    assert (c.optim.beta1, c.optim.beta2, c.optim.eps) == (0.9, 0.999, 1e-8)
    assert (c.data.batch_size, c.train.seed, c.train.epochs) == (64, 1115, 80)
    assert (
        c.train.dropout_mode,
        c.train.video_dropout,
        c.train.direction_dropout,
        c.train.rotation_prob,
    ) == (
        "batch",
        0.1,
        0.1,
        0.5,
    )
    assert (c.model.init, c.model.pattern, c.train.mixed_precision) == ("scratch", "visage", "auto")


def test_a_toml_file_with_relative_paths(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        '[data]\ndataset = "data/ds"\n[model]\ninit = "mono"\ncheckpoint = "jaeyeonkim99/visage"\n'
        '[optim]\nwarmup_steps = 4000\nlr = 1\n[train]\noutput_dir = "runs/a"\ndropout_mode = "sample"\n'
        "[model.architecture]\n"
    )
    c = load_config(path)
    assert c.data.dataset == str(tmp_path / "data/ds") and c.train.output_dir == str(tmp_path / "runs/a")
    assert c.optim.lr == 1.0 and isinstance(c.optim.lr, float) and c.optim.warmup_steps == 4000
    assert c.model.checkpoint == "jaeyeonkim99/visage" and c.train.dropout_mode == "sample"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optim": {"learning_rate": 1}}, r"\[optim\] unknown key\(s\) learning_rate"),
        ({"training": {}}, r"unknown section\(s\) \[training\]"),
        ({"optim": {"lr": "fast"}}, r"\[optim\] lr must be a finite number, got 'fast'"),
        ({"optim": {"lr": -1}}, r"\[optim\] lr must be > 0"),
        ({"data": {"batch_size": 2.5}}, r"\[data\] batch_size must be an integer"),
        ({"data": {"dataset": ""}}, r"\[data\] dataset is required"),
        ({"train": {"output_dir": "o", "resume": "yes"}}, r"\[train\] resume must be true or false"),
        (
            {"train": {"output_dir": "o", "video_dropout": 1.5}},
            r"\[train\] video_dropout must lie in \[0, 1\]",
        ),
        (
            {"train": {"output_dir": "o", "dropout_mode": "clip"}},
            r"\[train\] dropout_mode must be batch or sample",
        ),
        ({"train": {"output_dir": "o", "epochs": 0}}, "training would never stop"),
        ({"train": {"output_dir": "o", "mixed_precision": "fp8"}}, r"\[train\] mixed_precision"),
        ({"model": {"init": "mono"}}, r"\[model\] checkpoint is required with init = 'mono'"),
        ({"model": {"init": "pretrained"}}, r"\[model\] init must be scratch, mono or checkpoint"),
        ({"model": {"pattern": "mono"}}, r"\[model\] pattern must be one of"),
        (
            {"model": {"init": "checkpoint", "checkpoint": "c", "architecture": {"d_model": 8}}},
            "only apply with init = scratch",
        ),
        ({"samples": {"codec": "mp3"}}, r"\[samples\] codec"),
    ],
)
def test_bad_fields_are_named(changes: dict, message: str) -> None:
    data = {k: dict(v) for k, v in MINIMAL.items()}
    for section, values in changes.items():
        data.setdefault(section, {}).update(values)
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    with pytest.raises(ConfigError, match=f"{bad}: not valid TOML"):
        load_config(bad)
    bad.write_text('[train]\noutput_dir = "o"\n')
    with pytest.raises(ConfigError, match=rf"{bad}: \[data\] dataset is required"):
        load_config(bad)
