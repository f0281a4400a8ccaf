"""The generate pipeline end to end with the offline tiny-random models on videos made here."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from media_factory import make_audio_only, make_test_video

from visage.model.features.direction import CameraDirection, DirectionCurve
from visage.model.files.audio_io import OutputExistsError
from visage.model.files.video_io import VideoError
from visage.model.inference.pipeline import (
    GenerationCancelled,
    GenerationOutput,
    GenerationRequest,
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    specs = {
        "h264_25": {"codec": "h264", "fps": 25, "duration": 2.0},
        "mpeg4_23976": {"codec": "mpeg4", "fps": Fraction(24000, 1001), "duration": 2.0},
        "vp9_vfr": {"codec": "vp9", "fps": 30, "duration": 2.0, "vfr": True},
        "odd_size": {"codec": "mpeg4", "fps": 25, "duration": 1.5, "size": (317, 241)},
        "phone_rotated": {"codec": "h264", "fps": 30, "duration": 1.5, "size": (192, 108), "rotation": 90},
        "long": {"codec": "h264", "fps": 10, "duration": 12.5, "size": (64, 48)},
    }
    suffix = {"vp9_vfr": ".mkv"}
    return {
        name: make_test_video(root / f"{name}{suffix.get(name, '.mp4')}", **kw).path
        for name, kw in specs.items()
    }


def _ok(result) -> GenerationOutput:
    assert isinstance(result, GenerationOutput), result
    return result


def test_every_kind_of_video_gives_exactly_the_requested_audio(pipeline, videos, tmp_path: Path) -> None:
    cases = [
        ("h264_25", 0.0, 2.0, 48000),
        ("mpeg4_23976", 0.3, 1.9, 48000),
        ("vp9_vfr", 0.5, 2.0, 44100),
        ("odd_size", 0.0, 1.5, 48000),
        ("phone_rotated", 0.25, 1.5, 22050),
    ]
    requests = [
        GenerationRequest(
            videos[name],
            start,
            end,
            CameraDirection(30.0 * i, 5.0),
            seed=i,
            output=tmp_path / f"{name}.wav",
            sample_rate=sr,
        )
        for i, (name, start, end, sr) in enumerate(cases)
    ]
    results = pipeline.generate(requests)
    for (name, start, end, sr), result in zip(cases, results, strict=True):
        out = _ok(result)
        info = sf.info(str(tmp_path / f"{name}.wav"))
        assert (info.channels, info.samplerate, info.frames) == (4, sr, round((end - start) * sr)), name
        assert out.audio.shape == (4, info.frames) and np.isfinite(out.audio).all()
        meta = json.loads((tmp_path / f"{name}.wav.json").read_text())
        assert meta["channel_order"] == "ACN" and meta["normalization"] == "SN3D"
        assert meta["range"] == {
            "start_s": start,
            "end_s": end,
            "duration_s": end - start,
            "samples": info.frames,
        }
        assert meta["model"]["checkpoint"] == "tiny-random" and meta["sampling"]["seed"] is not None


def test_a_twelve_second_clip_goes_through_windows_and_decodes_once(pipeline, videos, monkeypatch) -> None:
    decoded = []
    original = pipeline.codec.decode
    monkeypatch.setattr(
        pipeline.codec, "decode", lambda codes, **kw: decoded.append(codes.shape) or original(codes, **kw)
    )
    (result,) = pipeline.generate([GenerationRequest(videos["long"], 0.25, 12.25, seed=3, sample_rate=48000)])
    out = _ok(result)
    assert out.metadata["windows"] == 3
    assert out.audio.shape == (4, 12 * 48000)
    assert decoded == [(1, 1034, 36)]  # the joined code stream, decoded in one piece (no seam)


def test_seed_reproduces_and_batching_does_not_change_a_result(pipeline, videos) -> None:
    base = GenerationRequest(videos["h264_25"], 0.0, 1.0, CameraDirection(10, 0), seed=7)
    other = GenerationRequest(videos["odd_size"], 0.2, 1.2, CameraDirection(-40, 10), seed=8)
    (alone,) = pipeline.generate([base])
    again, _ = pipeline.generate([base, other])
    (changed,) = pipeline.generate(
        [GenerationRequest(videos["h264_25"], 0.0, 1.0, CameraDirection(10, 0), seed=9)]
    )
    assert np.array_equal(_ok(alone).audio, _ok(again).audio)
    assert not np.array_equal(_ok(alone).audio, _ok(changed).audio)


def test_direction_curve_conditions_each_window_on_its_mean(pipeline, videos) -> None:
    curve = DirectionCurve((0.0, 6.0), (90.0, -90.0), (0.0, 20.0))
    (result,) = pipeline.generate([GenerationRequest(videos["long"], 0.0, 12.0, curve, seed=1)])
    windows = _ok(result).metadata["direction"]["per_window"]
    assert [round(w["start_s"], 3) for w in windows] == [0.0, 4.0, 8.0]
    assert windows[0]["yaw_deg"] == pytest.approx(90.0) and windows[2]["yaw_deg"] == pytest.approx(-90.0)
    assert windows[1]["yaw_deg"] == pytest.approx(-90.0)  # 4-9 s: 2 s at +90, 3 s at -90: circular mean
    assert windows[1]["pitch_deg"] == pytest.approx(12.0)


def test_bad_requests_fail_alone(pipeline, videos, tmp_path: Path) -> None:
    taken = tmp_path / "taken.wav"
    taken.write_bytes(b"keep me")
    audio_only = make_audio_only(tmp_path / "voice.wav")
    requests = [
        GenerationRequest(tmp_path / "absent.mp4", 0.0, 1.0),
        GenerationRequest(videos["h264_25"], 0.0, 1.0, output=taken),
        GenerationRequest(audio_only, 0.0, 0.5),
        GenerationRequest(videos["h264_25"], 1.5, 1.0),
        GenerationRequest(videos["h264_25"], 0.0, 9.0),
        GenerationRequest(videos["h264_25"], 0.0, 1.0, seed=1, output=tmp_path / "fine.wav"),
        GenerationRequest(videos["h264_25"], 0.0, 1.0, top_k=0),  # raised out of generate for the batch
    ]
    results = pipeline.generate(requests)
    assert isinstance(results[0], VideoError) and "absent.mp4: no such file" in str(results[0])
    assert isinstance(results[1], OutputExistsError) and taken.read_bytes() == b"keep me"
    assert isinstance(results[2], VideoError) and "no video stream" in str(results[2])
    assert isinstance(results[3], VideoError) and "must be before end" in str(results[3])
    assert isinstance(results[4], VideoError) and "beyond the end of the video at 2.000 s" in str(results[4])
    assert _ok(results[5]).written is not None and (tmp_path / "fine.wav").exists()
    assert isinstance(results[6], ValueError) and "top_k must be >= 1, got 0" in str(results[6])


def test_binaural_preview_sits_beside_the_result_and_is_named_in_its_sidecar(
    pipeline, videos, tmp_path: Path
) -> None:
    out = tmp_path / "shot.wav"
    result = _ok(
        pipeline.generate(
            [GenerationRequest(videos["h264_25"], 0.0, 1.0, seed=1, output=out, binaural_preview=True)]
        )[0]
    )
    assert result.preview is not None and result.preview.path == tmp_path / "shot.binaural.wav"
    stereo, rate = sf.read(result.preview.path)
    assert stereo.shape == (48000, 2) and rate == 48000 and np.abs(stereo).max() > 0
    sidecar = json.loads((tmp_path / "shot.wav.json").read_text())
    assert sidecar["preview"] == "shot.binaural.wav"
    preview_sidecar = json.loads((tmp_path / "shot.binaural.wav.json").read_text())
    assert preview_sidecar["listener"] == {"yaw_deg": 0.0, "pitch_deg": 0.0}
    assert sidecar["loudness"] == preview_sidecar["loudness"]  # W and the preview, in both sidecars
    assert sidecar["loudness"]["w_lufs"] < 0 and sidecar["loudness"]["binaural_lufs"] < 0
    # A second run must not replace a preview it was not asked to replace, and needs an output.
    other = tmp_path / "other.wav"
    again = GenerationRequest(videos["h264_25"], 0.0, 1.0, output=other, binaural_preview=True)
    (tmp_path / "other.binaural.wav").write_bytes(b"mine")
    no_output = GenerationRequest(videos["h264_25"], 0.0, 1.0, binaural_preview=True)
    first, second = pipeline.generate([again, no_output])
    assert isinstance(first, OutputExistsError) and (tmp_path / "other.binaural.wav").read_bytes() == b"mine"
    assert not (tmp_path / "other.wav").exists()
    assert isinstance(second, ValueError) and "needs an output" in str(second)


def test_loudness_is_recorded_and_normalised_with_one_gain(pipeline, videos, tmp_path: Path) -> None:
    from visage.model.audio.loudness import LoudnessError, measure_loudness

    plain, loud = (
        GenerationRequest(videos["h264_25"], 0.0, 1.0, seed=4, output=tmp_path / "plain.wav"),
        GenerationRequest(
            videos["h264_25"], 0.0, 1.0, seed=4, output=tmp_path / "loud.wav", loudness_target=-20.0
        ),
    )
    first, second = (_ok(r) for r in pipeline.generate([plain, loud]))
    recorded = json.loads((tmp_path / "plain.wav.json").read_text())["loudness"]
    assert recorded["w_lufs"] == pytest.approx(measure_loudness(first.audio, 48000).w_lufs, abs=0.01)
    assert recorded["binaural_lufs"] is None  # no preview asked for
    assert measure_loudness(second.audio, 48000).w_lufs == pytest.approx(-20.0, abs=0.05)
    gain = second.metadata["loudness_normalization"]["gain_db"]
    np.testing.assert_allclose(second.audio, first.audio * 10 ** (gain / 20), rtol=1e-4, atol=1e-6)
    bad = GenerationRequest(videos["h264_25"], 0.0, 1.0, loudness_target=5.0)
    assert isinstance(pipeline.generate([bad])[0], LoudnessError)


def test_cancelled_requests_write_nothing(pipeline, videos, tmp_path: Path) -> None:
    requests = [
        GenerationRequest(videos["h264_25"], 0.0, 1.0, seed=1, output=tmp_path / f"{i}.wav") for i in range(2)
    ]
    results = pipeline.generate(requests, cancelled=lambda i: i == 0)
    assert isinstance(results[0], GenerationCancelled) and not (tmp_path / "0.wav").exists()
    assert _ok(results[1]).written is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.wav", "1.wav.json"]


def test_progress_reaches_one_in_order(pipeline, videos) -> None:
    seen: list[tuple[float, str]] = []
    pipeline.generate(
        [GenerationRequest(videos["h264_25"], 0.0, 0.5, seed=1)], progress=lambda i, f, s: seen.append((f, s))
    )
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [s for _, s in seen][0] == "features" and seen[-1][1] == "write"
