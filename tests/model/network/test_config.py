"""The config: the official config.json round-trips, presets have the official sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from visage.model.network.config import VisageConfig
from visage.model.network.visage import Visage


def test_official_config_round_trips_unchanged(parity_dir: Path) -> None:
    raw = json.loads((parity_dir / "tiny" / "config.json").read_text())
    config = VisageConfig.from_dict(raw)
    assert config.d_model == 16 and config.num_channels == 4 and config.max_target_length == 861
    assert config.to_dict() == raw


def test_unknown_fields_are_kept() -> None:
    data = VisageConfig.preset("tiny").to_dict() | {"my_field": [1, 2], "dac_frame_rate": 12345}
    config = VisageConfig.from_dict(data)
    assert config.extra["my_field"] == [1, 2]
    out = config.to_dict()
    assert out["my_field"] == [1, 2]
    assert out["dac_frame_rate"] == 86  # derived fields are recomputed, as the official __init__ does


def _count(config: VisageConfig) -> tuple[int, int]:
    with torch.device("meta"):
        model = Visage(config)
    from visage.model.network.checkpoint import to_official_state_dict

    state = to_official_state_dict(model)
    return len(state), sum(t.numel() for t in state.values())


def test_released_preset_has_the_official_size() -> None:
    c = VisageConfig.preset("released")
    assert (c.d_model, c.encoder_layers, c.decoder_layers, c.encoder_attention_heads) == (1024, 6, 12, 16)
    assert (c.encoder_ffn_dim, c.num_rvq, c.dac_vocab_size, c.dac_pad_token_id) == (4096, 9, 1024, 1024)
    assert (c.max_source_length, c.max_target_length, c.num_code_rows, c.code_embedding_rows) == (
        20,
        861,
        36,
        1088,
    )
    assert _count(c) == (539, 358_626_868)


def test_mono_preset_has_the_official_size() -> None:
    assert _count(VisageConfig.preset("released-mono")) == (448, 298_052_096)


def test_tiny_preset_is_the_parity_architecture(parity_dir: Path) -> None:
    ours = VisageConfig.preset("tiny").to_dict()
    theirs = json.loads((parity_dir / "tiny" / "config.json").read_text())
    assert ours == theirs


def test_bad_configs() -> None:
    with pytest.raises(ValueError, match="not a ViSAGe model"):
        VisageConfig.from_dict(
            {"architectures": ["BartForConditionalGeneration"], "num_rvq": 9, "d_clip": 512}
        )
    with pytest.raises(ValueError, match="num_rvq"):
        VisageConfig.from_dict({"architectures": ["VisageForAmbisonicsGeneration"]})
    with pytest.raises(ValueError, match="divisible"):
        VisageConfig(d_model=30, encoder_attention_heads=4)
    with pytest.raises(ValueError, match="unknown preset"):
        VisageConfig.preset("huge")
