"""AmbiX WAV files: the only place that writes or reads result audio, plus resampling to a file's rate.

Files are first-order AmbiX: 4 channels W, Y, Z, X (ACN order) with SN3D normalisation, the layout
YouTube, IEM/SPARTA and REAPER ambisonic workflows expect (``hosts_and_formats.md`` §6.1, Summary 1).

Header choice. A 4-channel or 24-bit WAV should use WAVE_FORMAT_EXTENSIBLE (Microsoft, "Multiple
channel audio data and WAVE files"; FFmpeg's WAV muxer does so for anything over 16 bits), whose
``dwChannelMask`` assigns channels to loudspeakers. AmbiX channels are spherical-harmonic signals, not
speaker feeds, so the mask must be 0 ("no speaker positions"), as the AMB B-format specification
requires for every B-format file (R. Dobson, "WAVE-FORMAT-EXTENSIBLE and B-Format audio"). soundfile's
``WAVEX`` writes the mask 0x33 (FL FR BL BR, "quad"), which FFmpeg and PyAV then report as ``quad``
and a host may route to quad speakers; soundfile has no API for the mask, so we write WAVEX and set
the 4-byte mask to 0 in place (layout in :func:`_clear_channel_mask`). The SubFormat stays the plain
PCM / IEEE-float GUID: the AMB B-format GUIDs would announce FuMa order and weighting, which is wrong
for AmbiX. Readers then see "4 channels" with no layout; REAPER and the IEM plug-ins only need the
channel count, and Resolve users place the file on an ``adaptive4`` track (§2.4).

Every write is atomic (temporary file in the target folder, then a rename), never replaces an existing
file unless asked, and leaves a JSON sidecar ``<name>.wav.json`` describing the channel layout, because
a WAV has no standard field that says "AmbiX" (the LIST/INFO comment carries a one-line summary too).
"""

from __future__ import annotations

import json
import os
import struct
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

# The errors write_ambix raises, importable from here too.
from .output_files import MissingOutputFolderError as MissingOutputFolderError
from .output_files import (
    OutputExistsError,
    check_folder,
    check_writable,
    fsync_file,
    fsync_folder,
    publish,
    reserve_temp,
    write_bytes_durably,
)
from .output_files import UnwritableOutputFolderError as UnwritableOutputFolderError
from .result_files import AMBIX_LAYOUT as AMBIX_LAYOUT
from .result_files import FILE_KEY, NUM_FRAMES_KEY, SAMPLE_RATE_KEY, SUBTYPE_KEY
from .result_files import sidecar_path as sidecar_path

AMBIX_CHANNELS = 4

_INFO_COMMENT = "AmbiX first-order ambisonics: ACN channel order W, Y, Z, X; SN3D normalisation"
_SOFTWARE = "visage"
_RESAMPLE_QUALITY = "VHQ"  # soxr's 28-bit setting: keeps resampling error below 24-bit PCM resolution

Subtype = Literal["PCM_24", "FLOAT"]
_SUBTYPES: tuple[str, ...] = ("PCM_24", "FLOAT")


class ChannelCountError(ValueError):
    """Audio that should be 4-channel AmbiX has another shape or channel count."""


class ClippingWarning(UserWarning):
    """Samples outside [-1, 1] were clipped to fit an integer PCM file."""


@dataclass(frozen=True)
class WrittenAudio:
    """What :func:`write_ambix` wrote.

    Attributes:
        path: the WAV file.
        sidecar: the JSON sidecar next to it.
        sample_rate: in Hz.
        num_frames: samples per channel.
        subtype: "PCM_24" or "FLOAT".
        peak: largest absolute sample value before any clipping.
        clipped_samples: samples clipped to [-1, 1] (always 0 for FLOAT, which stores them as they are).
    """

    path: Path
    sidecar: Path
    sample_rate: int
    num_frames: int
    subtype: Subtype
    peak: float
    clipped_samples: int

    @property
    def clipped(self) -> bool:
        """Whether any sample had to be clipped."""
        return self.clipped_samples > 0


class AmbixAudio(NamedTuple):
    """Audio read by :func:`read_ambix`."""

    audio: np.ndarray  # [4, N] float32, W Y Z X
    sample_rate: int


def check_output_path(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Fail early, before any work, if :func:`write_ambix` could not write ``path``.

    Checks the suffix, that the folder exists and accepts new files (by creating and removing a
    temporary file), and that neither the WAV nor its sidecar exists unless ``overwrite``.

    Raises:
        ValueError, MissingOutputFolderError, UnwritableOutputFolderError, OutputExistsError.
    """
    path = Path(path)
    if path.suffix.lower() != ".wav":
        raise ValueError(f"{path}: AmbiX output must be a .wav file")
    return check_writable(path, overwrite=overwrite, companions=(sidecar_path(path),))


def write_ambix(
    path: str | os.PathLike[str],
    audio: npt.ArrayLike,
    sample_rate: int,
    *,
    subtype: Subtype = "PCM_24",
    overwrite: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> WrittenAudio:
    """Write 4-channel AmbiX audio as a WAV with a JSON sidecar, atomically.

    Args:
        path: destination ``.wav`` file; its folder must exist.
        audio: ``[4, N]`` float samples, channels W, Y, Z, X (a NumPy array or a CPU tensor).
        sample_rate: in Hz.
        subtype: "PCM_24" (integer, what editors import everywhere) or "FLOAT" (32-bit float, lossless
            for any level).
        overwrite: replace existing files instead of raising :class:`OutputExistsError`.
        metadata: extra JSON-serialisable keys for the sidecar (e.g. source clip, direction, seed); they
            may not reuse the sidecar's own keys.

    Returns:
        A :class:`WrittenAudio`. For PCM, samples outside [-1, 1] are clipped (never wrapped), counted
        in ``clipped_samples``, and reported with a :class:`ClippingWarning`.

    Raises:
        ChannelCountError: ``audio`` is not ``[4, N]`` with N > 0.
        ValueError: non-finite samples, a bad sample rate, subtype or suffix, or clashing metadata keys.
        OutputExistsError: the WAV or its sidecar exists and ``overwrite`` is false.
        MissingOutputFolderError: the folder does not exist.
        UnwritableOutputFolderError: files cannot be created in the folder.
    """
    path = Path(path)
    samples = _as_ambix_array(audio)
    if path.suffix.lower() != ".wav":
        raise ValueError(f"{path}: AmbiX output must be a .wav file")
    if subtype not in _SUBTYPES:
        raise ValueError(f"subtype must be one of {_SUBTYPES}, got {subtype!r}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not np.isfinite(samples).all():
        raise ValueError("audio contains NaN or infinite samples")

    peak = float(np.abs(samples).max())
    clipped_samples = 0
    if subtype != "FLOAT":
        clipped_samples = int(np.count_nonzero(np.abs(samples) > 1.0))
        if clipped_samples:
            warnings.warn(
                ClippingWarning(
                    f"{path}: {clipped_samples} samples exceed [-1, 1] (peak {peak:.3f}) and were clipped; "
                    "write FLOAT or lower the gain to keep them"
                ),
                stacklevel=2,
            )
            samples = np.clip(samples, -1.0, 1.0)

    sidecar = sidecar_path(path)
    sidecar_bytes = _sidecar_json(path, sample_rate, samples.shape[1], subtype, metadata)
    check_folder(path.parent)
    if not overwrite:
        for existing in (path, sidecar):
            if existing.exists():
                raise OutputExistsError(existing)

    tmp_wav = reserve_temp(path)
    try:
        _write_wav(tmp_wav, samples, sample_rate, subtype)
        tmp_sidecar = reserve_temp(sidecar)
        try:
            write_bytes_durably(tmp_sidecar, sidecar_bytes)
            publish(tmp_wav, path, overwrite=overwrite)
            publish(tmp_sidecar, sidecar, overwrite=overwrite)
            fsync_folder(path.parent)
        finally:
            tmp_sidecar.unlink(missing_ok=True)
    finally:
        tmp_wav.unlink(missing_ok=True)
    return WrittenAudio(path, sidecar, sample_rate, samples.shape[1], subtype, peak, clipped_samples)


def read_ambix(path: str | os.PathLike[str]) -> AmbixAudio:
    """Read a 4-channel audio file as ``[4, N]`` float32 (any format soundfile reads).

    Raises:
        FileNotFoundError: no such file.
        ChannelCountError: the file does not have 4 channels.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such audio file: {path}")
    channels = sf.info(str(path)).channels
    if channels != AMBIX_CHANNELS:
        raise ChannelCountError(
            f"{path} has {channels} channel(s); first-order AmbiX needs {AMBIX_CHANNELS} (W, Y, Z, X)"
        )
    data, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)  # [N, C]
    return AmbixAudio(np.ascontiguousarray(data.T), int(sample_rate))


def resample(audio: npt.ArrayLike, from_sr: int, to_sr: int, *, num_samples: int | None = None) -> np.ndarray:
    """Resample ``[C, N]`` audio with soxr at very high quality.

    Args:
        audio: ``[C, N]`` samples.
        from_sr: current rate in Hz.
        to_sr: wanted rate in Hz.
        num_samples: if given, the output is trimmed or zero-padded at the end to exactly this many
            samples, so that a clip comes out at exactly the requested duration.

    Returns:
        ``[C, N']`` float32, with ``N' = round(N · to_sr / from_sr)`` unless ``num_samples`` is given.
    """
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 2:
        raise ValueError(f"expected audio [C, N], got shape {samples.shape}")
    if from_sr <= 0 or to_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {from_sr} and {to_sr}")
    out = soxr.resample(samples.T, from_sr, to_sr, quality=_RESAMPLE_QUALITY).T  # [C, N']
    out = np.ascontiguousarray(out)
    return out if num_samples is None else fit_length(out, num_samples)


def fit_length(audio: npt.ArrayLike, num_samples: int) -> np.ndarray:
    """Trim or zero-pad ``[C, N]`` audio at the end to ``[C, num_samples]`` (float32)."""
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 2 or num_samples < 0:
        raise ValueError(f"expected audio [C, N] and num_samples >= 0, got {samples.shape}, {num_samples}")
    if samples.shape[1] >= num_samples:
        return np.ascontiguousarray(samples[:, :num_samples])
    return np.pad(samples, ((0, 0), (0, num_samples - samples.shape[1])))


def _as_ambix_array(audio: npt.ArrayLike) -> np.ndarray:
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 2 or samples.shape[0] != AMBIX_CHANNELS or samples.shape[1] == 0:
        raise ChannelCountError(
            f"expected AmbiX audio [{AMBIX_CHANNELS}, N] (channels first, N > 0), got shape {samples.shape}"
        )
    return samples


def _sidecar_json(
    path: Path, sample_rate: int, num_frames: int, subtype: str, metadata: Mapping[str, Any] | None
) -> bytes:
    """Serialise the sidecar before anything touches the disk, so bad metadata leaves no files."""
    facts = {
        **AMBIX_LAYOUT,
        FILE_KEY: path.name,
        SAMPLE_RATE_KEY: sample_rate,
        NUM_FRAMES_KEY: num_frames,
        SUBTYPE_KEY: subtype,
    }
    extra = dict(metadata or {})
    clashes = sorted(facts.keys() & extra.keys())
    if clashes:
        raise ValueError(f"metadata may not redefine the sidecar's own keys: {clashes}")
    return (json.dumps({**facts, **extra}, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _write_wav(path: Path, samples: np.ndarray, sample_rate: int, subtype: str) -> None:
    with sf.SoundFile(path, "w", sample_rate, AMBIX_CHANNELS, subtype=subtype, format="WAVEX") as f:
        f.comment = _INFO_COMMENT  # LIST/INFO ICMT, shown by most editors' file info
        f.software = _SOFTWARE
        f.write(np.ascontiguousarray(samples.T))  # [N, C]
    _clear_channel_mask(path)
    fsync_file(path)


def _clear_channel_mask(path: Path) -> None:
    """Set a WAVE_FORMAT_EXTENSIBLE header's ``dwChannelMask`` to 0 (no speaker positions), in place.

    RIFF layout, little-endian: ``"RIFF" <u32 size> "WAVE"``, then chunks ``<4-byte id> <u32 size>
    <data, padded to an even length>``. The data of an extensible ``"fmt "`` chunk (40 bytes) is
    wFormatTag u16 = 0xFFFE @0, nChannels u16 @2, nSamplesPerSec u32 @4, nAvgBytesPerSec u32 @8,
    nBlockAlign u16 @12, wBitsPerSample u16 @14, cbSize u16 = 22 @16, wValidBitsPerSample u16 @18,
    **dwChannelMask u32 @20**, SubFormat GUID @24.
    """
    with open(path, "r+b") as f:
        riff = f.read(12)
        if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
            raise RuntimeError(f"{path}: not a RIFF/WAVE file")
        while header := f.read(8):
            chunk_id, size = header[:4], struct.unpack("<I", header[4:8])[0]
            if chunk_id == b"fmt ":
                fmt = f.read(size)
                if size < 40 or fmt[0:2] != b"\xfe\xff" or fmt[16:18] != b"\x16\x00":  # tag, cbSize 22
                    raise RuntimeError(f"{path}: expected a WAVE_FORMAT_EXTENSIBLE fmt chunk")
                f.seek(20 - size, os.SEEK_CUR)
                f.write(struct.pack("<I", 0))
                return
            f.seek(size + (size & 1), os.SEEK_CUR)
    raise RuntimeError(f"{path}: no fmt chunk")
