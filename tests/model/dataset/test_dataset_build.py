"""Building a dataset from synthetic 360° recordings and clip tables, through the real models' code paths."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from recording_factory import BLOB_COLOR, make_recording

from visage.model.audio.carrier_codec import CarrierCodec
from visage.model.audio.codec import DacCodec, FoaCodec, build_tiny_random_dac
from visage.model.dataset.build import BuildOptions, FeatureModels, build_dataset
from visage.model.dataset.clip_selection import SelectionRules
from visage.model.dataset.direction_table import read_clip_table
from visage.model.dataset.shard_format import DatasetFormatError, Manifest, ShardReader
from visage.model.features.direction import dataset_units_to_vector
from visage.model.features.vision import ClipVisionEncoder, build_tiny_random_clip
from visage.model.files.panorama_video import write_view_clip
from visage.model.files.video_io import read_clip_frames

RULES = SelectionRules(clip_seconds=1, min_valid_seconds=0, rms_threshold_db=-40.0)
SOURCES = {
    "rec_left": (math.radians(60), math.radians(15)),
    "rec_back": (math.radians(-150), math.radians(-20)),
}


@pytest.fixture(scope="module")
def clip_encoder(tmp_path_factory: pytest.TempPathFactory) -> ClipVisionEncoder:
    return ClipVisionEncoder.from_pretrained(build_tiny_random_clip(tmp_path_factory.mktemp("clip")))


@pytest.fixture(scope="module")
def models(clip_encoder: ClipVisionEncoder) -> FeatureModels:
    return FeatureModels(clip_encoder, FoaCodec(CarrierCodec()), "tiny-random", "carrier")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("recordings")
    return [make_recording(folder / f"{name}.mp4", az, el, seconds=3) for name, (az, el) in SOURCES.items()]


def red_blob(frame: np.ndarray) -> tuple[float, float]:
    mask = (frame[..., 0] > 180) & (frame[..., 1] < 120)
    rows, cols = np.nonzero(mask)
    assert len(rows), "no blob in the view"
    return float(rows.mean()), float(cols.mean())


def test_recordings_become_clips_looking_at_their_source(
    tmp_path: Path, recordings: list[Path], models: FeatureModels
) -> None:
    report = build_dataset(
        tmp_path, models, recordings=recordings, options=BuildOptions(rules=RULES, shard_size=3)
    )
    manifest = Manifest.read(tmp_path)
    # 3-s recordings, the first second quiet: clips at seconds 1 and 2 of each.
    assert sorted(c.id for c in manifest.clips) == ["rec_back_1", "rec_back_2", "rec_left_1", "rec_left_2"]
    assert report.built == 4 and report.failures == []
    for clip in manifest.clips:
        az, el = SOURCES[clip.id.rsplit("_", 1)[0]]
        assert abs((clip.yaw_deg - math.degrees(az) + 180) % 360 - 180) <= 2
        assert clip.pitch_deg == pytest.approx(math.degrees(el), abs=2)
        assert (clip.clip_frames, clip.code_frames) == (4, 87)  # 1 s: 4 CLIP frames, ceil(44100 / 512)
        frames = read_clip_frames(tmp_path / "views" / f"{clip.id}.mp4", 0.0, 1.0).frames
        row, col = red_blob(frames[0])
        assert row == pytest.approx(111.5, abs=6) and col == pytest.approx(111.5, abs=6)
        t = ShardReader(tmp_path).read(clip)
        assert t.clip.shape == (4, 512) and t.energy.shape == (4, 49)
        torch.testing.assert_close(t.energy.sum(-1), torch.ones(4))


def test_rotated_codes_are_the_codes_of_the_rotated_field(
    tmp_path: Path, recordings: list[Path], models: FeatureModels
) -> None:
    build_dataset(
        tmp_path, models, recordings=recordings[:1], options=BuildOptions(rules=RULES, write_views=False)
    )
    clip = Manifest.read(tmp_path).clips[0]
    t = ShardReader(tmp_path).read(clip)
    codes, rotated = t.codes.long(), t.codes_rotated.long()
    top = CarrierCodec().cardinality - 1
    w, y, z, x = (slice(4 * c, 4 * c + 4) for c in range(4))  # 4 codebooks per channel
    assert torch.equal(rotated[:, w], codes[:, w]) and torch.equal(rotated[:, z], codes[:, z])
    assert torch.equal(rotated[:, x], codes[:, y])  # X' = Y
    assert torch.equal(rotated[:, y], top - codes[:, x])  # Y' = -X (mu-law codes are symmetric)
    # The stored camera turns by -90 degrees of yaw with it.
    np.testing.assert_allclose(
        clip.direction_rotated, [clip.direction[2], clip.direction[1], -clip.direction[0]], atol=1e-6
    )


def test_resume_after_an_interruption_builds_the_rest(
    tmp_path: Path, recordings: list[Path], models: FeatureModels
) -> None:
    calls = {"n": 0}

    class Interrupting:
        def __call__(self, frames: np.ndarray):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return models.vision(frames)

    broken = FeatureModels(Interrupting(), models.codec, models.clip_model, models.codec_name)  # type: ignore[arg-type]
    options = BuildOptions(rules=RULES, shard_size=1, write_views=False)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(tmp_path, broken, recordings=recordings, options=options)
    partial = Manifest.read(tmp_path)
    assert len(partial.clips) == 2
    first = ShardReader(tmp_path).read(partial.clips[0])
    report = build_dataset(tmp_path, models, recordings=recordings, options=options)
    assert (report.built, report.already_done) == (2, 2)
    manifest = Manifest.read(tmp_path)
    assert len({c.id for c in manifest.clips}) == 4 and len({c.shard for c in manifest.clips}) == 4
    assert torch.equal(ShardReader(tmp_path).read(manifest.clips[0]).codes, first.codes)
    again = build_dataset(tmp_path, models, recordings=recordings, options=options)
    assert (again.built, again.already_done) == (0, 4)


def test_broken_and_missing_recordings_are_reported_and_skipped(
    tmp_path: Path, recordings: list[Path], models: FeatureModels
) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    stereo = sources / "stereo.mp4"
    stereo.write_bytes(b"not a video")
    sf.write(str(sources / "stereo.wav"), np.zeros((16000, 2), np.float32), 16000)
    garbage = sources / "garbage.mp4"
    garbage.write_bytes(b"\x00" * 100)
    out = tmp_path / "ds"
    report = build_dataset(
        out,
        models,
        recordings=[stereo, recordings[0], garbage, sources / "missing.mp4"],
        options=BuildOptions(rules=RULES, write_views=False),
    )
    assert report.built == 2
    errors = {Path(f.source).name: f.error for f in report.failures}
    assert "2 channel(s)" in errors["stereo.mp4"]
    assert "garbage.mp4" in errors["garbage.mp4"]
    assert "no such recording" in errors["missing.mp4"]
    assert json.loads((out / "manifest.json").read_text())["failures"] == [
        {"source": f.source, "clip": f.clip, "error": f.error} for f in report.failures
    ]


def test_fuma_tracks_are_converted(tmp_path: Path, models: FeatureModels) -> None:
    path = make_recording(tmp_path / "fuma.mp4", math.radians(-70), math.radians(30), seconds=2, fuma=True)
    out = tmp_path / "ds"
    build_dataset(
        out, models, recordings=[path], options=BuildOptions(rules=RULES, fuma=True, write_views=False)
    )
    (clip,) = Manifest.read(out).clips
    assert clip.yaw_deg == pytest.approx(-70, abs=2) and clip.pitch_deg == pytest.approx(30, abs=2)


def test_a_dataset_with_other_settings_is_not_extended(
    tmp_path: Path, recordings: list[Path], models: FeatureModels
) -> None:
    build_dataset(
        tmp_path, models, recordings=recordings[:1], options=BuildOptions(rules=RULES, write_views=False)
    )
    other = BuildOptions(rules=SelectionRules(clip_seconds=2, min_valid_seconds=0), write_views=False)
    with pytest.raises(DatasetFormatError, match="built with"):
        build_dataset(tmp_path, models, recordings=recordings[:1], options=other)


def write_fov_clip(folder: Path, clip_id: str, seconds: int = 1, channels: int = 4) -> None:
    frames = np.zeros((4 * seconds, 224, 224, 3), np.uint8)
    frames[:, 80:140, 90:150] = BLOB_COLOR
    write_view_clip(folder / f"{clip_id}.mp4", frames)
    audio = 0.1 * np.random.default_rng(0).standard_normal((48000 * seconds, channels))
    sf.write(str(folder / f"{clip_id}.wav"), audio.astype(np.float32), 48000)


def test_a_clip_table_with_a_direction_file(tmp_path: Path, models: FeatureModels) -> None:
    for clip_id in ("c1", "c2"):
        write_fov_clip(tmp_path, clip_id)
    write_fov_clip(tmp_path, "c3", channels=2)
    (tmp_path / "ambi.json").write_text(
        json.dumps({"c1": [20, 100], "c2": [45, 10], "c3": [0, 0], "c4": [1, 1]})
    )
    (tmp_path / "clips.csv").write_text("id,split\nc1,train\nc2,val\nc3,train\nc4,train\n")
    rows = read_clip_table(tmp_path / "clips.csv", tmp_path / "ambi.json")
    out = tmp_path / "ds"
    report = build_dataset(
        out, models, table=rows, options=BuildOptions(rules=SelectionRules(clip_seconds=5))
    )
    manifest = Manifest.read(out)
    assert [c.id for c in manifest.clips] == ["c1", "c2"] and [c.split for c in manifest.clips] == [
        "train",
        "val",
    ]
    np.testing.assert_array_equal(manifest.clips[0].direction, dataset_units_to_vector(20, 100))
    np.testing.assert_array_equal(
        manifest.clips[1].direction_rotated, dataset_units_to_vector(45, 10, augment=True)
    )
    assert manifest.clips[0].duration_s == 1.0  # the audio is shorter than clip_seconds
    failed = {f.clip: f.error for f in report.failures}
    assert "2 channel(s)" in failed["c3"] and "c4" in failed


def test_the_dac_codec_path(tmp_path: Path, clip_encoder: ClipVisionEncoder) -> None:
    write_fov_clip(tmp_path, "c1")
    (tmp_path / "clips.csv").write_text("id,yaw,pitch\nc1,30,0\n")
    codec = FoaCodec(DacCodec.load(build_tiny_random_dac(tmp_path / "dac.pth")))
    out = tmp_path / "ds"
    models = FeatureModels(clip_encoder, codec, "tiny-random", f"dac:{tmp_path / 'dac.pth'}")
    build_dataset(
        out, models, table=read_clip_table(tmp_path / "clips.csv"), options=BuildOptions(write_views=False)
    )
    (clip,) = Manifest.read(out).clips
    t = ShardReader(out).read(clip)
    assert t.codes.shape == (87, 36) and int(t.codes.max()) < 1024
