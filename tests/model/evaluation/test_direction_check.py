"""`visage doctor --check-direction`: the verdict logic on known fields, the report on tiny-random weights,
and (with the released weights) the convention itself."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from visage.model.audio.ambisonics import active_intensity
from visage.model.cli import main
from visage.model.evaluation.direction_check import (
    MIN_SEPARATION,
    VERDICTS,
    DirectionReading,
    check_direction,
    format_direction_report,
    judge_pair,
)
from visage.model.evaluation.pipeline_bench import write_test_video
from visage.model.features.direction import CameraDirection
from visage.model.inference.pipeline import GenerationRequest

REPO = Path(__file__).resolve().parents[3]


def _field(azimuth_deg: float, elevation_deg: float, *, diffuse: float = 0.0, seed: int = 0) -> np.ndarray:
    """[4, N] AmbiX (SN3D) of one plane wave plus ``diffuse`` power of sound from everywhere."""
    rng = np.random.default_rng(seed)
    n = 20_000

    def wave(az: float, el: float, power: float) -> np.ndarray:
        s = math.sqrt(power) * rng.standard_normal(n)
        return np.stack(
            [s, s * math.cos(el) * math.sin(az), s * math.sin(el), s * math.cos(el) * math.cos(az)]
        )

    out = wave(math.radians(azimuth_deg), math.radians(elevation_deg), 1.0)
    for _ in range(60 if diffuse else 0):
        d = rng.standard_normal(3)
        out += wave(math.atan2(d[1], d[0]), math.asin(d[2] / np.linalg.norm(d)), diffuse / 60)
    return out


def _reading(yaw: float, pitch: float, azimuth: float, elevation: float, **kw: float) -> DirectionReading:
    return DirectionReading(CameraDirection(yaw, pitch), active_intensity(_field(azimuth, elevation, **kw)))


def test_a_pair_follows_is_mirrored_or_says_nothing() -> None:
    follows = judge_pair("yaw", _reading(90, 0, 80, 0), _reading(-90, 0, -70, 0), axis=1)
    assert follows.verdict == "follows" and follows.separation > 0.9
    mirrored = judge_pair("pitch", _reading(0, 45, 0, -40), _reading(0, -45, 0, 30), axis=2)
    assert mirrored.verdict == "mirrored" and mirrored.separation < -0.5
    # Mostly diffuse sound from nearly the same place: the runs differ by less than the threshold.
    flat = judge_pair(
        "yaw", _reading(90, 0, 0, 0, diffuse=20.0), _reading(-90, 0, 2, 0, diffuse=20.0), axis=1
    )
    assert flat.verdict == "inconclusive" and abs(flat.separation) < MIN_SEPARATION


@dataclass
class _Result:
    audio: np.ndarray


class _FakePipeline:
    """Answers each request with a plane wave at the camera (or at its mirror image)."""

    checkpoint = "fake"

    class codec:  # noqa: N801 - stands in for the FoaCodec attribute
        sample_rate = 44100

    def __init__(self, mirror_yaw: bool) -> None:
        self.mirror_yaw = mirror_yaw

    def generate(self, requests: list[GenerationRequest]) -> list[_Result]:
        out = []
        for i, r in enumerate(requests):
            camera = r.direction
            assert isinstance(camera, CameraDirection)
            yaw = -camera.yaw_deg if self.mirror_yaw else camera.yaw_deg
            out.append(_Result(_field(yaw, camera.pitch_deg, diffuse=0.5, seed=i).astype(np.float32)))
        return out


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_video(tmp_path_factory.mktemp("video") / "clip.mp4", 1.0)


@pytest.mark.parametrize(("mirror_yaw", "yaw_verdict"), [(False, "follows"), (True, "mirrored")])
def test_check_direction_finds_the_fields_direction(video: Path, mirror_yaw: bool, yaw_verdict: str) -> None:
    report = check_direction(_FakePipeline(mirror_yaw), video)  # type: ignore[arg-type]
    assert [r.camera for r in report.readings] == [
        CameraDirection(90, 0),
        CameraDirection(-90, 0),
        CameraDirection(0, 45),
        CameraDirection(0, -45),
    ]
    assert [(v.name, v.verdict) for v in report.verdicts] == [("yaw", yaw_verdict), ("pitch", "follows")]
    assert report.end == pytest.approx(1.0, abs=0.05)  # a clip shorter than 5 s is used whole
    text = format_direction_report(report)
    assert ("MIRRORED" in text) == mirror_yaw
    assert "energy from azimuth" in text and f"yaw (left/right): {yaw_verdict}" in text


def test_doctor_check_direction_reports_on_tiny_random_weights(
    video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VISAGE_CACHE_DIR", str(tmp_path / "cache"))
    code = main(["doctor", "--check-direction", str(video), "--model", "tiny-random", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("camera yaw") == 4 and "weights tiny-random" in out
    for axis in ("yaw (left/right): ", "pitch (up/down): "):
        line = next(line for line in out.splitlines() if axis in line)
        assert line.split(": ")[1].split()[0] in VERDICTS  # tiny random weights make noise: any verdict


def test_doctor_check_direction_names_a_missing_video(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--check-direction", "/nonexistent/clip.mp4", "--model", "tiny-random"]) == 1
    assert "visage doctor: error:" in capsys.readouterr().err


@pytest.mark.weights
@pytest.mark.slow
def test_released_weights_follow_the_camera(tmp_path: Path) -> None:
    """Settles the left/right (and up/down) convention of the direction input against the weights."""
    from visage.model.inference.pipeline import VideoToAmbisonics

    sys.path.insert(0, str(REPO / "examples"))
    from make_example_clip import main as make_clip

    clip = tmp_path / "clip.mp4"
    make_clip([str(clip)])
    report = check_direction(VideoToAmbisonics.load(), clip)
    print(format_direction_report(report))
    assert [v.verdict for v in report.verdicts] == ["follows", "follows"], format_direction_report(report)
