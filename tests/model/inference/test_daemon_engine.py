"""The real engine behind the daemon: tiny-random models, a live loopback daemon, the bridge client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf
from bridge_fixtures import address_of, fake_settings, quick_timing, verify_no_leaks  # noqa: F401
from media_factory import make_test_video

from visage.bridge.client import JobFailed, VisageClient
from visage.bridge.daemon import Daemon
from visage.bridge.engine import GenerateSpec, JobDone
from visage.bridge.engine import JobFailed as EngineJobFailed
from visage.model.inference.daemon_engine import VisageEngine, create_engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> VisageEngine:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VISAGE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return create_engine("tiny-random", "cpu")


@pytest.fixture
def video(tmp_path: Path) -> Path:
    (tmp_path / "media").mkdir()
    return make_test_video(tmp_path / "media" / "clip.mp4", duration=2.0).path


@pytest.fixture
def client(tmp_path: Path, engine: VisageEngine) -> Iterator[VisageClient]:
    with (
        Daemon(fake_settings(tmp_path, model="tiny-random"), engine) as daemon,
        VisageClient(address_of(daemon)) as c,
    ):
        yield c


def _spec(video: Path, out: Path, **extra: object) -> GenerateSpec:
    return GenerateSpec(video, 0.0, 1.0, 20.0, 0.0, None, 2.5, 1, 48000, out, extra)


def test_engine_outcomes(engine: VisageEngine, video: Path, tmp_path: Path) -> None:
    specs = [
        _spec(video, tmp_path / "a.wav"),
        _spec(video, tmp_path / "b.wav", guidance_mode="loud"),
        GenerateSpec(video, 0.0, 9.0, 0.0, 0.0, None, 2.5, 1, 48000, tmp_path / "c.wav"),
        _spec(video, tmp_path / "d.wav", format="float", top_k=64),
        _spec(video, tmp_path / "e.wav", colour="blue"),
    ]
    seen = []
    outcomes = engine.run_batch(specs, lambda i, f, s: seen.append(i), lambda i: False)
    assert isinstance(outcomes[0], JobDone) and sf.info(str(outcomes[0].output)).channels == 4
    assert isinstance(outcomes[1], EngineJobFailed) and outcomes[1].code == "bad_options"
    assert isinstance(outcomes[2], EngineJobFailed) and outcomes[2].code == "bad_range"
    assert isinstance(outcomes[3], JobDone) and sf.info(str(outcomes[3].output)).subtype == "FLOAT"
    assert outcomes[4].code == "bad_options" and "colour" in outcomes[4].message  # type: ignore[union-attr]
    assert set(seen) == {0, 3}  # progress is reported in the batch's own indices
    meta = json.loads(outcomes[0].metadata.read_text())  # type: ignore[union-attr]
    assert meta["request"]["daemon_model_id"] == engine.model_id == "tiny-random"


def test_bad_sampling_options_fail_only_their_job(engine: VisageEngine, video: Path, tmp_path: Path) -> None:
    # top_k 0 and temperature 0 used to raise out of run_batch: every job of the batch failed with it.
    specs = [
        _spec(video, tmp_path / "k.wav", top_k=0),
        _spec(video, tmp_path / "t.wav", temperature=0.0),
        _spec(video, tmp_path / "ok.wav", binaural_preview=False),
    ]
    top_k, temperature, ok = engine.run_batch(specs, lambda *a: None, lambda i: False)
    assert isinstance(top_k, EngineJobFailed) and top_k.code == "bad_options"
    assert "top_k must be >= 1, got 0" in top_k.message
    assert isinstance(temperature, EngineJobFailed) and temperature.code == "bad_options"
    assert "temperature must be > 0" in temperature.message
    assert isinstance(ok, JobDone) and not (tmp_path / "k.wav").exists()


def test_an_unreadable_direction_curve_fails_only_its_job(
    engine: VisageEngine, video: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "pan.json"
    folder.mkdir()  # reading it is an OSError, not a bad curve
    specs = [
        GenerateSpec(video, 0.0, 1.0, 0.0, 0.0, folder, 2.5, 1, 48000, tmp_path / "curve.wav"),
        _spec(video, tmp_path / "ok.wav", binaural_preview=False),
    ]
    assert engine.batch_key(specs[0]) != engine.batch_key(specs[1])
    curve, ok = engine.run_batch(specs, lambda *a: None, lambda i: False)
    assert isinstance(curve, EngineJobFailed) and curve.code == "bad_direction"
    assert curve.message.startswith(f"{folder}: cannot read the direction file")
    assert isinstance(ok, JobDone)


def test_engine_writes_a_binaural_preview_unless_told_not_to(
    engine: VisageEngine, video: Path, tmp_path: Path
) -> None:
    specs = [
        _spec(video, tmp_path / "with.wav"),
        _spec(video, tmp_path / "without.wav", binaural_preview=False),
        _spec(video, tmp_path / "bad.wav", binaural_preview="yes"),
    ]
    with_preview, without, bad = engine.run_batch(specs, lambda *a: None, lambda i: False)
    assert isinstance(with_preview, JobDone) and isinstance(without, JobDone)
    assert json.loads(with_preview.metadata.read_text())["preview"] == "with.binaural.wav"
    assert sf.info(str(tmp_path / "with.binaural.wav")).channels == 2
    assert "preview" not in json.loads(without.metadata.read_text())
    assert not (tmp_path / "without.binaural.wav").exists()
    assert isinstance(bad, EngineJobFailed) and bad.code == "bad_options"
    assert "binaural_preview" in bad.message


def test_engine_cancellation(engine: VisageEngine, video: Path, tmp_path: Path) -> None:
    outcomes = engine.run_batch([_spec(video, tmp_path / "x.wav")], lambda *a: None, lambda i: True)
    assert outcomes[0].code == "cancelled" and not (tmp_path / "x.wav").exists()  # type: ignore[union-attr]


def test_daemon_with_the_real_pipeline(client: VisageClient, video: Path, tmp_path: Path) -> None:
    assert client.ping().model_id == "tiny-random"
    done = client.generate(video, yaw=30.0, pitch=5.0, end=1.5, output=tmp_path / "out.wav", seed=3)
    info = sf.info(done.output)
    assert (info.channels, info.samplerate, info.frames) == (4, 48000, 72000)
    again = client.generate(video, yaw=30.0, pitch=5.0, end=1.5, output=tmp_path / "again.wav", seed=3)
    assert again.cached
    # The cached answer brings its own copy of the preview, named in its own sidecar.
    sidecar = json.loads(Path(again.metadata).read_text())
    assert sidecar["file"] == "again.wav" and sidecar["preview"] == "again.binaural.wav"
    assert (tmp_path / "again.binaural.wav").read_bytes() == (tmp_path / "out.binaural.wav").read_bytes()
    preview_sidecar = json.loads((tmp_path / "again.binaural.wav.json").read_text())
    assert preview_sidecar["file"] == "again.binaural.wav"
    assert preview_sidecar["source"] == str((tmp_path / "again.wav").resolve())
    # A job whose preview would replace a file of the user's is refused when it is submitted.
    (tmp_path / "mine.binaural.wav").write_bytes(b"mine")
    with pytest.raises(JobFailed) as refused:
        client.generate(video, yaw=0.0, pitch=0.0, end=1.0, output=tmp_path / "mine.wav")
    assert refused.value.code == "output_exists" and "mine.binaural.wav" in refused.value.message
    assert (tmp_path / "mine.binaural.wav").read_bytes() == b"mine"
    with pytest.raises(JobFailed) as failed:
        client.generate(video, yaw=0.0, pitch=0.0, start=1.0, end=5.0, output=tmp_path / "long.wav")
    assert failed.value.code == "bad_range" and "beyond the end of the video" in failed.value.message
