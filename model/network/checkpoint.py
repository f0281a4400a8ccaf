"""Official checkpoints: where they are, how their parameter names map to ours, loading and saving.

This is the only module that knows the official (transformers BART) parameter names. The mapping is one
declarative table, used in both directions; ``{x}`` fields stand for layer numbers, row numbers or one of
a few alternatives, and ``name[{i}]`` means row i of one of our stacked tensors (the 36 code embeddings
and the 36 heads are stored as one tensor each).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import AMBISONICS_ARCHITECTURE, MONO_ARCHITECTURE, VisageConfig
from .visage import Visage

log = logging.getLogger(__name__)

DEFAULT_REPO_ID = "jaeyeonkim99/visage"
CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
PICKLE_NAME = "pytorch_model.bin"
WEIGHT_NAMES = (SAFETENSORS_NAME, PICKLE_NAME, SAFETENSORS_NAME + ".index.json", PICKLE_NAME + ".index.json")

# official name template -> our name template
KEY_TABLE: tuple[tuple[str, str], ...] = (
    ("null_embedding", "null_clip"),
    ("dir_null_embedding", "null_direction"),
    ("energy_null_embedding", "null_energy"),
    ("model.encoder.{t}", "encoder.{t}"),
    ("model.encoder.clip_projection.{w}", "encoder.clip_proj.{w}"),
    ("model.encoder.embed_positions.weight", "encoder.positions.weight"),
    ("model.encoder.embed_spatial.weight", "encoder.unused_spatial_embedding"),
    ("model.encoder.direction_embedding.0.{w}", "encoder.direction_proj.fc1.{w}"),
    ("model.encoder.direction_embedding.2.{w}", "encoder.direction_proj.fc2.{w}"),
    ("model.encoder.energy_map_projection.0.{w}", "encoder.energy_proj.fc1.{w}"),
    ("model.encoder.energy_map_projection.2.{w}", "encoder.energy_proj.fc2.{w}"),
    ("model.{m}.layernorm_embedding.{w}", "{m}.embed_norm.{w}"),
    ("model.{m}.layers.{l}.self_attn.{p}_proj.{w}", "{m}.layers.{l}.self_attn.{p}_proj.{w}"),
    ("model.{m}.layers.{l}.self_attn_layer_norm.{w}", "{m}.layers.{l}.self_attn_norm.{w}"),
    ("model.decoder.layers.{l}.encoder_attn.{p}_proj.{w}", "decoder.layers.{l}.cross_attn.{p}_proj.{w}"),
    ("model.decoder.layers.{l}.encoder_attn_layer_norm.{w}", "decoder.layers.{l}.cross_attn_norm.{w}"),
    ("model.{m}.layers.{l}.{f}.{w}", "{m}.layers.{l}.ffn.{f}.{w}"),
    ("model.{m}.layers.{l}.final_layer_norm.{w}", "{m}.layers.{l}.ffn_norm.{w}"),
    ("model.decoder.bos", "decoder.bos"),
    ("model.decoder.embed_positions.weight", "decoder.positions.weight"),
    ("model.decoder.embed_dac.{i}.weight", "decoder.code_embeddings[{i}]"),
    ("dac_heads.{i}.{w}", "heads.{w}[{i}]"),
)

_FIELDS = {
    "l": r"\d+",
    "i": r"\d+",
    "t": "bos|eos",
    "w": "weight|bias",
    "m": "encoder|decoder",
    "p": "q|k|v|out",
    "f": "fc1|fc2",
}


def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w)\}", template)
    regex = "".join(re.escape(p) if n % 2 == 0 else f"(?P<{p}>{_FIELDS[p]})" for n, p in enumerate(parts))
    return re.compile(regex + r"\Z")


_RULES = [(_compile(official), _compile(ours), official, ours) for official, ours in KEY_TABLE]
_STACKED = re.compile(r"(?P<name>.+)\[(?P<index>\d+)\]\Z")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded: names the file or folder and the offending keys."""


def official_to_local(key: str) -> tuple[str, int | None] | None:
    """Our parameter for an official key: (name, row of a stacked tensor or None); None if unknown."""
    key = key.removeprefix("module.")  # accelerate/DDP saves carry this prefix
    for official_re, _, _, ours in _RULES:
        m = official_re.match(key)
        if m:
            target = ours.format(**m.groupdict())
            stacked = _STACKED.match(target)
            return (stacked["name"], int(stacked["index"])) if stacked else (target, None)
    return None


def local_to_official(name: str, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    """Official keys and tensors for one of our parameters (a stacked tensor gives one key per row)."""
    for _, _, official, ours in _RULES:
        stacked = "[{i}]" in ours
        m = _compile(ours.replace("[{i}]", "")).match(name)
        if not m:
            continue
        if stacked:
            return {official.format(i=i, **m.groupdict()): tensor[i] for i in range(tensor.shape[0])}
        return {official.format(**m.groupdict()): tensor}
    raise KeyError(f"no official name for parameter {name}")


def to_official_state_dict(model: Visage) -> dict[str, torch.Tensor]:
    """The model's weights under official names, in the official key order."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        out.update(local_to_official(name, tensor))
    return out


def from_official_state_dict(
    official: dict[str, torch.Tensor],
    model: Visage,
    *,
    source: str = "checkpoint",
    ignore_missing: Iterable[str] = (),
) -> dict[str, torch.Tensor]:
    """Our state dict from official tensors, checking that every key is known, present and the right shape.

    Raises:
        CheckpointError: listing unexpected, missing and misshapen keys (official names).
    """
    expected = {name: t.shape for name, t in model.state_dict().items()}
    rows: dict[str, dict[int, torch.Tensor]] = {}
    out: dict[str, torch.Tensor] = {}
    unexpected, misshapen = [], []
    for key, tensor in official.items():
        target = official_to_local(key)
        if target is None or target[0] not in expected:
            unexpected.append(key)
            continue
        name, row = target
        want = expected[name] if row is None else expected[name][1:]
        if row is not None and row >= expected[name][0]:
            unexpected.append(key)
        elif tuple(tensor.shape) != tuple(want):
            misshapen.append(f"{key}: expected {tuple(want)}, found {tuple(tensor.shape)}")
        elif row is None:
            out[name] = tensor
        else:
            rows.setdefault(name, {})[row] = tensor
    for name, parts in rows.items():
        if len(parts) == expected[name][0]:
            out[name] = torch.stack([parts[i] for i in range(len(parts))])
    ignore = set(ignore_missing)
    missing = [
        key
        for name, shape in expected.items()
        if name not in out and name not in ignore
        for key in _missing_official_keys(name, shape, rows.get(name, {}))
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if misshapen:
        problems.append(f"wrong shapes: {'; '.join(misshapen)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    if problems:
        raise CheckpointError(f"{source}: not loadable into this ViSAGe model ({' | '.join(problems)})")
    return out


def _missing_official_keys(name: str, shape: torch.Size, present: dict[int, torch.Tensor]) -> list[str]:
    keys = local_to_official(name, torch.empty(shape, device="meta"))
    return [k for k in keys if _stacked_row(k) not in present]


def _stacked_row(official_key: str) -> int | None:
    """The row of our stacked tensor an official key fills (None: not a stacked row, or unknown)."""
    local = official_to_local(official_key)
    return None if local is None else local[1]


# -- files -----------------------------------------------------------------------------------------------


def read_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """Official tensors from ``model.safetensors``, ``pytorch_model.bin`` or a sharded index in ``folder``."""
    from safetensors.torch import load_file

    for name in WEIGHT_NAMES:
        path = folder / name
        if not path.exists():
            continue
        if name.endswith(".index.json"):
            try:
                shards = sorted(set(json.loads(path.read_text())["weight_map"].values()))
            except (json.JSONDecodeError, KeyError) as exc:
                raise CheckpointError(f"{path}: not a weight index ({exc})") from exc
            out: dict[str, torch.Tensor] = {}
            for shard in shards:
                out.update(_read_file(folder / shard, load_file))
            return out
        return _read_file(path, load_file)
    raise CheckpointError(f"{folder}: no weights ({' or '.join(WEIGHT_NAMES)})")


def _read_file(path: Path, load_safetensors: Any) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise CheckpointError(f"{path}: weight shard listed in the index is missing")
    try:
        if path.suffix == ".safetensors":
            return load_safetensors(str(path))
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) pickles cannot be memory-mapped
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable weights ({exc})") from exc
    return data.get("state_dict", data) if isinstance(data, dict) else data


def _has_weights(folder: Path) -> bool:
    return any((folder / n).exists() for n in WEIGHT_NAMES)


# -- locating a checkpoint -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A folder (relative to a root) holding a config.json and weights."""

    subfolder: str
    architecture: str | None


def _natural_key(text: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def choose_candidate(candidates: list[Candidate], *, want_mono: bool = False, source: str) -> Candidate:
    """Pick the ambisonics (or mono) model among the checkpoint folders of a repository or directory.

    Several matches (e.g. per-epoch folders): a folder not named after an epoch wins, then the highest
    epoch; the choice and the alternatives are logged.
    """
    want = MONO_ARCHITECTURE if want_mono else AMBISONICS_ARCHITECTURE
    matches = [c for c in candidates if c.architecture == want]
    if not matches:
        found = ", ".join(f"{c.subfolder or '.'} ({c.architecture})" for c in candidates) or "none"
        raise CheckpointError(f"{source}: no {want} checkpoint found; checkpoint folders: {found}")
    matches.sort(key=lambda c: ("epoch" not in c.subfolder, _natural_key(c.subfolder)))
    chosen = matches[-1]
    if len(matches) > 1:
        others = ", ".join(c.subfolder for c in matches[:-1])
        log.info("%s: using %s (also found %s; pass subfolder= to choose)", source, chosen.subfolder, others)
    return chosen


def _architecture(config_path: Path) -> str | None:
    try:
        archs = json.loads(config_path.read_text()).get("architectures") or []
    except (OSError, json.JSONDecodeError):
        return None
    for a in (AMBISONICS_ARCHITECTURE, MONO_ARCHITECTURE):
        if a in archs:
            return a
    return archs[0] if archs else None


def _local_candidates(root: Path, max_depth: int = 4) -> list[Candidate]:
    out = []
    for config in sorted(root.rglob(CONFIG_NAME)):
        rel = config.parent.relative_to(root)
        if len(rel.parts) <= max_depth and _has_weights(config.parent):
            out.append(Candidate(rel.as_posix() if rel.parts else "", _architecture(config)))
    return out


def resolve_checkpoint_dir(
    path_or_repo_id: str | Path,
    *,
    subfolder: str | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    mono: bool = False,
) -> Path:
    """A local folder holding ``config.json`` + weights for the requested model.

    ``path_or_repo_id`` is a local folder (searched for checkpoint folders when it has no config.json
    itself) or a Hugging Face repo id, fetched with ``huggingface_hub`` into its cache: only the chosen
    folder's config and weights are downloaded. ``local_files_only`` defaults to ``HF_HUB_OFFLINE``.
    """
    local = Path(path_or_repo_id).expanduser()
    if local.exists():
        if not local.is_dir():
            raise CheckpointError(f"{local}: a checkpoint is a folder with {CONFIG_NAME} and weights")
        folder = local / subfolder if subfolder else local
        if (folder / CONFIG_NAME).exists() and _has_weights(folder):
            return folder
        if subfolder:
            raise CheckpointError(f"{folder}: no {CONFIG_NAME} with weights there")
        chosen = choose_candidate(_local_candidates(local), want_mono=mono, source=str(local))
        return local / chosen.subfolder
    repo_id = str(path_or_repo_id)
    if "/" not in repo_id or repo_id.startswith((".", "/", "~")):
        raise CheckpointError(f"{repo_id}: no such folder (and not a Hugging Face repo id 'owner/name')")
    return _resolve_from_hub(repo_id, subfolder, revision, cache_dir, local_files_only, mono)


def _resolve_from_hub(
    repo_id: str,
    subfolder: str | None,
    revision: str | None,
    cache_dir: str | Path | None,
    local_files_only: bool | None,
    mono: bool,
) -> Path:
    import huggingface_hub as hub
    from huggingface_hub.utils import HfHubHTTPError, LocalEntryNotFoundError

    offline = _env_offline() if local_files_only is None else local_files_only
    try:
        if offline:
            snapshot = Path(
                hub.snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, local_files_only=True)
            )
            files = [p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()]
        else:
            files = hub.list_repo_files(repo_id, revision=revision)
        configs = [f for f in files if f == CONFIG_NAME or f.endswith("/" + CONFIG_NAME)]
        if subfolder is not None:
            configs = [
                f
                for f in configs
                if f.rsplit("/", 1)[0] == subfolder.strip("/")
                or (subfolder in ("", ".") and f == CONFIG_NAME)
            ]
        candidates = []
        for cfg in configs:
            folder = cfg.rsplit("/", 1)[0] if "/" in cfg else ""
            prefix = f"{folder}/" if folder else ""
            if not any(prefix + w in files for w in WEIGHT_NAMES):
                continue
            path = hub.hf_hub_download(
                repo_id, cfg, revision=revision, cache_dir=cache_dir, local_files_only=offline
            )
            candidates.append(Candidate(folder, _architecture(Path(path))))
        chosen = choose_candidate(candidates, want_mono=mono, source=f"hub:{repo_id}")
        prefix = f"{chosen.subfolder}/" if chosen.subfolder else ""
        weight = next(prefix + w for w in WEIGHT_NAMES if prefix + w in files)
        needed = [prefix + CONFIG_NAME, weight]
        if weight.endswith(".index.json"):
            index = hub.hf_hub_download(
                repo_id, weight, revision=revision, cache_dir=cache_dir, local_files_only=offline
            )
            needed += [
                prefix + s for s in sorted(set(json.loads(Path(index).read_text())["weight_map"].values()))
            ]
        paths = [
            Path(
                hub.hf_hub_download(
                    repo_id, f, revision=revision, cache_dir=cache_dir, local_files_only=offline
                )
            )
            for f in needed
        ]
    except LocalEntryNotFoundError as exc:
        raise CheckpointError(
            f"hub:{repo_id}: the checkpoint is not in the Hugging Face cache and the hub is offline or "
            "unreachable; run `visage download` on a machine with internet (or set HF_HOME to a cache that "
            "has it, or pass a local checkpoint folder)"
        ) from exc
    except (HfHubHTTPError, OSError) as exc:
        raise CheckpointError(f"hub:{repo_id}: could not fetch the checkpoint ({exc})") from exc
    return paths[0].parent


def _env_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


# -- public load / save ----------------------------------------------------------------------------------


def load_pretrained(
    path_or_repo_id: str | Path = DEFAULT_REPO_ID,
    *,
    subfolder: str | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> Visage:
    """Load an official ViSAGe ambisonics checkpoint (or one written by :func:`save_pretrained`).

    Builds the model on the meta device and assigns the checkpoint tensors, so nothing is initialised
    twice. The result is in eval mode.
    """
    folder = resolve_checkpoint_dir(
        path_or_repo_id,
        subfolder=subfolder,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
    )
    config = VisageConfig.from_json_file(folder / CONFIG_NAME)
    with torch.device("meta"):
        model = Visage(config)
    ours = from_official_state_dict(read_state_dict(folder), model, source=str(folder))
    ours = {
        k: v.to(device=device, dtype=dtype if dtype is not None and v.is_floating_point() else v.dtype)
        for k, v in ours.items()
    }
    model.load_state_dict(ours, strict=True, assign=True)
    return model.eval()


def load_mono_for_ambisonics(path_or_repo_id: str | Path, **kwargs: Any) -> Visage:
    """The official mono (VGGSound) checkpoint as an ambisonics model, ready for fine-tuning.

    As the official ``init_spatial_from_pretrained``: every shared weight loads; row i of the code
    embeddings and heads starts as the mono row i mod 9 (each channel's codebook q starts as the mono
    codebook q); the direction and energy MLPs are freshly initialised (N(0, init_std), bias 0) and
    their null vectors are zero.
    """
    generator = kwargs.pop("generator", None)
    folder = resolve_checkpoint_dir(path_or_repo_id, mono=True, **kwargs)
    mono_config = VisageConfig.from_json_file(folder / CONFIG_NAME)
    if mono_config.is_ambisonic:
        raise CheckpointError(f"{folder}: this is already an ambisonics checkpoint; use load_pretrained")
    mono = Visage(mono_config)
    mono.load_state_dict(
        from_official_state_dict(read_state_dict(folder), mono, source=str(folder)), strict=True
    )
    config = VisageConfig.from_dict({**mono_config.to_dict(), "architectures": [AMBISONICS_ARCHITECTURE]})
    model = Visage(config)
    model.init_weights(generator)
    with torch.no_grad():
        target = model.state_dict()
        for name, tensor in mono.state_dict().items():
            if name in ("decoder.code_embeddings", "heads.weight", "heads.bias"):
                q = tensor.shape[0]
                target[name].copy_(tensor[torch.arange(target[name].shape[0]) % q])
            else:
                target[name].copy_(tensor)
        model.null_direction.zero_()  # type: ignore[union-attr]
        model.null_energy.zero_()  # type: ignore[union-attr]
    return model


def save_pretrained(
    model: Visage, directory: str | Path, *, safe_serialization: bool = True, overwrite: bool = False
) -> Path:
    """Write ``config.json`` and the weights under official names, so the official code loads them too.

    Each file is written to a temporary name and renamed, so a crash never leaves a half-written
    checkpoint; existing checkpoint files are only replaced with ``overwrite=True``.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights_name = SAFETENSORS_NAME if safe_serialization else PICKLE_NAME
    if not overwrite:
        existing = [n for n in (CONFIG_NAME, *WEIGHT_NAMES) if (directory / n).exists()]
        if existing:
            raise FileExistsError(f"{directory}: already holds {', '.join(existing)}; pass overwrite=True")
    state = {k: v.detach().contiguous().cpu() for k, v in to_official_state_dict(model).items()}

    def write(name: str, writer: Any) -> None:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
        os.close(fd)
        try:
            writer(tmp)
            os.replace(tmp, directory / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    if safe_serialization:
        write(weights_name, lambda p: save_file(state, p, metadata={"format": "pt"}))
    else:
        write(weights_name, lambda p: torch.save(state, p))
    write(CONFIG_NAME, lambda p: Path(p).write_text(model.config.to_json_string()))
    return directory
