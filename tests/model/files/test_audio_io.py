"""AmbiX WAV writing/reading: round trips, header bytes, atomicity, overwrite rules, resampling."""

from __future__ import annotations

import errno
import json
import os
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from visage.model.files import audio_io
from visage.model.files.audio_io import (
    ChannelCountError,
    ClippingWarning,
    MissingOutputFolderError,
    OutputExistsError,
    UnwritableOutputFolderError,
    fit_length,
    read_ambix,
    resample,
    sidecar_path,
    write_ambix,
)

# "fmt " chunk data of a 4-channel 48 kHz PCM_24 file: WAVE_FORMAT_EXTENSIBLE (0xFFFE), 4 channels,
# 48000 Hz, 576000 B/s, block 12, 24 bits, cbSize 22, 24 valid bits, channel mask 0 (no speaker
# positions), SubFormat KSDATAFORMAT_SUBTYPE_PCM.
GOLDEN_FMT_PCM24_48K = bytes.fromhex(
    "feff0400 80bb0000 00ca0800 0c001800 16001800 0000000001000000 00001000 800000aa 00389b71"
)
FLOAT_SUBFORMAT = bytes.fromhex("03000000 00001000 800000aa 00389b71")


def _ambix(num_samples: int, seed: int = 0, peak: float = 0.9) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-peak, peak, size=(4, num_samples)).astype(np.float32)


def _fmt_chunk(path: Path) -> bytes:
    data = path.read_bytes()
    pos = 12
    while pos < len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk_id == b"fmt ":
            return data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    raise AssertionError("no fmt chunk")


@pytest.mark.parametrize("sample_rate", [48000, 44100])
@pytest.mark.parametrize(("subtype", "atol"), [("PCM_24", 2.0**-22), ("FLOAT", 0.0)])
def test_round_trip(tmp_path: Path, sample_rate: int, subtype: audio_io.Subtype, atol: float) -> None:
    audio = _ambix(sample_rate // 10)
    written = write_ambix(tmp_path / "clip.wav", audio, sample_rate, subtype=subtype)
    assert written.num_frames == audio.shape[1] and written.sample_rate == sample_rate
    assert written.subtype == subtype and not written.clipped
    assert written.peak == pytest.approx(float(np.abs(audio).max()))
    back, rate = read_ambix(written.path)
    assert rate == sample_rate and back.dtype == np.float32 and back.shape == audio.shape
    np.testing.assert_allclose(back, audio, rtol=0, atol=atol)
    assert sf.info(str(written.path)).subtype == subtype


def test_header_is_extensible_with_no_speaker_mask(tmp_path: Path) -> None:
    write_ambix(tmp_path / "pcm.wav", _ambix(480), 48000)
    assert _fmt_chunk(tmp_path / "pcm.wav") == GOLDEN_FMT_PCM24_48K
    write_ambix(tmp_path / "float.wav", _ambix(480), 48000, subtype="FLOAT")
    fmt = _fmt_chunk(tmp_path / "float.wav")
    assert fmt[:2] == b"\xfe\xff" and fmt[20:24] == b"\0\0\0\0" and fmt[24:40] == FLOAT_SUBFORMAT


def test_ffmpeg_sees_four_unassigned_channels_not_quad(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    write_ambix(tmp_path / "clip.wav", _ambix(480), 48000)
    with av.open(str(tmp_path / "clip.wav")) as container:
        stream = container.streams.audio[0]
        assert stream.channels == 4
        assert stream.layout.name == "4 channels"  # soundfile's own WAVEX mask would read as "quad"


def test_info_comment_names_the_layout(tmp_path: Path) -> None:
    write_ambix(tmp_path / "clip.wav", _ambix(480), 48000)
    with sf.SoundFile(str(tmp_path / "clip.wav")) as f:
        assert "AmbiX" in f.comment and "W, Y, Z, X" in f.comment and "SN3D" in f.comment


def test_sidecar_holds_layout_facts_and_metadata(tmp_path: Path) -> None:
    written = write_ambix(
        tmp_path / "clip.wav", _ambix(4800), 48000, metadata={"source": "cam.mp4", "yaw_deg": 30.0}
    )
    assert written.sidecar == tmp_path / "clip.wav.json" == sidecar_path(written.path)
    assert json.loads(written.sidecar.read_text(encoding="utf-8")) == {
        "format": "AmbiX",
        "order": 1,
        "channel_order": "ACN",
        "normalization": "SN3D",
        "channels": ["W", "Y", "Z", "X"],
        "file": "clip.wav",
        "sample_rate": 48000,
        "num_frames": 4800,
        "subtype": "PCM_24",
        "source": "cam.mp4",
        "yaw_deg": 30.0,
    }


@pytest.mark.parametrize(
    ("metadata", "error"), [({"channels": ["X"]}, ValueError), ({"bad": object()}, TypeError)]
)
def test_bad_metadata_writes_nothing(tmp_path: Path, metadata: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        write_ambix(tmp_path / "clip.wav", _ambix(480), 48000, metadata=metadata)
    assert list(tmp_path.iterdir()) == []


def test_success_leaves_only_the_wav_and_sidecar(tmp_path: Path) -> None:
    write_ambix(tmp_path / "clip.wav", _ambix(480), 48000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.wav", "clip.wav.json"]


@pytest.mark.parametrize("failing_step", ["_clear_channel_mask", "write_bytes_durably"])
def test_failure_mid_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_step: str
) -> None:
    def fail(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audio_io, failing_step, fail)
    with pytest.raises(OSError, match="No space left"):
        write_ambix(tmp_path / "clip.wav", _ambix(480), 48000)
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_overwrite_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = write_ambix(tmp_path / "clip.wav", _ambix(480, seed=1), 48000)
    before = old.path.read_bytes()

    def fail(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audio_io, "_clear_channel_mask", fail)
    with pytest.raises(OSError):
        write_ambix(old.path, _ambix(480, seed=2), 48000, overwrite=True)
    assert old.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.wav", "clip.wav.json"]


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    first = write_ambix(tmp_path / "clip.wav", _ambix(480, seed=1), 48000)
    before = first.path.read_bytes()
    with pytest.raises(FileExistsError) as info:
        write_ambix(first.path, _ambix(480, seed=2), 48000)
    assert isinstance(info.value, OutputExistsError)
    assert str(first.path) in str(info.value) and "--force" in str(info.value)
    assert first.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.wav", "clip.wav.json"]


def test_refuses_when_only_the_sidecar_exists(tmp_path: Path) -> None:
    (tmp_path / "clip.wav.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="clip.wav.json"):
        write_ambix(tmp_path / "clip.wav", _ambix(480), 48000)
    assert not (tmp_path / "clip.wav").exists()


def test_overwrite_replaces_wav_and_sidecar(tmp_path: Path) -> None:
    write_ambix(tmp_path / "clip.wav", _ambix(480, seed=1), 48000, metadata={"take": 1})
    new = _ambix(960, seed=2)
    written = write_ambix(
        tmp_path / "clip.wav", new, 44100, subtype="FLOAT", overwrite=True, metadata={"take": 2}
    )
    back, rate = read_ambix(written.path)
    np.testing.assert_array_equal(back, new)
    assert rate == 44100
    assert json.loads(written.sidecar.read_text())["take"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.wav", "clip.wav.json"]


def test_file_appearing_during_the_write_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "clip.wav"
    original_write = audio_io._write_wav

    def write_then_race(*args: object) -> None:
        original_write(*args)
        target.write_bytes(b"another process got here first")

    monkeypatch.setattr(audio_io, "_write_wav", write_then_race)
    with pytest.raises(OutputExistsError):
        write_ambix(target, _ambix(480), 48000)
    assert target.read_bytes() == b"another process got here first"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.wav"]


def test_filesystem_without_hard_links_still_publishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(audio_io.os, "link", no_links)
    written = write_ambix(tmp_path / "clip.wav", _ambix(480), 48000)
    assert read_ambix(written.path).audio.shape == (4, 480)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.wav", "clip.wav.json"]
    with pytest.raises(OutputExistsError):
        write_ambix(written.path, _ambix(480), 48000)


def test_missing_folder_is_a_specific_error(tmp_path: Path) -> None:
    with pytest.raises(MissingOutputFolderError, match="does not exist"):
        write_ambix(tmp_path / "nope" / "clip.wav", _ambix(480), 48000)
    assert issubclass(MissingOutputFolderError, FileNotFoundError)


def test_unwritable_folder_is_a_specific_error(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        probe = folder / "probe"
        try:
            probe.touch()
        except PermissionError:
            pass
        else:  # root (or a filesystem that ignores modes) writes anyway: nothing to enforce
            probe.unlink()
            pytest.skip("permissions are not enforced for this user")
        with pytest.raises(UnwritableOutputFolderError, match="cannot create files"):
            write_ambix(folder / "clip.wav", _ambix(480), 48000)
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_unwritable_folder_error_from_the_os(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    # Runs even as root: the OS refusal is simulated where the temporary file is created.
    real_open = os.open

    def refuse_create(path: str, flags: int, mode: int = 0o777) -> int:
        if flags & os.O_CREAT:
            raise (PermissionError if code == errno.EACCES else OSError)(code, os.strerror(code))
        return real_open(path, flags, mode)

    monkeypatch.setattr(audio_io.os, "open", refuse_create)
    with pytest.raises(UnwritableOutputFolderError, match=str(tmp_path)):
        write_ambix(tmp_path / "clip.wav", _ambix(480), 48000)


def test_pcm_clips_and_reports_instead_of_wrapping(tmp_path: Path) -> None:
    audio = _ambix(480)
    audio[0, :3] = [1.5, -2.0, 1.0]
    with pytest.warns(ClippingWarning, match="2 samples"):
        written = write_ambix(tmp_path / "clip.wav", audio, 48000)
    assert written.clipped and written.clipped_samples == 2 and written.peak == pytest.approx(2.0)
    back = read_ambix(written.path).audio
    np.testing.assert_allclose(back[0, :3], [1.0, -1.0, 1.0], atol=2.0**-22)


def test_float_keeps_values_beyond_full_scale(tmp_path: Path) -> None:
    audio = _ambix(480)
    audio[1, 0] = 1.5
    with warnings.catch_warnings():
        warnings.simplefilter("error", ClippingWarning)
        written = write_ambix(tmp_path / "clip.wav", audio, 48000, subtype="FLOAT")
    assert not written.clipped
    assert read_ambix(written.path).audio[1, 0] == 1.5


@pytest.mark.parametrize(
    ("audio", "error"),
    [
        (np.zeros((480, 4), np.float32), ChannelCountError),  # samples-first by mistake
        (np.zeros((2, 480), np.float32), ChannelCountError),
        (np.zeros((4, 0), np.float32), ChannelCountError),
        (np.full((4, 480), np.nan, np.float32), ValueError),
    ],
)
def test_rejects_bad_audio(tmp_path: Path, audio: np.ndarray, error: type) -> None:
    with pytest.raises(error):
        write_ambix(tmp_path / "clip.wav", audio, 48000)
    assert list(tmp_path.iterdir()) == []


def test_rejects_non_wav_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.wav"):
        write_ambix(tmp_path / "clip.flac", _ambix(480), 48000)


def test_read_rejects_wrong_channel_count(tmp_path: Path) -> None:
    stereo = tmp_path / "stereo.wav"
    sf.write(str(stereo), np.zeros((480, 2), np.float32), 48000)
    with pytest.raises(ChannelCountError, match=r"stereo\.wav has 2 channel"):
        read_ambix(stereo)
    with pytest.raises(FileNotFoundError):
        read_ambix(tmp_path / "absent.wav")


@pytest.mark.parametrize(
    ("num_samples", "from_sr", "to_sr", "expected"),
    [
        (220672, 44100, 48000, 240187),
        (220500, 44100, 48000, 240000),
        (48000, 48000, 16000, 16000),
        (7, 44100, 48000, 8),
    ],
)
def test_resample_length_is_rounded_ratio(num_samples: int, from_sr: int, to_sr: int, expected: int) -> None:
    out = resample(np.zeros((4, num_samples), np.float32), from_sr, to_sr)
    assert out.shape == (4, expected) and out.dtype == np.float32


@pytest.mark.parametrize("wanted", [240000, 239999, 240500])
def test_resample_to_exact_sample_count(wanted: int) -> None:
    # A 5-s clip decodes to 431 frames · 512 = 220672 samples; the output must be exactly 5 s at 48 kHz.
    out = resample(_ambix(220672), 44100, 48000, num_samples=wanted)
    assert out.shape == (4, wanted)


def test_resample_keeps_a_sine_frequency() -> None:
    from_sr, to_sr, freq = 44100, 48000, 1000.0
    t = np.arange(from_sr) / from_sr  # 1 s
    sine = np.sin(2 * np.pi * freq * t).astype(np.float32)
    out = resample(np.stack([sine, 0.5 * sine, -sine, np.zeros_like(sine)]), from_sr, to_sr)
    spectrum = np.abs(np.fft.rfft(out[0] * np.hanning(out.shape[1])))
    peak_hz = np.argmax(spectrum) * to_sr / out.shape[1]
    assert abs(peak_hz - freq) <= 1.0
    middle = slice(to_sr // 4, 3 * to_sr // 4)  # away from the filter's edge transients
    assert np.abs(out[0, middle]).max() == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_allclose(out[1, middle], 0.5 * out[0, middle], atol=1e-6)
    assert np.abs(out[3]).max() == 0.0


def test_fit_length_trims_and_zero_pads() -> None:
    audio = _ambix(10)
    np.testing.assert_array_equal(fit_length(audio, 4), audio[:, :4])
    padded = fit_length(audio, 13)
    assert padded.shape == (4, 13)
    np.testing.assert_array_equal(padded[:, :10], audio)
    assert not padded[:, 10:].any()
