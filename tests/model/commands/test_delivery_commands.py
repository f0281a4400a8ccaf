"""`visage binaural|viz|mux` through argparse: successes print what was written, failures one line."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from media_factory import make_test_video

from visage.model.audio.ambisonics import encode_mono
from visage.model.cli import build_parser
from visage.model.delivery.spatial_mux import read_spatial_audio
from visage.model.files.audio_io import write_ambix

RATE = 48_000


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    args = build_parser().parse_args(list(argv))  # the stages as `visage` registers them
    module, func = args._run
    code = getattr(importlib.import_module(module), func)(args)
    captured = capsys.readouterr()
    return code, captured.out.strip(), captured.err.strip()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_test_video(tmp_path_factory.mktemp("cmd") / "clip.mp4", duration=1.0, size=(96, 64)).path


def _result(folder: Path, *, yaw_deg: float | None = None, seconds: float = 1.0) -> Path:
    """A result with a source 90° to the left, and the camera recorded in its sidecar if given."""
    noise = np.random.default_rng(3).standard_normal(int(RATE * seconds)).astype(np.float32) * 0.1
    path = folder / "result.wav"
    metadata = {"direction": {"yaw_deg": yaw_deg, "pitch_deg": 0.0}} if yaw_deg is not None else None
    write_ambix(path, encode_mono(noise, math.radians(90), 0.0), RATE, metadata=metadata)
    return path


def _ild_db(path: Path) -> float:
    stereo, _ = sf.read(str(path), always_2d=True)
    return 10 * math.log10(np.mean(stereo[:, 0] ** 2) / np.mean(stereo[:, 1] ** 2))


def test_binaural_writes_a_preview_next_to_the_result(tmp_path, capsys) -> None:
    result = _result(tmp_path)
    code, out, err = _run(capsys, "binaural", str(result))
    assert code == 0, err
    preview = tmp_path / "result.binaural.wav"
    assert out.startswith(f"wrote {preview} (1.000 s, 48000 Hz, binaural, listener yaw 0 pitch 0")
    info = sf.info(str(preview))
    assert (info.channels, info.samplerate, info.frames, info.subtype) == (2, RATE, RATE, "PCM_24")
    assert _ild_db(preview) > 8.0  # the source on the left is louder in the left ear
    sidecar = json.loads(Path(str(preview) + ".json").read_text())
    assert sidecar["format"] == "binaural" and sidecar["listener"] == {"yaw_deg": 0.0, "pitch_deg": 0.0}
    if sidecar["loudness"] is not None:  # pyloudnorm installed; white noise at -20 dBFS RMS, K-weighted
        assert -20 < sidecar["loudness"]["w_lufs"] < -14 and sidecar["loudness"]["binaural_lufs"] is not None


def test_binaural_listener_faces_the_recorded_camera_unless_told(tmp_path, capsys) -> None:
    result = _result(tmp_path, yaw_deg=90.0)
    assert _run(capsys, "binaural", str(result), "-o", str(tmp_path / "cam.wav"))[0] == 0
    assert abs(_ild_db(tmp_path / "cam.wav")) < 0.1  # facing the camera, which faces the source
    code, out, _ = _run(capsys, "binaural", str(result), "-o", str(tmp_path / "front.wav"), "--yaw", "0")
    assert code == 0 and "listener yaw 0 pitch 0" in out
    assert _ild_db(tmp_path / "front.wav") > 8.0


def test_binaural_errors_are_one_line(tmp_path, capsys) -> None:
    stereo = tmp_path / "stereo.wav"
    sf.write(str(stereo), np.zeros((RATE, 2)), RATE)
    code, out, err = _run(capsys, "binaural", str(stereo), "-o", str(tmp_path / "x.wav"))
    assert (code, out) == (1, "") and err.startswith("visage binaural: error: ") and "\n" not in err
    assert "2 channel(s)" in err
    result = _result(tmp_path)
    assert _run(capsys, "binaural", str(result))[0] == 0
    code, _, err = _run(capsys, "binaural", str(result))
    assert code == 1 and "already exists; pass --force" in err
    assert _run(capsys, "binaural", str(result), "--force")[0] == 0
    code, _, err = _run(capsys, "binaural", str(result), "--sofa", str(tmp_path / "none.sofa"), "--force")
    assert code == 1 and "no such SOFA file" in err
    code, _, err = _run(capsys, "binaural", str(result), "--pitch", "120", "--force")
    assert code == 1 and "pitch_deg must lie in [-90, 90]" in err


def test_viz_writes_a_still_and_a_movie(clip, tmp_path, capsys) -> None:
    result = _result(tmp_path, yaw_deg=60.0)
    code, out, err = _run(capsys, "viz", str(result), "--video", str(clip), "-o", str(tmp_path / "m.png"))
    assert code == 0, err
    assert (
        out
        == f"wrote {tmp_path / 'm.png'} (1 still, 96x64, camera yaw 60 pitch 0, result at 0 s of the video)"
    )
    code, out, err = _run(
        capsys,
        "viz",
        str(result),
        "--video",
        str(clip),
        "-o",
        str(tmp_path / "m.mp4"),
        "--panorama",
        "--width",
        "128",
    )
    assert code == 0, err
    assert "25 frames at 25 fps, 128x64" in out


def test_viz_errors_are_one_line(clip, tmp_path, capsys) -> None:
    result = _result(tmp_path)
    code, _, err = _run(capsys, "viz", str(result), "--video", str(clip), "-o", str(tmp_path / "m.gif"))
    assert code == 1 and err.startswith("visage viz: error: ") and "unknown output type '.gif'" in err
    code, _, err = _run(
        capsys, "viz", str(result), "--video", str(tmp_path / "none.mp4"), "-o", str(tmp_path / "m.png")
    )
    assert code == 1 and "no such file" in err
    code, _, err = _run(
        capsys, "viz", str(result), "--video", str(clip), "-o", str(tmp_path / "m.mp4"), "--at", "0.5"
    )
    assert code == 1 and "--at" in err


def test_mux_publishes_and_refuses_what_it_cannot(clip, tmp_path, capsys) -> None:
    result = _result(tmp_path)
    out_path = tmp_path / "published.mov"
    code, out, err = _run(capsys, "mux", str(clip), str(result), "-o", str(out_path))
    assert code == 0, err
    assert "pcm 4 ch 48000 Hz FOA, SA3D ACN/SN3D order 1" in out and "25 packets" in out
    assert len(read_spatial_audio(out_path)) == 1
    code, _, err = _run(capsys, "mux", str(clip), str(result), "-o", str(out_path))
    assert code == 1 and "already exists" in err
    code, _, err = _run(capsys, "mux", str(clip), str(result), "-o", str(tmp_path / "o.avi"))
    assert code == 1 and err.startswith("visage mux: error: ") and "unknown container '.avi'" in err
    (tmp_path / "long").mkdir()
    longer = _result(tmp_path / "long", seconds=1.5)
    code, _, err = _run(capsys, "mux", str(clip), str(longer), "-o", str(tmp_path / "long.mov"))
    assert code == 1 and "past the end of the video" in err
