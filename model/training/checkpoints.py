"""Resumable training checkpoints: the model in the official layout plus everything needed to continue.

A checkpoint is a folder ``<output_dir>/checkpoints/step_<n>/``::

    model/                 config.json + model.safetensors under official key names
                           (``checkpoint.save_pretrained``): loadable by ``Visage.from_pretrained``
                           and by the official code
    optimizer.pt           AdamW state (moments, step counts)
    scheduler.pt           learning-rate schedule state
    rng_rank<r>.pt         per process: torch (CPU and CUDA), numpy and Python RNG states, and the
                           generator that draws crops, rotations and condition dropout
    state.json             step, epoch and position in the epoch (written last: its presence marks a
                           complete checkpoint)

It is written into a hidden ``.step_<n>.partial`` folder and renamed when complete, so an interruption
never leaves a checkpoint that looks usable but is not. Restoring all of it makes a resumed run take
exactly the steps an uninterrupted one would (same batches, same random draws, same optimiser state).
"""

from __future__ import annotations

import json
import random
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visage.model.network.checkpoint import from_official_state_dict, read_state_dict, save_pretrained
from visage.model.network.visage import Visage

CHECKPOINTS = "checkpoints"
STATE_NAME = "state.json"
_STEP_DIR = re.compile(r"step_(\d+)\Z")


@dataclass
class Progress:
    """Where training stands.

    Attributes:
        step: optimiser steps taken.
        epoch: current pass over the training split (0-based).
        batch_in_epoch: batches of this epoch already consumed.
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS / f"step_{step:08d}"


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The complete checkpoint with the most steps, or None."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return None
    done = [p for p in root.iterdir() if _STEP_DIR.match(p.name) and (p / STATE_NAME).is_file()]
    return max(done, key=lambda p: int(_STEP_DIR.match(p.name)[1]), default=None)  # type: ignore[index]


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "generator": generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    output_dir: str | Path,
    progress: Progress,
    *,
    model: Visage,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    generator: torch.Generator,
    rank: int = 0,
    is_main: bool = True,
    barrier: Any = lambda: None,
    keep: int = 0,
) -> Path:
    """Write a checkpoint of ``progress`` (every process calls this; ``barrier`` synchronises them).

    Args:
        keep: how many checkpoints to keep (older ones are deleted); 0 keeps all.

    Returns:
        The checkpoint folder.
    """
    final = checkpoint_dir(output_dir, progress.step)
    partial = final.with_name(f".{final.name}.partial")
    if is_main:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    barrier()
    torch.save(_rng_state(generator), partial / f"rng_rank{rank}.pt")
    if is_main:
        save_pretrained(model, partial / "model", overwrite=True)
        torch.save(optimizer.state_dict(), partial / "optimizer.pt")
        torch.save(scheduler.state_dict(), partial / "scheduler.pt")
    barrier()
    if is_main:
        (partial / STATE_NAME).write_text(json.dumps(asdict(progress), indent=1) + "\n")
        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)
        if keep:
            root = final.parent
            done = sorted((p for p in root.iterdir() if _STEP_DIR.match(p.name)), key=lambda p: p.name)
            for old in done[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    barrier()
    return final


def load_checkpoint(
    folder: str | Path,
    *,
    model: Visage,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    generator: torch.Generator,
    rank: int = 0,
) -> Progress:
    """Restore a checkpoint into live objects and return its progress.

    Raises:
        FileNotFoundError: an incomplete checkpoint or no RNG state for this process (e.g. a run resumed
            with more processes than it was saved with).
        checkpoint.CheckpointError: model weights that do not fit ``model``.
    """
    folder = Path(folder)
    state_path = folder / STATE_NAME
    if not state_path.is_file():
        raise FileNotFoundError(f"{folder}: not a complete training checkpoint (no {STATE_NAME})")
    weights = from_official_state_dict(read_state_dict(folder / "model"), model, source=str(folder / "model"))
    model.load_state_dict(weights, strict=True)
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True))
    scheduler.load_state_dict(torch.load(folder / "scheduler.pt", map_location="cpu", weights_only=True))
    rng = folder / f"rng_rank{rank}.pt"
    if not rng.is_file():
        raise FileNotFoundError(
            f"{rng}: no RNG state for process {rank}; resume with the same number of processes"
        )
    # Our own file; numpy's RNG state is a tuple with an array, which the weights-only loader refuses.
    _set_rng_state(torch.load(rng, map_location="cpu", weights_only=False), generator)
    return Progress(**json.loads(state_path.read_text()))
