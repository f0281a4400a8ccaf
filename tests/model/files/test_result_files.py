"""The result-file contract: file names, the sidecar's keys, the curve file format and the yaw interval.

Oracles: the names and keys as the README and hosts_and_formats.md state them (``OUT.wav.json``,
``OUT.binaural.wav``), exact rational arithmetic for the yaw wrap, and write -> read round trips; the
sidecars are checked on files written by the real pipeline (tiny-random) and by the daemon's fake engine.
"""

from __future__ import annotations

import json
import math
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from media_factory import make_test_video

from visage.bridge.engine import GenerateSpec, JobDone
from visage.bridge.fake_engine import FakeEngine, FakeSettings
from visage.bridge.osc_protocol import GENERATE, Generate, decode_request
from visage.host_plugins.common import camera, direction_curve
from visage.model.features.direction import CameraDirection, DirectionCurve
from visage.model.files import result_files as rf
from visage.model.inference.pipeline import GenerationOutput, GenerationRequest, VideoToAmbisonics

# --- names ------------------------------------------------------------------------------------------


def test_sidecar_and_preview_names() -> None:
    assert rf.sidecar_path("/x/shot.take1.wav") == Path("/x/shot.take1.wav.json")
    assert rf.preview_path(Path("/x/shot.take1.wav")) == Path("/x/shot.take1.binaural.wav")
    assert rf.sidecar_path(rf.preview_path("a.wav")) == Path("a.binaural.wav.json")
    assert rf.CONTRACT_VERSION == 1


# --- sidecars as the writers write them -------------------------------------------------------------


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_video(tmp_path_factory.mktemp("media") / "clip.mp4", duration=1.0, size=(64, 48)).path


def _sidecars(folder: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")}


def test_pipeline_sidecars_are_named_and_keyed_by_the_contract(
    video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VISAGE_CACHE_DIR", str(tmp_path / "cache"))
    pipeline = VideoToAmbisonics.load("tiny-random", device="cpu")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    requests = [
        GenerationRequest(video, 0.0, 0.5, seed=1, output=out_dir / "a.wav", binaural_preview=True),
        GenerationRequest(
            video, 0.0, 0.5, DirectionCurve((0.0, 0.2), (10.0, 20.0), (0.0, 0.0)), seed=2,
            output=out_dir / "b.wav", metadata={"job": "b"}, loudness_target=-30.0,
        ),
    ]  # fmt: skip
    for result in pipeline.generate(requests):
        assert isinstance(result, GenerationOutput), result
    sidecars = _sidecars(out_dir)
    assert sorted(sidecars) == ["a.binaural.wav.json", "a.wav.json", "b.wav.json"]
    for name in ("a.wav", "b.wav"):
        keys = sidecars[f"{name}.json"].keys()
        assert rf.RESULT_KEYS | rf.GENERATED_KEYS <= keys, name
        assert keys <= rf.RESULT_KEYS | rf.GENERATED_KEYS | {
            rf.PREVIEW_KEY,
            rf.REQUEST_KEY,
            rf.LOUDNESS_NORMALIZATION_KEY,
        }, name
        assert sidecars[f"{name}.json"][rf.FILE_KEY] == name
        assert sidecars[f"{name}.json"][rf.NUM_FRAMES_KEY] == sf.info(str(out_dir / name)).frames
    assert sidecars["a.wav.json"][rf.PREVIEW_KEY] == rf.preview_path("a.wav").name
    assert (out_dir / "a.binaural.wav").is_file()
    assert sidecars["a.binaural.wav.json"].keys() == rf.PREVIEW_SIDECAR_KEYS
    assert sidecars["b.wav.json"][rf.REQUEST_KEY] == {"job": "b"}
    assert sidecars["b.wav.json"][rf.DIRECTION_KEY][rf.DIRECTION_CURVE_KEY] is True


def test_fake_engine_sidecar_is_named_and_keyed_by_the_contract(video: Path, tmp_path: Path) -> None:
    """Fails before the contract: the fake engine wrote ``OUT.json`` without the layout keys."""
    engine = FakeEngine(FakeSettings(delay_s=0.0, steps=1, seconds=0.25))
    spec = GenerateSpec(
        media=video, start=0.0, end=0.25, yaw=10.0, pitch=0.0, direction_curve=None, guidance=2.5,
        seed=3, sample_rate=16_000, output=tmp_path / "fake.take.wav", extra={"binaural_preview": False},
    )  # fmt: skip
    (outcome,) = engine.run_batch([spec], lambda *_: None, lambda _: False)
    assert isinstance(outcome, JobDone) and outcome.metadata == tmp_path / "fake.take.wav.json"
    (name, sidecar), *others = _sidecars(tmp_path).items()
    assert name == "fake.take.wav.json" and not others
    assert sidecar.keys() == rf.RESULT_KEYS | rf.FAKE_ENGINE_KEYS
    assert {k: sidecar[k] for k in rf.AMBIX_LAYOUT} == {
        **rf.AMBIX_LAYOUT,
        rf.CHANNELS_KEY: ["W", "Y", "Z", "X"],
    }
    with wave.open(str(tmp_path / "fake.take.wav")) as written:
        frames, rate = written.getnframes(), written.getframerate()
    assert (sidecar[rf.FILE_KEY], sidecar[rf.NUM_FRAMES_KEY], sidecar[rf.SAMPLE_RATE_KEY]) == (
        "fake.take.wav",
        frames,
        rate,
    )


def test_fake_engine_writes_a_preview_unless_told_not_to(video: Path, tmp_path: Path) -> None:
    """As the real engine: a preview by default, named in the result's sidecar, with its own sidecar."""
    engine = FakeEngine(FakeSettings(delay_s=0.0, steps=1, seconds=0.25))
    spec = GenerateSpec(
        media=video, start=0.0, end=0.25, yaw=-30.0, pitch=20.0, direction_curve=None, guidance=2.5,
        seed=3, sample_rate=16_000, output=tmp_path / "shot.wav", extra={},
    )  # fmt: skip
    (outcome,) = engine.run_batch([spec], lambda *_: None, lambda _: False)
    assert isinstance(outcome, JobDone)
    sidecars = _sidecars(tmp_path)
    assert sorted(sidecars) == ["shot.binaural.wav.json", "shot.wav.json"]
    assert sidecars["shot.wav.json"][rf.PREVIEW_KEY] == "shot.binaural.wav"
    assert sidecars["shot.binaural.wav.json"].keys() == rf.PREVIEW_SIDECAR_KEYS
    preview = tmp_path / "shot.binaural.wav"
    with wave.open(str(tmp_path / "shot.wav")) as ambix, wave.open(str(preview)) as pair:
        assert (pair.getnchannels(), pair.getnframes()) == (2, ambix.getnframes())
        w = np.frombuffer(ambix.readframes(ambix.getnframes()), "<i2").reshape(-1, 4)[:, 0]
        lr = np.frombuffer(pair.readframes(pair.getnframes()), "<i2").reshape(-1, 2)
    # The source sits where the listener looks, so both ear cardioids (at +-90 deg) take half of W.
    assert np.abs(lr - 0.5 * w[:, None]).max() <= 1.0
    assert sidecars["shot.binaural.wav.json"][rf.NUM_FRAMES_KEY] == len(lr)


# --- the yaw interval -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaw", "wrapped"),
    [
        (180.0, -180.0),
        (-180.0, -180.0),
        (179.5, 179.5),
        (-179.5, -179.5),
        (540.0, -180.0),
        (-540.0, -180.0),
        (360.0, 0.0),
        (-360.0, 0.0),
        (190.0, -170.0),
        (-190.0, 170.0),
        (math.nextafter(180.0, 0.0), math.nextafter(180.0, 0.0)),
        (math.nextafter(-180.0, -math.inf), math.nextafter(180.0, 0.0)),  # exactly 360 more
        (-0.0, -0.0),
    ],
)
def test_wrap_yaw_on_the_boundaries(yaw: float, wrapped: float) -> None:
    assert rf.wrap_yaw(yaw) == wrapped
    assert -180.0 <= rf.wrap_yaw(yaw) < 180.0


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_wrap_yaw_is_exact_and_in_range(yaw: float) -> None:
    wrapped = rf.wrap_yaw(yaw)
    assert -180.0 <= wrapped < 180.0
    turns = (Fraction(yaw) - Fraction(wrapped)) / 360  # exact: the same direction, not a rounded one
    assert turns.denominator == 1


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_wrap_yaw_refuses_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="yaw must be finite"):
        rf.wrap_yaw(bad)


def test_every_reported_yaw_uses_the_one_interval() -> None:
    """Fails before the contract: the model and the hosts reported 180 where the wire said -180."""
    assert CameraDirection(180.0, 0.0).yaw_deg == -180.0
    assert DirectionCurve((0.0,), (540.0,), (0.0,)).yaws_deg == (-180.0,)
    request = decode_request(GENERATE, ["j", "/m.mp4", 0.0, 1.0, 180.0, 0.0, "{}", 0])
    assert isinstance(request, Generate) and request.yaw == -180.0
    assert camera.direction_angles((0.0, -1.0, 0.0)).yaw_deg == -180.0  # looking back
    assert direction_curve.build_curve([(0.0, 180.0, 0.0)])[0].yaw_deg == -180.0
    assert direction_curve.parse_direction_text("yaw=180") == (-180.0, 0.0)
    held = direction_curve.build_curve([(0.0, 170.0, 0.0), (1.0, -170.0, 0.0)])
    assert direction_curve.mean_direction(held, 0.0, 2.0)[0] == -180.0


# --- curve files ------------------------------------------------------------------------------------

_times = st.lists(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=20, unique=True
).map(sorted)
_yaws = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
_pitches = st.floats(-90.0, 90.0, allow_nan=False)


@st.composite
def curves(draw: st.DrawFn) -> rf.CurveColumns:
    times = draw(_times)
    yaws = draw(st.lists(_yaws, min_size=len(times), max_size=len(times)))
    pitches = draw(st.lists(_pitches, min_size=len(times), max_size=len(times)))
    return rf.CurveColumns(tuple(times), tuple(yaws), tuple(pitches))


@settings(max_examples=60, deadline=None)
@given(curves(), st.sampled_from(["json", "csv"]))
def test_curve_text_round_trips_exactly(curve: rf.CurveColumns, file_format: str) -> None:
    assert rf.parse_curve(rf.format_curve(curve, file_format), file_format) == curve


@settings(max_examples=20, deadline=None)
@given(curves(), st.sampled_from([".json", ".csv", ".CSV"]))
def test_curve_files_round_trip_through_the_model_and_the_hosts(
    tmp_path_factory: pytest.TempPathFactory, curve: rf.CurveColumns, suffix: str
) -> None:
    path = tmp_path_factory.mktemp("curves") / f"camera{suffix}"
    assert rf.write_curve_file(path, curve) == path
    assert rf.read_curve_file(path) == curve
    with pytest.raises(FileExistsError):
        rf.write_curve_file(path, curve)  # never replaced unless asked
    model = DirectionCurve(*curve)
    assert model.yaws_deg == tuple(rf.wrap_yaw(y) for y in curve.yaws_deg)
    samples = direction_curve.build_curve(zip(*curve, strict=True))
    written = direction_curve.write_curve(path, samples)  # the hosts replace their own curve files
    hosts = DirectionCurve(*rf.read_curve_file(written)).mean_over(curve.times_s[0], curve.times_s[-1])
    mean = model.mean_over(curve.times_s[0], curve.times_s[-1])
    # The same conditioning up to float rounding (the hosts' curve may sum in another order: 1 ulp seen).
    assert (hosts.yaw_deg - mean.yaw_deg + 180.0) % 360.0 - 180.0 == pytest.approx(0.0, abs=1e-9)
    assert hosts.pitch_deg == pytest.approx(mean.pitch_deg, rel=1e-12, abs=1e-9)


def test_curve_formats_as_documented() -> None:
    curve = rf.CurveColumns((0.0, 0.5), (10.0, -20.0), (0.0, 5.0))
    assert rf.format_curve(curve, "csv") == "time,yaw,pitch\n0.0,10.0,0.0\n0.5,-20.0,5.0\n"
    assert json.loads(rf.format_curve(curve, "json")) == {
        "time": [0.0, 0.5],
        "yaw": [10.0, -20.0],
        "pitch": [0.0, 5.0],
    }


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("c.csv", "time,yaw,pitch\n0,0,0\n0,1,0\n", r"c\.csv: line 3: time must increase strictly"),
        (
            "c.json",
            '{"time": [0], "yaw": [0], "pitch": [91]}',
            r"c\.json: index 0: pitch must lie in \[-90, 90\]",
        ),
        ("c.txt", "", r"c\.txt: direction files must end in \.json or \.csv"),
        ("absent.csv", None, r"absent\.csv: direction file not found"),
        ("c.csv", b"\xff\xfe", r"c\.csv: cannot read the direction file"),
    ],
)
def test_curve_file_errors_name_the_file_and_the_entry(
    tmp_path: Path, name: str, text: str | bytes | None, message: str
) -> None:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text)
    elif isinstance(text, bytes):
        path.write_bytes(text)
    with pytest.raises(rf.CurveError, match=message):
        rf.read_curve_file(path)
