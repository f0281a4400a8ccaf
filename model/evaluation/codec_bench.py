"""DAC decoding as released against DAC decoding as the pipeline runs it: same bits, and how much faster.

``visage bench codec`` builds DAC 44 kHz with random weights (no download) several times with the same
seed and decodes the same random codes of four channels (one FOA clip) with each variant:

* released: DAC's own modules, weight norm recomputed at every call (what ``generate_ambi.py`` runs);
* folded: weight norm folded into plain weights (``codec.fold_weight_norm``);
* pipeline: folded, and activations and residual sums in place (``codec.prepare_for_inference``);
* pipeline, 1 thread: the same on one thread, to show what the machine's threads bring.

Variants run interleaved, ``repeats`` times each; the fastest run of each counts. Every variant must
give the released bits; the table says whether it did.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from visage.model.audio.codec import (
    FOA_CHANNELS,
    build_tiny_random_dac,
    fold_weight_norm,
    prepare_for_inference,
)
from visage.model.evaluation.bench import machine_description
from visage.model.inference.device_choice import resolve_device


@dataclass(frozen=True)
class CodecRow:
    """One variant: its fastest decode and whether its audio has the released model's bits."""

    variant: str
    seconds: float
    same_bits: bool


@contextmanager
def _threads(count: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _builder(size: str, folder: Path, seed: int) -> Callable[[], Any]:
    """A function that builds the same random DAC every time it is called."""
    import dac

    if size == "tiny":
        weights = build_tiny_random_dac(folder / "dac.pth", seed)
        return lambda: dac.utils.load_model(load_path=str(weights))

    def build() -> Any:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return dac.DAC()  # the defaults are the 44.1-kHz release architecture

    return build


def run_codec_benchmark(
    *,
    seconds: float = 1.0,
    size: str = "full",
    repeats: int = 3,
    device: str = "auto",
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[CodecRow]:
    """Decode one FOA clip of ``seconds`` with each variant; print seconds, speed-up and bit equality."""
    if size not in ("full", "tiny") or seconds <= 0 or repeats < 1:
        raise ValueError(
            f"need size full or tiny, seconds > 0 and repeats >= 1; got {size}, {seconds}, {repeats}"
        )
    dev = resolve_device(device)
    with tempfile.TemporaryDirectory(prefix="visage-codec-bench-") as tmp:
        build = _builder(size, Path(tmp), seed)
        released = build().to(dev).float().eval()
        folded = build().to(dev).float().eval()
        fold_weight_norm(folded)
        prepared = prepare_for_inference(build().to(dev).float().eval())
    frames = math.ceil(seconds * released.sample_rate / released.hop_length)
    codes = torch.randint(
        0,
        released.codebook_size,
        (FOA_CHANNELS, released.n_codebooks, frames),
        generator=torch.Generator().manual_seed(seed),
    ).to(dev)  # [C, K, T]
    variants: list[tuple[str, Any, int | None]] = [
        ("released", released, None),
        ("folded", folded, None),
        ("pipeline", prepared, None),
        ("pipeline, 1 thread", prepared, 1),
    ]
    log(f"# DAC decode, {size} size, random weights, {FOA_CHANNELS} x {seconds:g} s ({frames} frames), {dev}")
    log(f"# machine: {machine_description(dev)}")
    best = {name: math.inf for name, _, _ in variants}
    outputs: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for _ in range(repeats):
            for name, model, threads in variants:
                with _threads(threads):
                    if dev.type == "cuda":
                        torch.cuda.synchronize(dev)
                    start = time.perf_counter()
                    audio = model.decode(model.quantizer.from_codes(codes)[0])  # [C, 1, N]
                    if dev.type == "cuda":
                        torch.cuda.synchronize(dev)
                    best[name] = min(best[name], time.perf_counter() - start)
                outputs[name] = audio
    rows = [
        CodecRow(name, best[name], torch.equal(outputs[name], outputs["released"])) for name, _, _ in variants
    ]
    log(f"{'variant':<20} {'seconds':>8} {'speed-up':>9}  same bits as released")
    for row in rows:
        speed_up = f"x{best['released'] / row.seconds:.2f}"
        log(f"{row.variant:<20} {row.seconds:8.2f} {speed_up:>9}  {row.same_bits}")
    return rows
