"""`visage bench pipeline` and `visage bench codec` on tiny shapes: stages timed, report printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from visage.model.cli import main
from visage.model.evaluation.codec_bench import run_codec_benchmark
from visage.model.evaluation.pipeline_bench import STAGES, run_pipeline_benchmark
from visage.model.network.kernel_choice import cpu_name


def test_pipeline_bench_times_every_stage_of_both_structures() -> None:
    lines: list[str] = []
    result = run_pipeline_benchmark(size="tiny", seconds=1.0, device="cpu", log=lines.append)
    assert result.steps == 2 * 86 + 1  # 4 CLIP frames -> 86 code frames -> 173 pattern steps
    assert result.reference is not None
    for stage in STAGES:
        assert getattr(result.ours, stage) > 0 and getattr(result.reference, stage) > 0, stage
    assert result.ours_cpu.total > 0 and result.reference_cpu is not None and result.reference_cpu.total > 0
    assert result.decode_reports > 10  # the codec stage reports while DAC decodes
    text = "\n".join(lines)
    assert cpu_name() in text and "total" in text and "speed-up" in text


def test_pipeline_bench_command_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "pipeline", "--size", "tiny", "--seconds", "0.5", "--device", "cpu", "--no-reference"]
    assert main([*args, "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["reference"] is None and data["ours"]["total"] > 0 and data["size"] == "tiny"
    assert "decoder" in capsys.readouterr().out
    assert main(["bench", "pipeline", "--seconds", "6"]) == 1  # more than one window: refused, one line
    assert "visage bench: error: seconds must lie in (0, 5]" in capsys.readouterr().err


def test_codec_bench_keeps_the_released_bits() -> None:
    rows = {
        r.variant: r
        for r in run_codec_benchmark(seconds=0.5, size="tiny", repeats=1, device="cpu", log=print)
    }
    assert rows["folded"].same_bits and rows["pipeline"].same_bits and rows["released"].same_bits
    assert all(r.seconds > 0 for r in rows.values())
