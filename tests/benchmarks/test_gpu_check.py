"""benchmarks/gpu_check.py in its CPU smoke form, so that the GPU check cannot rot between GPU runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_runs_on_cpu_with_tiny_models(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    env = os.environ | {"HF_HUB_OFFLINE": "1", "VISAGE_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu-smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,  # under 2 minutes on an idle 2-core CPU; a loaded CI machine gets slack
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "cpu-smoke" and report["plan"]["preset"] == "tiny"
    sections = report["sections"]
    assert list(sections) == ["cuda_graph", "parity", "generation", "pipeline"]
    assert sections["cuda_graph"]["fp32_equal"] is True
    assert sections["parity"]["ok"] in (True, None)  # None: no ../shared/parity next to this checkout
    if sections["parity"]["ok"]:
        assert sections["parity"]["fp32"]["greedy_codes_identical"] is True
        assert 0 <= sections["parity"]["bf16"]["greedy_code_agreement"] <= 1
    rows = sections["generation"]["rows"]
    assert {(r["loop"], r["dtype"], r["batch"]) for r in rows} == {
        (loop, dtype, batch)
        for loop in ("batched", "reference")
        for dtype in ("fp32", "bf16")
        for batch in (1, 16, 64)
    }
    assert set(sections["pipeline"]["ours"]) == {"features", "decoder", "codec", "write", "total"}
    assert all(s["seconds"] > 0 and s["peak_memory_bytes"] > 0 for s in sections.values())
    assert report["machine"] in proc.stdout  # the CPU name is printed beside the figures
