"""``visage bench fast-path``: the fast decoder's speed beside its fidelity, against exact fp32 in one run.

For each architecture (seeded random weights with the parity vectors' rule, or a checkpoint), every
model generates the same clip greedily with joint guidance: the exact fp32 loop, each fast kind
(``network/fast_decoder.py``) and, unless skipped, the official loop's structure
(``network/reference_loop.py``). Runs are interleaved and the best of ``repeats`` is kept, so that load
from other processes touches every model alike; speed is printed as steps/s ratios to the exact loop
of the same run, with the CPU's name. Fidelity (``fast_path_fidelity.py``) is measured on the codes of
those same runs. Numbers are printed, never asserted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from visage.model.network.checkpoint import load_pretrained
from visage.model.network.config import VisageConfig
from visage.model.network.fast_decoder import FAST_KINDS, make_fast
from visage.model.network.kernel_choice import cpu_name
from visage.model.network.reference_loop import reference_generate_cfg
from visage.model.network.tiny_random import random_conditions, randomize_weights
from visage.model.network.visage import Visage

from .fast_path_fidelity import Fidelity, greedy_steps, measure_fidelity

GUIDANCE_SCALE = 2.5  # the released config's


@dataclass
class FastPathRow:
    """One model's best run: ``loop`` is ``exact`` (fp32), ``reference`` or a fast kind."""

    model: str
    loop: str
    steps: int
    seconds: float
    fidelity: Fidelity | None = None

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds


def _random_model(preset: str, seed: int) -> Visage:
    return randomize_weights(Visage(VisageConfig.preset(preset)), seed).eval()


def bench_model(
    name: str,
    exact: Visage,
    *,
    kinds: tuple[str, ...] = FAST_KINDS,
    frames: int = 430,
    batch: int = 1,
    repeats: int = 2,
    reference: bool = True,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[FastPathRow]:
    """Time and compare the loops on one set of weights; prints one line per loop."""
    config = exact.config
    clip, energy, direction = random_conditions(
        batch, config.max_source_length, seed=seed + 1, d_clip=config.d_clip
    )
    steps = 2 * frames + 1
    log(
        f"# {name}: batch {batch}, greedy, joint guidance {GUIDANCE_SCALE}, {steps} steps per run "
        f"({config.sequence.max_clip_frames} CLIP frames), best of {repeats}"
    )
    fast = {kind: make_fast(exact, kind) for kind in kinds}

    def greedy(model: Visage) -> Callable[[int], torch.Tensor]:
        return lambda n: greedy_steps(
            model, clip, energy, direction, num_frames=n, guidance_scale=GUIDANCE_SCALE
        )

    runs = {"exact": greedy(exact)}
    if reference:
        runs["reference"] = lambda n: reference_generate_cfg(
            exact, clip, energy, direction, guidance_scale=GUIDANCE_SCALE, do_sample=False, num_frames=n
        )
    runs |= {kind: greedy(model) for kind, model in fast.items()}
    for run in runs.values():
        run(2)  # warm-up: kernel choices, first-call allocations
    best: dict[str, float] = {}
    outputs: dict[str, torch.Tensor] = {}
    for _ in range(repeats):
        for loop, run in runs.items():
            start = time.perf_counter()
            outputs[loop] = run(frames)
            best[loop] = min(best.get(loop, float("inf")), time.perf_counter() - start)
    rows = [FastPathRow(name, loop, steps, best[loop]) for loop in runs]
    for row in rows:
        if row.loop in fast:
            row.fidelity = measure_fidelity(
                exact,
                fast[row.loop],
                clip,
                energy,
                direction,
                exact_steps=outputs["exact"],
                fast_steps=outputs[row.loop],
                guidance_scale=GUIDANCE_SCALE,
            )
    for row in rows:
        log(_row_text(row, best))
    return rows


def _row_text(row: FastPathRow, best: dict[str, float]) -> str:
    label = {"exact": "exact fp32", "reference": "official structure fp32"}.get(row.loop, f"fast {row.loop}")
    text = f"{label:>24}: {row.steps_per_second:8.1f} steps/s  x{best['exact'] / row.seconds:.2f} vs exact"
    if "reference" in best and row.loop != "reference":
        text += f", x{best['reference'] / row.seconds:.2f} vs official structure"
    if row.fidelity is not None:
        text += f"\n{'':>26}{row.fidelity.text()}"
    return text


def run_fast_path_benchmark(
    *,
    presets: tuple[str, ...] = ("tiny", "released"),
    checkpoint: str | Path | None = None,
    kinds: tuple[str, ...] = FAST_KINDS,
    frames: int = 430,
    batch: int = 1,
    repeats: int = 2,
    reference: bool = True,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[FastPathRow]:
    """The benchmark on CPU: each preset with random weights, or the weights of ``checkpoint``."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    log(
        f"# fast path vs exact fp32 on CPU: {cpu_name()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}; load average {load:.1f} (other processes make timings noisy; "
        "ratios are within this run)"
    )
    if checkpoint is not None:
        models = [(str(checkpoint), lambda: load_pretrained(checkpoint).eval())]
    else:
        models = [(f"{p} architecture, random weights", partial(_random_model, p, seed)) for p in presets]
    rows: list[FastPathRow] = []
    for name, build in models:
        rows += bench_model(
            name,
            build(),
            kinds=kinds,
            frames=frames,
            batch=batch,
            repeats=repeats,
            reference=reference,
            seed=seed,
            log=log,
        )
    return rows
