"""Which kernel computes a few-row linear product fastest here: measured on this machine, then kept.

Why: the fastest way to multiply 2-64 rows by a weight matrix depends on the CPU, its BLAS, the thread
count and the torch build (on one 2-core VM the weight-left ``addmm`` ran 2.8x faster than ``F.linear``;
on another it ran 1.6x slower). So no winner is written in the code: the first product of each kind
(device, dtype, weight shape, row count, bias) times every candidate on the real weights, in
interleaved rounds (at least 20 ms per candidate), and keeps the fastest. Output sizes are grouped by
powers of two, so that the heads, whose live slice grows step by step from 1 to 36 x 1024 outputs at the
start of a clip, cost a handful of measurements instead of one per size. Choices are remembered per
process; the inference layer keeps them per machine in the user cache (``inference/kernel_store.py``),
where choices made on another CPU, torch version or thread count are ignored and measured anew.

Every candidate computes the same product; they differ in float summation order only, so a choice
never changes what a computation means, and a given machine always makes the same choice from its store.
"""

from __future__ import annotations

import functools
import platform
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

Kernel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
MEASURE_SECONDS = 0.02  # per candidate, after one warm-up call each; at least MIN_REPEATS rounds
MIN_REPEATS = 5


@dataclass(frozen=True)
class KernelKey:
    """What a choice depends on, besides the machine."""

    device: str
    dtype: str
    out_features: int
    in_features: int
    rows: int
    bias: bool

    @classmethod
    def of(cls, rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> KernelKey:
        """The key of ``rows`` [M, I] times ``weight`` [O, I]; O is rounded up to a power of two."""
        out_bucket = 1 << max(int(weight.shape[0]) - 1, 0).bit_length()
        return cls(
            rows.device.type, str(rows.dtype).removeprefix("torch."), out_bucket, weight.shape[1],
            rows.shape[0], bias is not None,
        )  # fmt: skip

    def text(self) -> str:
        bias = "bias" if self.bias else "nobias"
        return (
            f"{self.device}/{self.dtype}/out<={self.out_features}x{self.in_features}/rows{self.rows}/{bias}"
        )


@functools.cache  # read once: machine_identity() is asked at every stored choice
def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: ")) and ":" in line:
                name = line.split(":", 1)[1].strip()
                if name and not name.isdigit():
                    return name
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_identity() -> dict[str, str | int]:
    """What makes measured choices valid: the CPU, the torch build and the thread count."""
    return {"cpu": cpu_name(), "torch": torch.__version__, "threads": torch.get_num_threads()}


def _timings(
    kernels: Mapping[str, Kernel], rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> dict[str, float]:
    """Seconds per call of each kernel: the fastest of interleaved rounds, so that a load that comes and
    goes while measuring slows every candidate alike instead of one of them."""
    sync = torch.cuda.synchronize if rows.device.type == "cuda" else (lambda: None)
    for kernel in kernels.values():
        kernel(rows, weight, bias)  # warm-up: first-call allocations and library dispatch
    sync()
    best = dict.fromkeys(kernels, float("inf"))
    spent, rounds = 0.0, 0
    while rounds < MIN_REPEATS or spent < MEASURE_SECONDS * len(kernels):
        for name, kernel in kernels.items():
            start = time.perf_counter()
            kernel(rows, weight, bias)
            sync()
            elapsed = time.perf_counter() - start
            best[name] = min(best[name], elapsed)
            spent += elapsed
        rounds += 1
    return best


class KernelChoices:
    """This process's choices; ``on_new_choice`` (set by the inference layer) persists them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._choices: dict[str, str] = {}
        self.measured: dict[str, dict[str, float]] = {}  # key text -> kernel -> seconds, this process
        self.on_new_choice: Callable[[dict[str, str]], None] | None = None

    def remember(self, choices: Mapping[str, str]) -> None:
        """Adopt choices measured earlier on this machine (from a store)."""
        with self._lock:
            self._choices.update(choices)

    def choices(self) -> dict[str, str]:
        """Key text -> chosen kernel, for reports (``visage doctor``)."""
        with self._lock:
            return dict(self._choices)

    def choose(
        self,
        kernels: Mapping[str, Kernel],
        rows: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
    ) -> str:
        """The kernel for this product: remembered, or measured now on these very tensors."""
        key = KernelKey.of(rows, weight, bias).text()
        with self._lock:
            known = self._choices.get(key)
        if known is not None and known in kernels:
            return known
        with torch.no_grad():
            timings = _timings(kernels, rows, weight, bias)
        best = min(timings, key=lambda name: timings[name])
        with self._lock:
            self._choices[key] = best
            self.measured[key] = timings
            snapshot = dict(self._choices)
        if self.on_new_choice is not None:
            self.on_new_choice(snapshot)
        return best
