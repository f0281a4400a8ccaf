"""The official weight-decay split, mapped to our parameter names, and the constant schedule."""

from __future__ import annotations

import pytest
import torch

from visage.model.network.checkpoint import local_to_official, to_official_state_dict
from visage.model.network.tiny_random import tiny_random_visage
from visage.model.training.optimizer import build_optimizer, constant_schedule, decay_split, official_decays


def test_the_official_rule_on_official_names() -> None:
    assert not official_decays("model.encoder.layers.0.self_attn_layer_norm.weight")
    assert not official_decays("model.decoder.layers.1.encoder_attn_layer_norm.weight")
    assert not official_decays("model.decoder.layers.1.final_layer_norm.weight")
    assert not official_decays("dac_heads.3.bias")
    assert official_decays("model.encoder.layernorm_embedding.weight")  # not exempt: no "layer_norm.weight"
    assert not official_decays("model.encoder.layernorm_embedding.bias")
    assert official_decays("model.decoder.embed_dac.7.weight")
    assert official_decays("null_embedding") and official_decays("model.encoder.bos")


def test_our_split_is_the_official_split() -> None:
    model = tiny_random_visage()
    decayed, exempt = decay_split(model)
    assert "encoder.embed_norm.weight" in decayed and "decoder.embed_norm.weight" in decayed
    assert {"encoder.layers.0.self_attn_norm.weight", "decoder.layers.0.cross_attn_norm.weight"} <= set(
        exempt
    )
    assert {
        "decoder.layers.1.ffn_norm.weight",
        "heads.bias",
        "decoder.code_embeddings",
        "heads.weight",
    } & set(exempt) == {
        "decoder.layers.1.ffn_norm.weight",
        "heads.bias",
    }
    assert {"null_clip", "null_direction", "null_energy", "decoder.bos", "encoder.positions.weight"} <= set(
        decayed
    )
    # Count the official tensors on each side: the split must agree name by name.
    official = to_official_state_dict(model)
    trainable = {k for k in official if k != "model.encoder.embed_spatial.weight"}  # a buffer here
    expected_decayed = {k for k in trainable if official_decays(k)}
    ours_decayed = set()
    for name in decayed:
        p = dict(model.named_parameters())[name]
        ours_decayed |= set(local_to_official(name, p.detach()))
    assert ours_decayed == expected_decayed


def test_optimizer_groups_and_recipe() -> None:
    model = tiny_random_visage()
    opt = build_optimizer(model, lr=1e-4, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8)
    decayed, exempt = decay_split(model)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]
    assert [len(g["params"]) for g in opt.param_groups] == [len(decayed), len(exempt)]
    assert opt.param_groups[0]["lr"] == 1e-4 and isinstance(opt, torch.optim.AdamW)


@pytest.mark.parametrize(("warmup", "expected"), [(0, [1.0, 1.0, 1.0]), (4, [0.0, 0.25, 0.5])])
def test_constant_schedule_with_optional_warmup(warmup: int, expected: list[float]) -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=2.0)
    schedule = constant_schedule(opt, warmup)
    seen = []
    for _ in range(3):
        seen.append(schedule.get_last_lr()[0] / 2.0)
        opt.step()
        schedule.step()
    assert seen == expected
