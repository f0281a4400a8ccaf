"""Checks and figures for a machine with a CUDA GPU: one command, at most 8 minutes, a JSON of results.

    python benchmarks/gpu_check.py --json gpu_check.json              # on a CUDA machine
    python benchmarks/gpu_check.py --cpu-smoke --json smoke.json      # same script, CPU, tiny models

Nothing is downloaded: weights are random, built in the run (the parity section reads the official tiny
checkpoint from ``../shared/parity``, or ``--parity-dir``, and is skipped without it). Sections, each
recorded with its seconds and peak memory; one that fails or raises does not stop the others:

1. ``cuda_graph``: greedy codes with the CUDA-graph decode step equal the eager loop's (released
   architecture, random weights with decisive logits; fp32 must be equal, bf16 agreement is recorded).
2. ``parity``: the official goldens on the device: fp32 teacher-forced logits within 1e-4 and the 861-step
   greedy codes identical; bf16 logit error relative to the logit scale and greedy code agreement.
3. ``generation``: steps/s and seconds per 5-s clip at batch 1, 16 and 64, batched loop and reference
   loop, fp32 and bf16 (``visage bench generate``), against the targets: <= 0.5 s per 5-s clip at batch 1
   in bf16, >= 50 clips/s at batch 64 (printed, never asserted).
4. ``pipeline``: one 5-s clip end to end at full size, stage by stage, against the official structure
   (``visage bench pipeline``).

``--cpu-smoke`` runs the same sections on the CPU with tiny models and short runs (under 2 minutes), so
that CI keeps this script working. Exit status 1 if a check failed or a section raised.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from visage.model.evaluation.bench import machine_description, peak_memory_bytes, run_benchmark
from visage.model.evaluation.pipeline_bench import run_pipeline_benchmark
from visage.model.network.checkpoint import load_pretrained
from visage.model.network.config import VisageConfig
from visage.model.network.tiny_random import random_conditions, randomize_weights
from visage.model.network.visage import Visage

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 480.0
PARITY_TOL = 1e-4  # fp32, as tests/model/network/test_parity.py
TARGET_BATCH1_BF16_S = 0.5  # seconds per 5-s clip, batched loop, bf16, batch 1
TARGET_BATCH64_CLIPS_PER_S = 50.0
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Plan:
    """What to run: the full GPU check, or its CPU smoke form."""

    device: torch.device
    preset: str  # ViSAGe architecture of the generation sections
    frames: int  # code frames per generation run (430 = a 5-s clip)
    batches: tuple[int, ...]
    pipeline_size: str
    pipeline_seconds: float

    @classmethod
    def of(cls, smoke: bool, device: str) -> Plan:
        if smoke:
            return cls(torch.device("cpu"), "tiny", 8, (1, 16, 64), "tiny", 1.0)
        return cls(torch.device(device), "released", 430, (1, 16, 64), "full", 5.0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_cuda_graph(plan: Plan) -> dict[str, Any]:
    """Greedy codes, CUDA-graph decode step vs the eager loop, on the same random weights."""
    config = VisageConfig.preset(plan.preset)
    model = randomize_weights(Visage(config), seed=3).to(plan.device).eval()
    clip, energy, direction = random_conditions(2, config.max_source_length, seed=4, d_clip=config.d_clip)
    out: dict[str, Any] = {"ok": True}
    for name in ("fp32", "bf16"):
        model.to(DTYPES[name])
        inputs = [x.to(plan.device, DTYPES[name]) for x in (clip, energy, direction)]
        codes = {}
        for static in (True, False):
            _sync(plan.device)
            start = time.perf_counter()
            codes[static] = model.generate(
                *inputs, do_sample=False, static_steps=static, num_frames=plan.frames
            )
            _sync(plan.device)
            out[f"{name}_{'graph' if static else 'eager'}_s"] = time.perf_counter() - start
        equal = torch.equal(codes[True], codes[False])
        out[f"{name}_equal"] = equal
        out[f"{name}_agreement"] = float((codes[True] == codes[False]).float().mean())
        if name == "fp32":
            out["ok"] = equal
    out["graph_used"] = plan.device.type == "cuda"
    return out


def check_parity(plan: Plan, parity_dir: Path) -> dict[str, Any]:
    """The official tiny checkpoint's goldens, reproduced on the device in fp32 and bf16."""
    from safetensors.torch import load_file

    tiny_dir = parity_dir / "tiny"
    if not tiny_dir.is_dir():
        return {"ok": None, "skipped": f"no parity vectors at {parity_dir} (set --parity-dir)"}
    tf = load_file(tiny_dir / "teacher_forced.safetensors")
    golden_logits = load_file(tiny_dir / "teacher_forced_logits.safetensors")["logits"].double()
    golden_codes = load_file(tiny_dir / "generate_cfg_greedy.safetensors")["codes"].long()
    scale = float(golden_logits.abs().max())
    out: dict[str, Any] = {"logit_scale": scale}
    for name, dtype in DTYPES.items():
        model = load_pretrained(tiny_dir, device=plan.device, dtype=dtype)

        def on(x: torch.Tensor, dtype: torch.dtype = dtype) -> torch.Tensor:
            return x.to(plan.device, dtype if x.is_floating_point() else torch.long)

        with torch.no_grad():
            logits = model(
                on(tf["clip"]),
                on(tf["energy_map"]),
                on(tf["direction"]),
                on(tf["decoder_input_ids"]),
                on(tf["labels"]),
            ).logits
        error = float((logits.double().cpu() - golden_logits).abs().max())
        codes = model.generate_full(
            on(tf["clip"]), on(tf["energy_map"]), on(tf["direction"]), guidance_scale=2.5, do_sample=False
        ).codes.cpu()
        out[name] = {
            "max_logit_error": error,
            "relative_logit_error": error / scale,
            "greedy_codes_identical": bool(torch.equal(codes, golden_codes)),
            "greedy_code_agreement": float((codes == golden_codes).float().mean()),
        }
    out["ok"] = out["fp32"]["max_logit_error"] < PARITY_TOL and out["fp32"]["greedy_codes_identical"]
    return out


def bench_generation(plan: Plan) -> dict[str, Any]:
    """Steps/s and seconds per 5-s clip for both loops, fp32 and bf16, at each batch size."""
    rows = run_benchmark(
        device=str(plan.device),
        dtypes=tuple(DTYPES),
        batches=plan.batches,
        frames=plan.frames,
        preset=plan.preset,
        log=lambda line: print(line, flush=True),
    )
    config = VisageConfig.preset(plan.preset)
    clip_steps = 2 * config.sequence.generated_codec_frames(config.max_source_length) + 1
    table = [
        asdict(r) | {"steps_per_second": r.steps_per_second, "clip_seconds": r.clip_seconds(clip_steps)}
        for r in rows
    ]
    by = {(r["loop"], r["dtype"], r["batch"]): r for r in table}
    targets: dict[str, Any] = {}
    one = by.get(("batched", "bf16", 1))
    if one:
        targets["batch1_bf16_clip_seconds"] = one["clip_seconds"]
        targets["batch1_bf16_met"] = one["clip_seconds"] <= TARGET_BATCH1_BF16_S
    many = by.get(("batched", "bf16", 64))
    if many:
        targets["batch64_bf16_clips_per_second"] = 1 / many["clip_seconds"]
        targets["batch64_bf16_met"] = 1 / many["clip_seconds"] >= TARGET_BATCH64_CLIPS_PER_S
    return {"ok": True, "rows": table, "targets": targets}


def bench_pipeline(plan: Plan) -> dict[str, Any]:
    """One clip end to end at full size (tiny in the smoke run), against the official structure."""
    result = run_pipeline_benchmark(
        size=plan.pipeline_size, seconds=plan.pipeline_seconds, device=str(plan.device), log=print
    )
    return {"ok": result.decode_reports > 1, **result.to_json()}


def run_section(
    name: str, fn: Callable[[], dict[str, Any]], device: torch.device, deadline: float
) -> dict[str, Any]:
    """Run one section with its time and peak memory; an exception is recorded, not raised."""
    if time.monotonic() > deadline:
        return {"ok": None, "skipped": "time budget spent"}
    print(f"== {name}", flush=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    try:
        out = fn()
    except Exception as exc:  # recorded in the JSON; the other sections still run
        traceback.print_exc()
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    out["seconds"] = time.perf_counter() - start
    out["peak_memory_bytes"] = peak_memory_bytes(device)
    status = "skipped" if out["ok"] is None else "ok" if out["ok"] else "FAILED"
    print(f"== {name}: {status} in {out['seconds']:.1f} s", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cpu-smoke", action="store_true", help="CPU, tiny models, short runs (CI)")
    parser.add_argument("--device", default="cuda", help="the GPU to check (ignored with --cpu-smoke)")
    parser.add_argument("--json", type=Path, default=Path("gpu_check.json"), help="where to write results")
    parser.add_argument(
        "--parity-dir",
        type=Path,
        default=Path(os.environ.get("VISAGE_SHARED_DIR", REPO.parent / "shared")) / "parity",
        help="the official parity vectors (read-only)",
    )
    parser.add_argument("--budget-s", type=float, default=BUDGET_S, help="start no section after this")
    args = parser.parse_args(argv)
    plan = Plan.of(args.cpu_smoke, args.device)
    if plan.device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here; run with --cpu-smoke for the CPU form", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.budget_s
    report: dict[str, Any] = {
        "mode": "cpu-smoke" if args.cpu_smoke else "gpu",
        "machine": machine_description(plan.device),
        "torch": torch.__version__,
        "plan": {k: str(v) if isinstance(v, torch.device) else v for k, v in asdict(plan).items()},
        "sections": {},
    }
    print(f"# {report['mode']} on {report['machine']}", flush=True)
    sections: dict[str, Callable[[], dict[str, Any]]] = {
        "cuda_graph": lambda: check_cuda_graph(plan),
        "parity": lambda: check_parity(plan, args.parity_dir),
        "generation": lambda: bench_generation(plan),
        "pipeline": lambda: bench_pipeline(plan),
    }
    for name, fn in sections.items():
        report["sections"][name] = run_section(name, fn, plan.device, deadline)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")  # after each
    print(f"wrote {args.json}")
    return 1 if any(s["ok"] is False for s in report["sections"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
