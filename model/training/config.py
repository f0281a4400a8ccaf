"""The training configuration: a TOML file, read into typed sections and checked field by field.

Every section and key is optional except ``data.dataset`` and ``train.output_dir``; the defaults are the
official fine-tuning recipe (spec §6: AdamW lr 1e-4, weight decay 0.01, grad clip 1.0, constant
schedule, batch 64, condition dropout 0.1 per batch for the video and, independently, the direction,
rotation augmentation with p = 0.5, seed 1115). A minimal file::

    [data]
    dataset = "datasets/my-recordings"      # a folder written by `visage dataset build`

    [model]
    init = "mono"                           # scratch | mono | checkpoint
    checkpoint = "path/to/vggsound-mono"    # folder or Hugging Face repo id (mono, checkpoint)

    [train]
    output_dir = "runs/finetune"

Sections and keys: see the dataclasses below (each field is a key; its comment says what it does). Any
field of ``VisageConfig`` can be overridden in ``[model.architecture]`` (e.g. ``dropout = 0.1``) when
training from scratch. Relative paths are relative to the config file's folder.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from visage.model.network.code_pattern import PATTERN_NAMES


class ConfigError(ValueError):
    """A training configuration that cannot be used; names the file, the section and the key."""


@dataclass(frozen=True)
class DataConfig:
    dataset: str = ""  # dataset folder (required)
    batch_size: int = 64  # global batch, split across processes (official split_batches)
    val_batch_size: int = 0  # 0 = batch_size
    max_val_batches: int = 0  # 0 = the whole validation split


@dataclass(frozen=True)
class ModelConfig:
    preset: str = "released"  # architecture preset of VisageConfig (released, tiny) when init = scratch
    pattern: str = "visage"  # code pattern: visage, or an ablation: delay, residual, spatial
    init: str = "scratch"  # scratch | mono (official VGGSound checkpoint) | checkpoint (ambisonics)
    checkpoint: str = ""  # folder or repo id for init = mono / checkpoint
    architecture: dict[str, Any] = field(default_factory=dict)  # VisageConfig overrides (scratch only)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-4
    weight_decay: float = 0.01  # on every parameter the official rule decays (see optimizer.py)
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    grad_clip: float = 1.0  # max gradient norm; 0 = off
    warmup_steps: int = 0  # linear warm-up, then constant (official VGGSound stage: 4000)


@dataclass(frozen=True)
class TrainConfig:
    output_dir: str = ""  # checkpoints, logs and samples go here (required)
    max_steps: int = 0  # optimiser steps; 0 = unlimited (then epochs or max_seconds must stop it)
    epochs: int = 80  # passes over the training split; 0 = unlimited
    max_seconds: float = 0.0  # stop (after a checkpoint) when this much wall time has passed; 0 = off
    seed: int = 1115
    mixed_precision: str = "auto"  # auto (bf16 on a CUDA GPU that has it, else fp32) | no | bf16 | fp16
    grad_accum: int = 1  # micro-batches per optimiser step
    dropout_mode: str = "batch"  # batch (official: one draw per batch) | sample (one draw per clip)
    video_dropout: float = 0.1  # P(CLIP frames and energy map -> null embeddings), always together
    direction_dropout: float = 0.1  # P(direction -> null embedding), independent of the video's
    rotation_prob: float = 0.5  # P(a clip is replaced by its 90°-rotated version)
    loss_chunk_rows: int = 12  # heads per chunk of the memory-saving loss; 0 = all heads at once
    log_every: int = 10
    val_every: int = 500  # 0 = only at the end
    checkpoint_every: int = 1000  # 0 = only at the end
    keep_checkpoints: int = 3  # older checkpoints are deleted; 0 = keep all
    resume: bool = True  # continue from the latest checkpoint in output_dir when there is one


@dataclass(frozen=True)
class SamplesConfig:
    every: int = 0  # generate sample audio every this many steps; 0 = never
    clips: int = 2  # validation clips (or training clips when there is no validation split)
    codec: str = ""  # codec to decode with: dac | dac:PATH | carrier; "" = the dataset's
    guidance_scale: float = 2.5
    seed: int = 0


@dataclass(frozen=True)
class Config:
    """The whole training configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    samples: SamplesConfig = field(default_factory=SamplesConfig)


_CLASSES: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
    "samples": SamplesConfig,
}
_PATH_KEYS = {("data", "dataset"), ("train", "output_dir")}


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML training configuration.

    Raises:
        ConfigError: missing file, bad TOML, unknown section or key, wrong type or value; the message
            starts with the path and names ``[section] key``.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return config_from_dict(data, base=path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def config_from_dict(data: dict[str, Any], *, base: Path | None = None) -> Config:
    """Build a :class:`Config` from nested dicts (sections -> keys), validating every value."""
    unknown = sorted(set(data) - set(_CLASSES))
    if unknown:
        raise ConfigError(
            f"unknown section(s) {', '.join(f'[{u}]' for u in unknown)}; known: {', '.join(_CLASSES)}"
        )
    sections = {}
    for name, cls in _CLASSES.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"[{name}] must be a table")
        sections[name] = _section(name, cls, raw, base)
    config = Config(**sections)
    _check(config)
    return config


def _section(name: str, cls: type, raw: dict[str, Any], base: Path | None) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise ConfigError(f"[{name}] unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    values = {}
    for key, value in raw.items():
        values[key] = _typed(f"[{name}] {key}", hints[key], value)
        if (name, key) in _PATH_KEYS and base is not None and values[key]:
            values[key] = str(base / Path(values[key]).expanduser())
    return cls(**values)


def _typed(where: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {value!r}")
        return dict(value)
    if isinstance(hint, types.UnionType):  # pragma: no cover - no optional fields at present
        return value
    raise ConfigError(f"{where}: unsupported type {hint}")  # pragma: no cover


def _check(c: Config) -> None:
    def need(ok: bool, where: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"{where} {message}")

    need(bool(c.data.dataset), "[data] dataset", "is required (a folder written by `visage dataset build`)")
    need(bool(c.train.output_dir), "[train] output_dir", "is required")
    need(c.data.batch_size >= 1, "[data] batch_size", f"must be >= 1, got {c.data.batch_size}")
    need(c.data.val_batch_size >= 0, "[data] val_batch_size", "must be >= 0")
    need(c.data.max_val_batches >= 0, "[data] max_val_batches", "must be >= 0")
    need(
        c.model.init in ("scratch", "mono", "checkpoint"),
        "[model] init",
        f"must be scratch, mono or checkpoint, got {c.model.init!r}",
    )
    need(
        c.model.init == "scratch" or bool(c.model.checkpoint),
        "[model] checkpoint",
        f"is required with init = {c.model.init!r}",
    )
    need(
        c.model.pattern in PATTERN_NAMES and c.model.pattern != "mono",
        "[model] pattern",
        f"must be one of visage, delay, residual, spatial, got {c.model.pattern!r}",
    )
    need(
        not c.model.architecture or c.model.init == "scratch",
        "[model] architecture",
        "overrides only apply with init = scratch",
    )
    need(c.optim.lr > 0, "[optim] lr", f"must be > 0, got {c.optim.lr}")
    need(c.optim.weight_decay >= 0, "[optim] weight_decay", "must be >= 0")
    need(0 <= c.optim.beta1 < 1 and 0 <= c.optim.beta2 < 1, "[optim] beta1/beta2", "must lie in [0, 1)")
    need(c.optim.eps > 0, "[optim] eps", "must be > 0")
    need(c.optim.grad_clip >= 0, "[optim] grad_clip", "must be >= 0")
    need(c.optim.warmup_steps >= 0, "[optim] warmup_steps", "must be >= 0")
    t = c.train
    need(
        t.max_steps >= 0 and t.epochs >= 0 and t.max_seconds >= 0,
        "[train] max_steps/epochs/max_seconds",
        "must be >= 0",
    )
    need(
        bool(t.max_steps or t.epochs or t.max_seconds),
        "[train] max_steps/epochs/max_seconds",
        "are all 0: training would never stop",
    )
    need(
        t.mixed_precision in ("auto", "no", "bf16", "fp16"),
        "[train] mixed_precision",
        f"must be auto, no, bf16 or fp16, got {t.mixed_precision!r}",
    )
    need(t.grad_accum >= 1, "[train] grad_accum", "must be >= 1")
    need(
        t.dropout_mode in ("batch", "sample"),
        "[train] dropout_mode",
        f"must be batch or sample, got {t.dropout_mode!r}",
    )
    for key in ("video_dropout", "direction_dropout", "rotation_prob"):
        value = getattr(t, key)
        need(0.0 <= value <= 1.0, f"[train] {key}", f"must lie in [0, 1], got {value}")
    need(t.loss_chunk_rows >= 0, "[train] loss_chunk_rows", "must be >= 0")
    for key in ("log_every", "val_every", "checkpoint_every", "keep_checkpoints"):
        need(getattr(t, key) >= 0, f"[train] {key}", "must be >= 0")
    need(t.log_every >= 1, "[train] log_every", "must be >= 1")
    need(c.samples.every >= 0 and c.samples.clips >= 0, "[samples] every/clips", "must be >= 0")
    need(
        c.samples.codec in ("", "dac", "carrier") or c.samples.codec.startswith("dac:"),
        "[samples] codec",
        f"must be dac, dac:PATH or carrier, got {c.samples.codec!r}",
    )
