"""Arguments and entry functions of the model-side ``visage`` stages (doctor, bench, ...).

Only argparse lives at module level; each ``run_*`` imports the heavy modules it needs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict


def add_doctor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fix",
        action="store_true",
        help="repair what can be repaired here (torchaudio's CUDA-only native libraries)",
    )


def run_doctor(args: argparse.Namespace) -> int:
    from .environment import doctor, format_report

    checks = doctor(fix=args.fix)
    print(format_report(checks))
    return 0 if all(c.ok for c in checks if c.name in ("torch", "torchaudio", "dac", "transformers")) else 1


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    p = sub.add_parser(
        "generate",
        help="decoder steps/s and seconds per 5-s clip vs the official loop",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--dtype", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
    p.add_argument("--batch", nargs="+", type=int, default=[1, 16])
    p.add_argument(
        "--frames",
        type=int,
        default=None,
        help="code frames per run (default 430 = a 5-s clip on GPU, 24 on CPU)",
    )
    p.add_argument("--no-reference", action="store_true", help="skip the official-structure loop")
    p.add_argument("--preset", default="released", help="architecture preset (released, tiny)")
    p.add_argument("--json", default=None, help="also write the measurements to this JSON file")


def run_bench(args: argparse.Namespace) -> int:
    from .bench import run_benchmark

    rows = run_benchmark(
        device=args.device,
        dtypes=tuple(args.dtype),
        batches=tuple(args.batch),
        frames=args.frames,
        reference=not args.no_reference,
        preset=args.preset,
        log=lambda line: print(line, flush=True),
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) | {"steps_per_second": r.steps_per_second} for r in rows], f, indent=2)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
