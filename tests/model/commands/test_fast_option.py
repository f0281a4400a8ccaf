"""`visage generate --fast` (off by default, recorded in the sidecar) and `visage bench fast-path`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from media_factory import make_test_video

from visage.model.cli import build_parser, main
from visage.model.network.kernel_choice import cpu_name


@pytest.fixture(autouse=True)
def _tiny_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISAGE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "visage-cache"))


def test_the_fast_path_is_off_unless_asked() -> None:
    args = build_parser().parse_args(["generate", "clip.mp4", "-o", "out.wav"])
    assert args.fast is None


@pytest.mark.parametrize("fast", [None, "int8"])
def test_generate_records_whether_the_fast_path_made_the_result(
    fast: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = make_test_video(tmp_path / "clip.mp4", duration=1.0).path
    out = tmp_path / "out.wav"
    option = [] if fast is None else ["--fast", fast]
    assert main(["generate", str(video), "-o", str(out), "--model", "tiny-random", *option]) == 0
    assert json.loads(Path(f"{out}.json").read_text())["model"]["fast"] == fast


def test_bench_fast_path_prints_speed_ratios_and_fidelity_with_the_cpu(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["bench", "fast-path", "--preset", "tiny", "--frames", "2", "--repeats", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert cpu_name() in out.splitlines()[0]
    for loop in ("exact fp32", "official structure fp32", "fast bf16", "fast int8"):
        assert f"{loop}:" in out and "x1.00 vs exact" in out
    assert out.count("greedy codes agree") == 2 and "over 5 steps" in out
