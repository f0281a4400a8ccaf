"""Checkpoint loading and saving: official layout, clear errors, hub and folder resolution, mono init."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from visage.model.network.checkpoint import (
    CheckpointError,
    load_mono_for_ambisonics,
    load_pretrained,
    official_to_local,
    resolve_checkpoint_dir,
    to_official_state_dict,
)
from visage.model.network.config import VisageConfig
from visage.model.network.tiny_random import tiny_random_visage, write_tiny_random_visage
from visage.model.network.visage import Visage


def _same_weights(a: Visage, b: Visage) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("safe", [True, False])
def test_save_then_load_is_bit_exact(tmp_path: Path, safe: bool) -> None:
    model = tiny_random_visage(seed=1)
    model.save_pretrained(tmp_path, safe_serialization=safe)
    assert (tmp_path / ("model.safetensors" if safe else "pytorch_model.bin")).exists()
    loaded = Visage.from_pretrained(tmp_path)
    assert _same_weights(model, loaded)
    assert loaded.config.to_dict() == model.config.to_dict()
    assert not loaded.training


def test_saved_files_are_the_official_layout(tmp_path: Path, parity_dir: Path) -> None:
    official = load_file(parity_dir / "tiny" / "model.safetensors")
    load_pretrained(parity_dir / "tiny").save_pretrained(tmp_path)
    ours = load_file(tmp_path / "model.safetensors")
    assert ours.keys() == official.keys()
    assert all(torch.equal(ours[k], official[k]) for k in ours)  # including the unused embed_spatial
    assert json.loads((tmp_path / "config.json").read_text()) == json.loads(
        (parity_dir / "tiny" / "config.json").read_text()
    )


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    model = tiny_random_visage()
    model.save_pretrained(tmp_path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.save_pretrained(tmp_path)
    model.save_pretrained(tmp_path, overwrite=True)
    assert not list(tmp_path.glob(".*.tmp"))


def _official_folder(tmp_path: Path, state: dict[str, torch.Tensor], name: str = "ckpt") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(VisageConfig.preset("tiny").to_json_string())
    return folder


def test_missing_key_is_named(tmp_path: Path) -> None:
    state = to_official_state_dict(tiny_random_visage())
    del state["model.decoder.layers.1.fc2.bias"]
    del state["dac_heads.7.weight"]
    with pytest.raises(CheckpointError, match="missing keys: ") as err:
        load_pretrained(_official_folder(tmp_path, state))
    assert "dac_heads.7.weight" in str(err.value) and "model.decoder.layers.1.fc2.bias" in str(err.value)


def test_misshapen_and_unexpected_keys_are_named(tmp_path: Path) -> None:
    state = to_official_state_dict(tiny_random_visage())
    state["model.encoder.clip_projection.weight"] = torch.zeros(16, 511)
    state["model.encoder.something_new"] = torch.zeros(3)
    with pytest.raises(CheckpointError) as err:
        load_pretrained(_official_folder(tmp_path, state))
    message = str(err.value)
    assert "model.encoder.clip_projection.weight: expected (16, 512), found (16, 511)" in message
    assert "unexpected keys: model.encoder.something_new" in message


def test_module_prefix_is_stripped(tmp_path: Path) -> None:
    model = tiny_random_visage(seed=2)
    state = {"module." + k: v for k, v in to_official_state_dict(model).items()}
    assert _same_weights(load_pretrained(_official_folder(tmp_path, state)), model)
    assert official_to_local("module.dac_heads.3.bias") == ("heads.bias", 3)


def test_sharded_index_loads(tmp_path: Path) -> None:
    model = tiny_random_visage(seed=4)
    state = to_official_state_dict(model)
    keys = sorted(state)
    folder = tmp_path / "sharded"
    folder.mkdir()
    halves = {
        "model-00001-of-00002.safetensors": keys[: len(keys) // 2],
        "model-00002-of-00002.safetensors": keys[len(keys) // 2 :],
    }
    for shard, names in halves.items():
        save_file({k: state[k].contiguous() for k in names}, str(folder / shard), metadata={"format": "pt"})
    index = {"weight_map": {k: shard for shard, names in halves.items() for k in names}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "config.json").write_text(model.config.to_json_string())
    assert _same_weights(load_pretrained(folder), model)


def _write_mono(folder: Path, seed: int = 0) -> Visage:
    mono = Visage(
        VisageConfig.from_dict(
            {**VisageConfig.preset("tiny").to_dict(), "architectures": ["VisageForConditionalGeneration"]}
        )
    )
    from visage.model.network.tiny_random import randomize_weights

    randomize_weights(mono, seed)
    mono.save_pretrained(folder)
    return mono


def test_folder_search_picks_the_ambisonics_model(tmp_path: Path) -> None:
    root = tmp_path / "release"
    _write_mono(root / "vggsound")
    write_tiny_random_visage(root / "ytambigen" / "checkpoints" / "epoch_9")
    write_tiny_random_visage(root / "ytambigen" / "checkpoints" / "epoch_79")
    (root / "ytambigen" / "config.json").write_text("{}")  # a config without weights is not a checkpoint
    assert resolve_checkpoint_dir(root) == root / "ytambigen" / "checkpoints" / "epoch_79"
    assert resolve_checkpoint_dir(root, mono=True) == root / "vggsound"
    assert resolve_checkpoint_dir(root, subfolder="ytambigen/checkpoints/epoch_9").name == "epoch_9"
    only_mono = tmp_path / "mono_only"
    _write_mono(only_mono / "m")
    with pytest.raises(CheckpointError, match="no VisageForAmbisonicsGeneration"):
        resolve_checkpoint_dir(only_mono)


def _fake_hub_cache(cache: Path, repo_id: str, files: dict[str, Path]) -> None:
    """The Hugging Face cache layout (models--owner--name/{refs,snapshots}) holding ``files``."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    for rel, src in files.items():
        (snapshot / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, snapshot / rel)


def test_hub_repo_resolves_offline_from_the_cache(tmp_path: Path) -> None:
    model = tiny_random_visage(seed=6)
    src = write_tiny_random_visage(tmp_path / "src", seed=6)
    mono_src = tmp_path / "mono"
    _write_mono(mono_src)
    cache = tmp_path / "hf"
    _fake_hub_cache(
        cache,
        "someone/visage",
        {
            "visage_ytambigen/config.json": src / "config.json",
            "visage_ytambigen/model.safetensors": src / "model.safetensors",
            "visage_vggsound/config.json": mono_src / "config.json",
            "visage_vggsound/model.safetensors": mono_src / "model.safetensors",
        },
    )
    loaded = load_pretrained("someone/visage", cache_dir=cache, local_files_only=True)
    assert _same_weights(loaded, model)
    folder = resolve_checkpoint_dir("someone/visage", cache_dir=cache, local_files_only=True, mono=True)
    assert folder.name == "visage_vggsound"


def test_hub_repo_missing_offline_says_how_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="visage download"):
        load_pretrained("someone/absent", cache_dir=tmp_path, local_files_only=True)


def test_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such folder"):
        load_pretrained(tmp_path / "nothing-here")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    save_file({"x": torch.zeros(1)}, str(tmp_path / "ckpt" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="no VisageForAmbisonicsGeneration"):
        load_pretrained(tmp_path)


def test_mono_checkpoint_initialises_the_ambisonics_model(tmp_path: Path) -> None:
    mono = _write_mono(tmp_path / "mono", seed=3)
    model = load_mono_for_ambisonics(tmp_path / "mono", generator=torch.Generator().manual_seed(0))
    assert model.config.is_ambisonic and model.config.num_code_rows == 36
    emb, heads = model.decoder.code_embeddings, model.heads.weight
    for i in range(36):
        assert torch.equal(emb[i], mono.decoder.code_embeddings[i % 9])
        assert torch.equal(heads[i], mono.heads.weight[i % 9])
    assert torch.equal(model.encoder.layers[1].ffn.fc1.weight, mono.encoder.layers[1].ffn.fc1.weight)
    assert torch.equal(model.null_clip, mono.null_clip)
    assert (model.null_direction == 0).all() and (model.null_energy == 0).all()
    w = model.encoder.direction_proj.fc1.weight
    assert 0.005 < w.std().item() < 0.05 and (model.encoder.direction_proj.fc1.bias == 0).all()
