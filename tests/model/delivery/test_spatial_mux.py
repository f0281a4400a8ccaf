"""Publishing: the SA3D box round-trips, the audio decodes back, the video is copied bit for bit."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from media_factory import make_test_video

from visage.model.delivery.spatial_mux import MuxError, mux_spatial_audio, read_spatial_audio
from visage.model.files.audio_io import ChannelCountError, OutputExistsError, write_ambix
from visage.model.files.mp4_boxes import (
    BoxError,
    insert_bytes,
    iter_boxes,
    read_box_header,
    shift_chunk_offsets,
    sound_sample_entries,
)
from visage.model.files.sa3d import (
    SpatialAudio,
    SpatialAudioError,
    ambix_foa,
    build_sa3d,
    insert_sa3d,
    parse_sa3d,
    read_sa3d,
)

RATE = 48_000
# The box FFmpeg's MP4 muxer writes for stream metadata SA3D="ambisonic 1" (captured with PyAV 18.1):
# size 36, "SA3D", version 0, type 0, order 1, ACN 0, SN3D 0, 4 channels, map 0 1 2 3.
FOA_SA3D = bytes.fromhex(
    "00000024 53413344 00 00 00000001 00 00 00000004 00000000 00000001 00000002 00000003"
)
# Head-locked stereo: type byte 0x80, 6 channels, map 0..5 (FFmpeg's layout "ambisonic 1+stereo").
FOA_HL_SA3D = bytes.fromhex(
    "0000002c 53413344 00 80 00000001 00 00 00000006 00000000 00000001 00000002 00000003 00000004 00000005"
)


def test_sa3d_bytes_match_ffmpeg() -> None:
    assert build_sa3d(ambix_foa()) == FOA_SA3D
    assert build_sa3d(ambix_foa(head_locked_stereo=True)) == FOA_HL_SA3D


@pytest.mark.parametrize("order", [0, 1, 2, 3])
@pytest.mark.parametrize("head_locked", [False, True])
def test_sa3d_round_trip(order: int, head_locked: bool) -> None:
    channels = (order + 1) ** 2 + 2 * head_locked
    spatial = SpatialAudio(
        ambisonic_order=order, head_locked_stereo=head_locked, channel_map=tuple(reversed(range(channels)))
    )
    assert parse_sa3d(build_sa3d(spatial)) == spatial


def test_malformed_sa3d_is_refused() -> None:
    with pytest.raises(SpatialAudioError, match="needs 4 channels"):
        build_sa3d(SpatialAudio(channel_map=(0, 1, 2)))
    with pytest.raises(SpatialAudioError, match="expected an SA3D box"):
        parse_sa3d(b"\x00\x00\x00\x08free")
    with pytest.raises(SpatialAudioError, match="declares 4 channels"):
        parse_sa3d(struct.pack(">I", 32) + FOA_SA3D[4:32])
    with pytest.raises(SpatialAudioError, match="version 3"):
        parse_sa3d(FOA_SA3D[:8] + b"\x03" + FOA_SA3D[9:])


def test_box_headers() -> None:
    large = struct.pack(">I4sQ", 1, b"mdat", 20) + b"1234"
    assert read_box_header(large, 0, 20) == (b"mdat", 0, 16, 20)
    assert [b.size for b in iter_boxes(b"\x00\x00\x00\x00free" + bytes(8))] == [16]  # size 0: to the end
    with pytest.raises(BoxError, match="overruns"):
        list(iter_boxes(b"\x00\x00\x00\x20free" + bytes(8)))
    with pytest.raises(BoxError, match="truncated"):
        list(iter_boxes(b"\x00\x00\x00"))


def _box(box_type: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), box_type) + payload


def _moov(offsets: list[int]) -> bytes:
    """A minimal audio track: moov/trak/mdia/{hdlr soun, minf/stbl/{stsd/sowt, stco}}."""
    sowt = _box(b"sowt", bytes(6) + struct.pack(">H", 1) + bytes(8) + struct.pack(">HH", 4, 16) + bytes(8))
    stsd = _box(b"stsd", struct.pack(">II", 0, 1) + sowt)
    stco = _box(b"stco", struct.pack(f">II{len(offsets)}I", 0, len(offsets), *offsets))
    hdlr = _box(b"hdlr", bytes(4) + b"mhlr" + b"soun" + bytes(12))
    mdia = _box(b"mdia", hdlr + _box(b"minf", _box(b"stbl", stsd + stco)))
    return _box(b"moov", _box(b"trak", mdia))


def test_insertion_grows_every_parent_and_moves_later_chunks() -> None:
    moov = _moov([100, 5000, 9000])
    new = insert_sa3d(moov, ambix_foa(), moov_offset=1000)
    assert len(new) == len(moov) + len(FOA_SA3D)
    (top,) = iter_boxes(new)
    assert top.size == len(new)  # and iter_boxes checked every level on the way down below
    ((ancestors, entry),) = sound_sample_entries(new)
    assert [b.type for b in ancestors] == [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"]
    assert entry.type == b"sowt" and new[entry.end - len(FOA_SA3D) : entry.end] == FOA_SA3D
    assert read_sa3d(new) == [ambix_foa()]
    stco = new.index(b"stco")
    assert struct.unpack_from(">3I", new, stco + 12) == (100, 5036, 9036)  # data before moov stays
    with pytest.raises(SpatialAudioError, match="already carries"):
        insert_sa3d(new, ambix_foa(), 1000)
    with pytest.raises(SpatialAudioError, match="has 4 channels"):
        insert_sa3d(moov, ambix_foa(head_locked_stereo=True), 1000)


def test_64_bit_offsets_move_too() -> None:
    co64 = _box(b"co64", struct.pack(">IIQQ", 0, 2, 10, 2**33))
    moov = _box(b"moov", _box(b"trak", _box(b"mdia", _box(b"minf", _box(b"stbl", co64)))))
    shifted = shift_chunk_offsets(moov, 7, from_offset=20)
    assert struct.unpack_from(">QQ", shifted, shifted.index(b"co64") + 12) == (10, 2**33 + 7)
    with pytest.raises(BoxError, match="not inside"):
        insert_bytes(moov, list(iter_boxes(moov)), len(moov) + 1, b"x")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_test_video(tmp_path_factory.mktemp("mux") / "clip.mp4", duration=2.0).path


def _tones(seconds: float, freqs=(300, 500, 700, 900), amplitude: float = 0.2) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return np.stack([amplitude * np.sin(2 * np.pi * f * t) for f in freqs]).astype(np.float32)


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mux") / "result.wav"
    write_ambix(path, _tones(1.5), RATE)
    return path


def _video_packets(path: Path) -> list[tuple[bytes, float, float]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            (bytes(p), float(p.pts * p.time_base), float(p.dts * p.time_base))
            for p in container.demux(stream)
            if p.dts is not None
        ]


def _decoded_audio(path: Path) -> tuple[np.ndarray, str]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        layout = stream.codec_context.layout.name
        chunks = [frame.to_ndarray().astype(np.float64) for frame in container.decode(stream)]
        planar = stream.codec_context.format.is_planar
        channels = stream.codec_context.layout.nb_channels
        scale = 2.0**31 if stream.codec_context.format.name == "s32" else 1.0
    audio = np.concatenate(chunks, axis=1)
    if not planar:
        audio = audio.reshape(-1, channels).T
    return audio / scale, layout


def _top_level(path: Path) -> list[bytes]:
    with open(path, "rb") as f:
        return [b.type for b in iter_boxes(f.read())]


def test_mov_pcm_keeps_every_sample_and_every_video_packet(clip, result, tmp_path) -> None:
    out = tmp_path / "published.mov"
    muxed = mux_spatial_audio(clip, result, out, start_s=0.25)
    assert (muxed.codec, muxed.channels, muxed.sample_rate, muxed.video_packets) == ("pcm", 4, RATE, 50)
    assert read_spatial_audio(out) == [ambix_foa()]
    top = _top_level(out)
    assert top.index(b"moov") < top.index(b"mdat")  # faststart: chunk offsets were shifted
    assert _video_packets(out) == _video_packets(clip)
    audio, layout = _decoded_audio(out)
    # we write no loudspeaker labels; FFmpeg's demuxer reads our SA3D box and calls the track ambisonic
    assert layout == "ambisonic 1"
    source = sf.read(str(result), dtype="float64", always_2d=True)[0].T
    offset = round(0.25 * RATE)
    assert audio.shape == (4, 2 * RATE)  # the track spans the whole video
    np.testing.assert_array_equal(audio[:, offset : offset + source.shape[1]], source)
    assert not audio[:, :offset].any() and not audio[:, offset + source.shape[1] :].any()


@pytest.mark.parametrize(
    ("suffix", "codec", "layout"),
    [(".mp4", "aac", "quad"), (".mov", "aac", "quad"), (".mp4", "opus", "ambisonic 1")],
)
def test_lossy_tracks_keep_the_channel_order(clip, result, tmp_path, suffix, codec, layout) -> None:
    out = tmp_path / f"published{suffix}"
    mux_spatial_audio(clip, result, out, codec=codec, start_s=0.0)
    assert read_spatial_audio(out) == [ambix_foa()]
    assert _video_packets(out) == _video_packets(clip)
    audio, read_layout = _decoded_audio(out)
    assert read_layout == layout
    spectrum = np.abs(np.fft.rfft(audio[:, 4800 : 4800 + RATE], axis=1))  # 1 s: 1 Hz bins
    assert list(np.argmax(spectrum, axis=1)) == [300, 500, 700, 900]


def test_head_locked_stereo_becomes_channels_5_and_6(clip, result, tmp_path) -> None:
    stereo = tmp_path / "music.wav"
    sf.write(str(stereo), _tones(1.0, (1100, 1300)).T, RATE, subtype="PCM_24")
    out = tmp_path / "with_music.mov"
    muxed = mux_spatial_audio(clip, result, out, head_locked=stereo, start_s=0.0)
    assert muxed.channels == 6
    assert read_spatial_audio(out) == [ambix_foa(head_locked_stereo=True)]
    audio, layout = _decoded_audio(out)
    assert layout == "ambisonic 1+stereo"  # FFmpeg reads the head-locked bit too
    np.testing.assert_array_equal(audio[4:, :RATE], sf.read(str(stereo), dtype="float64")[0].T)
    assert not audio[4:, RATE:].any()


def test_start_defaults_to_the_recorded_range(clip, tmp_path) -> None:
    wav = tmp_path / "late.wav"
    write_ambix(wav, _tones(0.5), RATE, metadata={"range": {"start_s": 1.0, "end_s": 1.5}})
    muxed = mux_spatial_audio(clip, wav, tmp_path / "late.mov")
    assert muxed.start_s == 1.0
    audio, _ = _decoded_audio(muxed.path)
    assert not audio[:, : RATE - 1].any() and audio[:, RATE : RATE + 100].any()


def test_loudness_target_scales_all_channels(clip, result, tmp_path) -> None:
    pytest.importorskip("pyloudnorm")
    from visage.model.audio.loudness import integrated_loudness

    muxed = mux_spatial_audio(clip, result, tmp_path / "loud.mov", start_s=0.0, target_lufs=-30.0)
    audio, _ = _decoded_audio(muxed.path)
    assert integrated_loudness(audio[0, : int(1.5 * RATE)], RATE) == pytest.approx(-30.0, abs=0.05)
    source = sf.read(str(result), dtype="float64", always_2d=True)[0].T
    gain = 10 ** (muxed.gain_db / 20)
    np.testing.assert_allclose(audio[:, : source.shape[1]], source * gain, atol=2e-7)
    with pytest.raises(MuxError, match="would clip"):
        mux_spatial_audio(clip, result, tmp_path / "too_loud.mov", start_s=0.0, target_lufs=0.0)


def test_audio_longer_than_the_video_is_refused(clip, result, tmp_path) -> None:
    with pytest.raises(MuxError, match=r"runs 0\.7\d\d s past the end of the video \(2\.000 s\)"):
        mux_spatial_audio(clip, result, tmp_path / "o.mov", start_s=1.25)
    with pytest.raises(MuxError, match="outside the video"):
        mux_spatial_audio(clip, result, tmp_path / "o.mov", start_s=2.5)
    assert not (tmp_path / "o.mov").exists() and not list(tmp_path.iterdir())


def test_up_to_one_frame_of_overrun_is_trimmed(clip, tmp_path) -> None:
    wav = tmp_path / "long.wav"
    write_ambix(wav, _tones(2.0 + 0.03), RATE)  # 30 ms over a 25 fps video: less than a frame
    muxed = mux_spatial_audio(clip, wav, tmp_path / "trim.mov", start_s=0.0)
    assert muxed.audio_s == pytest.approx(2.0)


def test_bad_inputs_fail_with_reasons(clip, result, tmp_path) -> None:
    with pytest.raises(MuxError, match="unknown container '.mkv'"):
        mux_spatial_audio(clip, result, tmp_path / "out.mkv")
    with pytest.raises(MuxError, match="pcm audio cannot go in .mp4"):
        mux_spatial_audio(clip, result, tmp_path / "out.mp4", codec="pcm")
    with pytest.raises(MuxError, match="opus audio cannot go in .mov"):
        mux_spatial_audio(clip, result, tmp_path / "out.mov", codec="opus")
    stereo = tmp_path / "stereo.wav"
    sf.write(str(stereo), np.zeros((RATE, 2)), RATE)
    with pytest.raises(ChannelCountError, match="2 channel"):
        mux_spatial_audio(clip, stereo, tmp_path / "out.mov")
    with pytest.raises(MuxError, match="head-locked audio must be stereo"):
        mux_spatial_audio(clip, result, tmp_path / "out.mov", head_locked=result)
    with pytest.raises(MuxError, match="replace one of its inputs"):
        mux_spatial_audio(clip, result, clip.with_suffix(".mp4"))
    existing = tmp_path / "exists.mov"
    existing.write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        mux_spatial_audio(clip, result, existing)
    assert existing.read_bytes() == b"keep"
    assert mux_spatial_audio(clip, result, existing, overwrite=True).spatial == ambix_foa()


def test_we_read_the_box_ffmpeg_writes(tmp_path) -> None:
    """FFmpeg's own SA3D writer (MP4 only, in recent FFmpeg) and our reader agree; the other way round
    is checked by the decoded layouts above (FFmpeg's demuxer reads our box)."""
    path = tmp_path / "ffmpeg.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=RATE, layout="quad")
        stream.metadata["SA3D"] = "ambisonic 1"
        frame = av.AudioFrame.from_ndarray(_tones(0.1), format="fltp", layout="quad")
        frame.sample_rate, frame.pts = RATE, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    if b"SA3D" not in path.read_bytes():
        pytest.skip("this FFmpeg does not write SA3D itself")
    assert read_spatial_audio(path) == [ambix_foa()]


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe is not installed")
def test_ffprobe_sees_the_spatial_track(clip, result, tmp_path) -> None:
    out = tmp_path / "probe.mov"
    mux_spatial_audio(clip, result, out, start_s=0.0)
    report = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(out)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    streams = sorted((s["codec_type"], s.get("channels")) for s in report["streams"])
    assert streams == [("audio", 4), ("video", None)]


@pytest.mark.parametrize("suffix", [".mov", ".mp4"])
def test_matroska_packets_without_a_dts_are_kept(result, tmp_path, suffix) -> None:
    # Matroska stores no DTS: with B-frames FFmpeg's demuxer gives the first packets (the keyframe
    # among them) none, and every one of them belongs in the output.
    mkv = make_test_video(tmp_path / "bframes.mkv", duration=2.0, size=(64, 32)).path
    with av.open(str(mkv)) as container:
        source = [(bytes(p), p.is_keyframe, p.dts) for p in container.demux() if p.size]
    assert source[0][1:] == (True, None)  # the case under test
    out = tmp_path / f"published{suffix}"
    muxed = mux_spatial_audio(mkv, result, out, start_s=0.0)
    assert muxed.video_packets == len(source) == 50
    with av.open(str(out)) as container:
        written = [(bytes(p), p.is_keyframe) for p in container.demux(container.streams.video[0]) if p.size]
    assert written == [(data, key) for data, key, _ in source]
