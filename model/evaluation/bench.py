"""Generation speed of the released architecture (random weights) against the official loop structure.

Prints decoder steps per second and seconds per 5-s clip (861 steps) at each batch size, for the batched
loop of :mod:`generation` and for :mod:`reference_loop` (separate conditional/unconditional passes,
per-head sampling) run in the same process on the same weights. Targets (issue 2): >= 3x the reference
at batch 1 on a 2-core CPU; a 5-s clip under 0.5 s at batch 1 in bf16 on a GPU. Numbers are printed,
never asserted.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from visage.model.network.config import VisageConfig
from visage.model.network.generation import generate
from visage.model.network.kernel_choice import cpu_name
from visage.model.network.reference_loop import reference_generate_cfg
from visage.model.network.tiny_random import random_conditions
from visage.model.network.visage import Visage

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class BenchRow:
    loop: str
    dtype: str
    batch: int
    steps: int
    seconds: float

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds

    def clip_seconds(self, clip_steps: int) -> float:
        """Seconds per 5-s clip of this batch: (steps of a clip / measured steps per second) / batch."""
        return clip_steps / self.steps_per_second / self.batch


def machine_description(device: torch.device) -> str:
    """The processor's name, for printing beside every figure."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA), torch {torch.__version__}"
    return f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def peak_memory_bytes(device: torch.device) -> int:
    """Peak GPU memory allocated on CUDA; elsewhere the process's peak resident set (0 if unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource
    except ImportError:  # Windows
        return 0
    peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def run_benchmark(
    *,
    device: str = "auto",
    dtypes: tuple[str, ...] = ("fp32", "bf16"),
    batches: tuple[int, ...] = (1, 16),
    frames: int | None = None,
    reference: bool = True,
    preset: str = "released",
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[BenchRow]:
    """Measure both loops; ``frames`` code frames per run (default: a full 5-s clip on GPU, 24 on CPU)."""
    dev = torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    )
    config = VisageConfig.preset(preset)
    clip_steps = 2 * config.sequence.generated_codec_frames(config.max_source_length) + 1
    frames = frames or (430 if dev.type == "cuda" else 24)
    steps = 2 * frames + 1
    log(f"# {preset} architecture, random weights, device {dev}, {steps} of {clip_steps} steps per run")
    log(f"# machine: {machine_description(dev)}")
    g = torch.Generator().manual_seed(seed)
    base = Visage(config)
    base.init_weights(g)
    rows: list[BenchRow] = []
    for name in dtypes:
        dtype = DTYPES[name]
        model = base.to(device=dev, dtype=dtype).eval()
        for b in batches:
            inputs = random_conditions(b, config.max_source_length, seed=seed + b, d_clip=config.d_clip)
            clip, energy, direction = (x.to(dev, dtype) for x in inputs)
            gen = torch.Generator(device=dev).manual_seed(seed)

            args = (model, clip, energy, direction)
            kwargs: dict[str, Any] = {"num_frames": frames, "generator": gen}
            loops: list[tuple[str, Callable[[], Any]]] = [("batched", partial(generate, *args, **kwargs))]
            if reference:
                loops.append(("reference", partial(reference_generate_cfg, *args, **kwargs)))
            # Warm-up, untimed: first-call allocations, and the few-row kernel choices of every step's shapes
            generate(model, clip, energy, direction, num_frames=frames, generator=gen)
            for loop, fn in loops:
                row = BenchRow(loop, name, b, steps, _timed(fn, dev))
                rows.append(row)
                log(
                    f"{loop:>9} {name} batch {b:>3}: {row.steps_per_second:7.1f} steps/s, "
                    f"{row.clip_seconds(clip_steps):7.3f} s per 5-s clip"
                )
    base.to(torch.float32)
    log(format_ratios(rows, clip_steps))
    return rows


def format_ratios(rows: list[BenchRow], clip_steps: int) -> str:
    """Speed-ups of the batched loop over the reference, same batch: at the same dtype and vs fp32."""
    ref = {(r.dtype, r.batch): r for r in rows if r.loop == "reference"}
    lines = ["# speed-up of the batched loop (steps/s ratio)"]
    for r in rows:
        if r.loop != "batched":
            continue
        parts = []
        same = ref.get((r.dtype, r.batch))
        if same:
            parts.append(f"x{r.steps_per_second / same.steps_per_second:.2f} vs reference {r.dtype}")
        fp32 = ref.get(("fp32", r.batch))
        if fp32 and r.dtype != "fp32":
            parts.append(f"x{r.steps_per_second / fp32.steps_per_second:.2f} vs reference fp32 (official)")
        lines.append(f"batched {r.dtype} batch {r.batch}: " + (", ".join(parts) or "no reference run"))
    return "\n".join(lines)
