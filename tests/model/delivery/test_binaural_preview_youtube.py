"""Binaural previews through YouTube's decoder: the renderer option, other rates, another filter folder."""

from __future__ import annotations

import importlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from visage.model.audio.ambisonics import encode_mono
from visage.model.audio.binaural import BinauralError
from visage.model.audio.youtube_filters import FILTER_NAMES, SHIPPED_FILTERS
from visage.model.cli import build_parser
from visage.model.delivery.binaural_preview import (
    PREVIEW_RENDERERS,
    load_decoder,
    write_binaural_preview,
)
from visage.model.files.audio_io import write_ambix

RATE = 48_000


def _response_db(taps: np.ndarray, rate: int, freqs: np.ndarray) -> np.ndarray:
    """|H(f)| in dB by the DTFT sum, at the given frequencies."""
    k = np.arange(taps.shape[-1])
    kernel = np.exp(-2j * np.pi * np.outer(freqs, k) / rate)  # [F, K]
    return 20 * np.log10(np.abs(taps @ kernel.T) + 1e-12)


def test_filters_resampled_to_44_1_khz_keep_their_response() -> None:
    native, resampled = load_decoder(48_000, renderer="youtube"), load_decoder(44_100, renderer="youtube")
    assert resampled.sample_rate == 44_100
    freqs = np.geomspace(100.0, 18_000.0, 40)
    for channel in range(4):
        expected = _response_db(native.filters[channel, 0], 48_000, freqs)
        got = _response_db(resampled.filters[channel, 0], 44_100, freqs)
        loud = expected > expected.max() - 30  # deep notches move a little; compare where there is sound
        assert np.abs(got - expected)[loud].max() < 0.5, channel


def _result(folder: Path, azimuth_deg: float = 90.0) -> Path:
    noise = np.random.default_rng(3).standard_normal(RATE // 2).astype(np.float32) * 0.1
    path = folder / "result.wav"
    write_ambix(path, encode_mono(noise, math.radians(azimuth_deg), 0.0), RATE)
    return path


def _ild_db(path: Path) -> float:
    stereo, _ = sf.read(str(path), always_2d=True)
    return 10 * math.log10(np.mean(stereo[:, 0] ** 2) / np.mean(stereo[:, 1] ** 2))


def test_youtube_preview_of_a_source_on_the_left_is_louder_on_the_left(tmp_path) -> None:
    written = write_binaural_preview(_result(tmp_path), renderer="youtube")
    assert _ild_db(written.path) > 6.0
    sidecar = json.loads(written.sidecar.read_text())
    assert "YouTube" in sidecar["hrtf"] and str(SHIPPED_FILTERS) in sidecar["hrtf"]


def test_a_filter_folder_replaces_the_shipped_filters(tmp_path) -> None:
    """W's filter alone (the others silent) gives both ears the same signal: the folder was used."""
    folder = tmp_path / "filters"
    folder.mkdir()
    shutil.copy(SHIPPED_FILTERS / FILTER_NAMES[0], folder / FILTER_NAMES[0])
    for name in FILTER_NAMES[1:]:
        sf.write(str(folder / name), np.zeros(256), RATE, subtype="PCM_16")
    written = write_binaural_preview(_result(tmp_path), renderer="youtube", youtube_filters=folder)
    assert abs(_ild_db(written.path)) < 1e-3
    assert str(folder.resolve()) in json.loads(written.sidecar.read_text())["hrtf"]


def test_options_of_the_other_renderer_are_refused_before_any_work(tmp_path) -> None:
    result = _result(tmp_path)
    with pytest.raises(ValueError, match="preview renderer must be one of spherical-head, youtube"):
        write_binaural_preview(result, renderer="ku100")
    with pytest.raises(ValueError, match="SOFA"):
        write_binaural_preview(result, renderer="youtube", sofa=tmp_path / "head.sofa")
    with pytest.raises(ValueError, match="only used by the youtube renderer"):
        write_binaural_preview(result, youtube_filters=tmp_path)
    with pytest.raises(BinauralError, match="missing"):
        write_binaural_preview(result, renderer="youtube", youtube_filters=tmp_path)
    assert not (tmp_path / "result.binaural.wav").exists()


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    args = build_parser().parse_args(list(argv))
    module, func = args._run
    code = getattr(importlib.import_module(module), func)(args)
    captured = capsys.readouterr()
    return code, captured.out.strip(), captured.err.strip()


def test_visage_binaural_renderer_youtube(tmp_path, capsys) -> None:
    result = _result(tmp_path)
    code, out, err = _run(capsys, "binaural", str(result), "--renderer", "youtube")
    assert (code, err) == (0, "") and "binaural through YouTube's decoder" in out
    assert _ild_db(tmp_path / "result.binaural.wav") > 6.0
    other = str(tmp_path / "x.wav")
    code, _, err = _run(capsys, "binaural", str(result), "-o", other, "--youtube-filters", "/")
    assert code == 1 and err.startswith("visage binaural: error: ") and "youtube renderer" in err


def test_the_command_offers_the_preview_renderers_the_default_first() -> None:
    parser = build_parser()
    assert parser.parse_args(["binaural", "r.wav"]).renderer == PREVIEW_RENDERERS[0]
    for renderer in PREVIEW_RENDERERS:
        assert parser.parse_args(["binaural", "r.wav", "--renderer", renderer]).renderer == renderer


def test_the_daemon_refuses_an_unknown_renderer_and_passes_a_known_one_on() -> None:
    from visage.bridge.errors import ErrorCode, RequestError
    from visage.bridge.osc_protocol import PREVIEW_RENDERERS as BRIDGE_RENDERERS
    from visage.bridge.osc_protocol import parse_options

    assert BRIDGE_RENDERERS == PREVIEW_RENDERERS  # the bridge's copy (it may not import the model)
    assert parse_options('{"preview_renderer": "youtube"}').extra == {"preview_renderer": "youtube"}
    with pytest.raises(RequestError, match="preview_renderer' must be spherical-head or youtube") as err:
        parse_options('{"preview_renderer": "thrive"}')
    assert err.value.code == ErrorCode.BAD_OPTIONS


def test_a_job_option_chooses_the_renderer_and_generate_offers_it() -> None:
    from visage.model.inference.job_request import BadOption, JobOptions, job_request

    options = JobOptions.from_json({"binaural_preview": True, "preview_renderer": "youtube"})
    assert job_request(Path("/clip.mp4"), output=None, options=options).preview_renderer == "youtube"
    assert job_request(Path("/clip.mp4"), output=None).preview_renderer == "spherical-head"
    with pytest.raises(BadOption, match="preview_renderer must be spherical-head or youtube, got 'ku100'"):
        job_request(Path("/clip.mp4"), output=None, options=JobOptions(preview_renderer="ku100"))
    with pytest.raises(BadOption, match="preview_renderer must be a str"):
        JobOptions.from_json({"preview_renderer": 1})
    args = build_parser().parse_args(["generate", "clip.mp4", "-o", "x.wav", "--preview-renderer", "youtube"])
    assert args.preview_renderer == "youtube"


def test_a_generated_preview_is_the_youtube_render_of_the_result(pipeline, tmp_path) -> None:
    from media_factory import make_test_video

    from visage.model.inference.job_request import JobOptions, job_request

    clip = make_test_video(tmp_path / "clip.mp4", duration=1.0, size=(96, 64)).path
    options = JobOptions(binaural_preview=True, preview_renderer="youtube")
    request = job_request(clip, output=tmp_path / "out.wav", seed=2, options=options)
    (result,) = pipeline.generate([request])
    assert not isinstance(result, Exception), result
    preview, rate = sf.read(str(tmp_path / "out.binaural.wav"), always_2d=True)  # [N, 2]
    sidecar = json.loads((tmp_path / "out.binaural.wav.json").read_text())
    assert "YouTube" in sidecar["hrtf"]
    filters = np.stack([sf.read(str(SHIPPED_FILTERS / name))[0] for name in FILTER_NAMES])  # [4, 256]
    n = result.audio.shape[1]
    audio = result.audio.astype(np.float64)
    left = sum(np.convolve(audio[c], filters[c])[:n] for c in range(4))
    right = sum(np.convolve(-audio[c] if c == 1 else audio[c], filters[c])[:n] for c in range(4))
    expected = np.stack([left, right], axis=1) * 10 ** (sidecar["gain_db"] / 20)
    np.testing.assert_allclose(preview, expected, atol=2e-4)
