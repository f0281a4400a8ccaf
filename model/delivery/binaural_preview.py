"""Binaural preview files: a stereo WAV for headphones next to an AmbiX result, with a JSON sidecar.

Why: the one thing a user can judge a result by on a laptop (``hosts_and_formats.md`` Summary 2).
``visage binaural`` calls ``write_binaural_preview``; the pipeline and the daemon can call it after
writing a result.

By default the listener faces the camera direction recorded in the result's sidecar, so what the
camera sees is heard in front, as a viewer of the clip would; without one the listener faces the
front of the sound field (yaw 0, pitch 0). The preview is 24-bit PCM at the result's rate; if the
render would clip, it is scaled down as a whole (the gain is recorded).

Two renderers (``PREVIEW_RENDERERS``): ``spherical-head``, the project's own virtual-loudspeaker decode
(or measured HRTFs from a SOFA file), and ``youtube``, the first-order binaural decoder YouTube plays
360° videos through (``visage.model.audio.youtube_binaural``; its 48 kHz filters are resampled to the
result's rate with soxr, their gain kept).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf

from visage.model.audio.binaural import (
    BinauralDecoder,
    binaural_decoder,
    cube_layout,
    hrtfs_from_hrirs,
    render_binaural,
    spherical_head_hrtfs,
)
from visage.model.audio.loudness import Loudness, measure_loudness_if_possible
from visage.model.audio.sofa import read_sofa
from visage.model.audio.youtube_binaural import symmetric_decoder
from visage.model.audio.youtube_filters import DESCRIPTION as YOUTUBE_DECODER
from visage.model.audio.youtube_filters import SHIPPED_FILTERS, read_youtube_filters
from visage.model.features.direction import CameraDirection
from visage.model.files import result_files as rf
from visage.model.files.audio_io import read_ambix, resample
from visage.model.files.output_files import atomic_output, check_new_output
from visage.model.files.result_files import preview_path as preview_path
from visage.model.files.result_files import sidecar_path

from .result_context import read_result_context

ANALYTIC_HRTF = "spherical head (Brown-Duda shadow, Woodworth delay, rear pinna shelf)"
SPHERICAL_HEAD, YOUTUBE = "spherical-head", "youtube"
PREVIEW_RENDERERS = (SPHERICAL_HEAD, YOUTUBE)  # the first is the default
_PEAK_LIMIT = 10 ** (-0.1 / 20)  # -0.1 dBFS


@dataclass(frozen=True)
class WrittenPreview:
    """What ``write_binaural_preview`` wrote.

    Attributes:
        path: the stereo WAV.
        sidecar: its JSON sidecar.
        sample_rate: in Hz.
        num_frames: samples per channel (the result's length).
        listener: the direction the listener faces.
        hrtf: the renderer's description (analytic head, SOFA file's path, YouTube's decoder).
        gain_db: gain applied to avoid clipping (0 or negative).
        loudness: of the result's W channel and of the preview; None without pyloudnorm.
    """

    path: Path
    sidecar: Path
    sample_rate: int
    num_frames: int
    listener: CameraDirection
    hrtf: str
    gain_db: float
    loudness: Loudness | None


def load_decoder(
    sample_rate: int,
    sofa: str | os.PathLike[str] | None = None,
    *,
    renderer: str = SPHERICAL_HEAD,
    youtube_filters: str | os.PathLike[str] | None = None,
) -> BinauralDecoder:
    """Binaural filters at ``sample_rate``: the analytic head, a SOFA file's HRIRs, or YouTube's decoder.

    Args:
        sample_rate: of the audio to render, in Hz; measured filters are resampled to it.
        sofa: a SimpleFreeFieldHRIR file (spherical-head renderer only).
        renderer: one of ``PREVIEW_RENDERERS``.
        youtube_filters: folder of ``binaural_decoder_{0..3}.wav`` (youtube renderer; default: shipped).

    Raises:
        ValueError: an unknown renderer, or options of the other renderer.
        SofaError, BinauralError: unusable SOFA or filter files; ModuleNotFoundError without h5py.
    """
    check_renderer(renderer, sofa=sofa, youtube_filters=youtube_filters)
    if renderer == YOUTUBE:
        return youtube_decoder(sample_rate, youtube_filters)
    if sofa is None:
        return binaural_decoder(spherical_head_hrtfs(*cube_layout(), sample_rate))
    hrirs = read_sofa(Path(sofa))
    impulses = hrirs.hrirs
    if hrirs.sample_rate != sample_rate:
        m, ears, taps = impulses.shape
        impulses = resample(impulses.reshape(m * ears, taps), hrirs.sample_rate, sample_rate).reshape(
            m, ears, -1
        )
    return binaural_decoder(hrtfs_from_hrirs(impulses, hrirs.azimuths, hrirs.elevations, sample_rate))


def check_renderer(
    renderer: str,
    *,
    sofa: str | os.PathLike[str] | None = None,
    youtube_filters: str | os.PathLike[str] | None = None,
) -> None:
    """Refuse an unknown renderer, or a SOFA file / filter folder given to the renderer that ignores it."""
    if renderer not in PREVIEW_RENDERERS:
        raise ValueError(f"preview renderer must be one of {', '.join(PREVIEW_RENDERERS)}, got {renderer!r}")
    if sofa is not None and renderer != SPHERICAL_HEAD:
        raise ValueError(f"a SOFA file replaces the {SPHERICAL_HEAD} renderer's HRTFs, not {renderer}'s")
    if youtube_filters is not None and renderer != YOUTUBE:
        raise ValueError(f"YouTube decoder filters are only used by the {YOUTUBE} renderer, not {renderer}")


def youtube_decoder(sample_rate: int, folder: str | os.PathLike[str] | None = None) -> BinauralDecoder:
    """YouTube's decoder at ``sample_rate``: its filters resampled with soxr when the rates differ.

    A resampled impulse response is scaled by ``from / to`` so the filter's gain (Σ taps at 0 Hz, and
    its whole response below the lower Nyquist) stays the same.
    """
    read = read_youtube_filters(folder)
    filters = read.filters
    if read.sample_rate != sample_rate:
        filters = resample(filters, read.sample_rate, sample_rate) * (read.sample_rate / sample_rate)
    return symmetric_decoder(filters, sample_rate)


def renderer_description(
    renderer: str,
    sofa: str | os.PathLike[str] | None = None,
    youtube_filters: str | os.PathLike[str] | None = None,
) -> str:
    """The preview sidecar's ``hrtf``: the analytic head, a SOFA file or YouTube's decoder."""
    if renderer == YOUTUBE:
        folder = Path(youtube_filters).resolve() if youtube_filters is not None else SHIPPED_FILTERS
        return f"{YOUTUBE_DECODER}, filters from {folder}"
    return ANALYTIC_HRTF if sofa is None else str(Path(sofa).resolve())


def render_preview(
    foa: npt.ArrayLike, decoder: BinauralDecoder, listener: CameraDirection
) -> tuple[npt.NDArray[np.float32], float]:
    """Render ``[4, N]`` AmbiX for a listener facing ``listener``; scale it down if it would clip.

    Returns:
        ``[2, N]`` float32 (left, right) and the gain applied in dB (0 or negative).
    """
    stereo = render_binaural(
        foa, decoder, yaw=math.radians(listener.yaw_deg), pitch=math.radians(listener.pitch_deg)
    )
    peak = float(np.abs(stereo).max())
    if peak <= _PEAK_LIMIT:
        return stereo, 0.0
    return (stereo * np.float32(_PEAK_LIMIT / peak)).astype(np.float32), 20 * math.log10(_PEAK_LIMIT / peak)


@dataclass(frozen=True)
class RenderedPreview:
    """A binaural preview rendered in memory, before it is written.

    Attributes:
        stereo: ``[2, N]`` float32, left and right.
        sample_rate: in Hz.
        listener: the direction the listener faces.
        hrtf: the renderer's description (analytic head, SOFA file's path, YouTube's decoder).
        gain_db: gain applied to avoid clipping (0 or negative).
        loudness: of the AmbiX W channel and of the preview; None without pyloudnorm.
    """

    stereo: npt.NDArray[np.float32]
    sample_rate: int
    listener: CameraDirection
    hrtf: str
    gain_db: float
    loudness: Loudness | None


def render_binaural_preview(
    foa: npt.ArrayLike,
    sample_rate: int,
    listener: CameraDirection,
    *,
    sofa: str | os.PathLike[str] | None = None,
    renderer: str = SPHERICAL_HEAD,
    youtube_filters: str | os.PathLike[str] | None = None,
) -> RenderedPreview:
    """Render ``[4, N]`` AmbiX for a listener facing ``listener`` and meter both signals.

    Raises:
        ValueError: an unknown renderer, or options of the other renderer.
        SofaError, BinauralError, ModuleNotFoundError: the SOFA file or filter folder cannot be used.
    """
    decoder = load_decoder(sample_rate, sofa, renderer=renderer, youtube_filters=youtube_filters)
    stereo, gain_db = render_preview(foa, decoder, listener)
    loudness = measure_loudness_if_possible(foa, sample_rate, stereo)
    hrtf = renderer_description(renderer, sofa, youtube_filters)
    return RenderedPreview(stereo, sample_rate, listener, hrtf, gain_db, loudness)


def check_preview_output(
    path: str | os.PathLike[str], result_wav: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Fail before any work if the preview (or its sidecar) could not be written at ``path``.

    Raises:
        ValueError: ``path`` is not a .wav file, or is the result itself.
        OutputExistsError, MissingOutputFolderError, UnwritableOutputFolderError: as for AmbiX output.
    """
    preview = Path(path)
    check_new_output(preview, suffixes=(".wav",), overwrite=overwrite, companions=(sidecar_path(preview),))
    if preview.resolve() == Path(result_wav).resolve():
        raise ValueError(f"{preview}: the preview would replace the result it is made from")
    return preview


def write_preview_file(
    path: str | os.PathLike[str],
    rendered: RenderedPreview,
    result_wav: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> WrittenPreview:
    """Write a rendered preview as a 24-bit stereo WAV with a ``.wav.json`` sidecar, atomically."""
    path = Path(path)
    sidecar = sidecar_path(path)
    stereo, listener = rendered.stereo, rendered.listener
    facts: dict[str, Any] = {
        rf.FORMAT_KEY: "binaural",
        rf.CHANNELS_KEY: ["left", "right"],
        rf.FILE_KEY: path.name,
        rf.SOURCE_KEY: str(Path(result_wav).resolve()),
        rf.SAMPLE_RATE_KEY: rendered.sample_rate,
        rf.NUM_FRAMES_KEY: int(stereo.shape[1]),
        rf.LISTENER_KEY: {rf.DIRECTION_YAW_KEY: listener.yaw_deg, rf.DIRECTION_PITCH_KEY: listener.pitch_deg},
        rf.HRTF_KEY: rendered.hrtf,
        rf.GAIN_DB_KEY: round(rendered.gain_db, 3),
        rf.LOUDNESS_KEY: None if rendered.loudness is None else rendered.loudness.as_metadata(),
    }
    with (
        atomic_output(path, overwrite=overwrite) as tmp_wav,
        atomic_output(sidecar, overwrite=overwrite) as tmp_json,
    ):
        sf.write(
            str(tmp_wav), np.ascontiguousarray(stereo.T), rendered.sample_rate, subtype="PCM_24", format="WAV"
        )  # [N, 2]
        tmp_json.write_text(json.dumps(facts, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return WrittenPreview(
        path,
        sidecar,
        rendered.sample_rate,
        int(stereo.shape[1]),
        listener,
        rendered.hrtf,
        rendered.gain_db,
        rendered.loudness,
    )


def write_binaural_preview(
    result_wav: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    listener: CameraDirection | None = None,
    sofa: str | os.PathLike[str] | None = None,
    renderer: str = SPHERICAL_HEAD,
    youtube_filters: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> WrittenPreview:
    """Render an AmbiX result file to a binaural preview WAV (+ ``.wav.json`` sidecar), atomically.

    Args:
        result_wav: the 4-channel AmbiX WAV.
        output: the stereo WAV to write (default ``preview_path(result_wav)``).
        listener: direction the listener faces (default: the camera in the result's sidecar, else 0, 0).
        sofa: a SimpleFreeFieldHRIR SOFA file to use instead of the analytic head.
        renderer: one of ``PREVIEW_RENDERERS`` (default the spherical head).
        youtube_filters: folder of YouTube's decoder filters (default the shipped copies).
        overwrite: replace existing files.

    Returns:
        What was written.

    Raises:
        FileNotFoundError, ChannelCountError: the result cannot be read as AmbiX.
        OutputExistsError: the preview or its sidecar exists and ``overwrite`` is false.
        ValueError: an unknown renderer, or options of the other renderer.
        SofaError, BinauralError, ModuleNotFoundError: the SOFA file or filter folder cannot be used.
    """
    check_renderer(renderer, sofa=sofa, youtube_filters=youtube_filters)
    result_wav = Path(result_wav)
    path = check_preview_output(output or preview_path(result_wav), result_wav, overwrite=overwrite)
    foa, sample_rate = read_ambix(result_wav)
    listener = listener or read_result_context(result_wav).camera or CameraDirection(0.0, 0.0)
    rendered = render_binaural_preview(
        foa, sample_rate, listener, sofa=sofa, renderer=renderer, youtube_filters=youtube_filters
    )
    return write_preview_file(path, rendered, result_wav, overwrite=overwrite)
