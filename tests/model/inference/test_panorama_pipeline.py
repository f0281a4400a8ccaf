"""360° video through the pipeline, the daemon's engine and the command line (tiny-random models)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from panorama_factory import (
    add_spherical_metadata,
    angular_distance,
    disc_frames,
    moving_disc_centres,
    write_panorama_video,
)

import visage.model.inference.pipeline as pipeline_module
from visage.bridge.engine import GenerateSpec, JobDone, JobFailed
from visage.bridge.errors import RequestError
from visage.bridge.fill.generators import GenerationSettings, engine_options
from visage.bridge.osc_protocol import parse_options
from visage.model.cli import main
from visage.model.features.direction import CameraDirection, DirectionCurve, model_direction_vector
from visage.model.features.windows import plan_windows
from visage.model.files.output_files import OutputExistsError
from visage.model.files.result_files import DIRECTION_KEY, INPUT_KEY, sidecar_path
from visage.model.files.spherical_video import SphericalVideo
from visage.model.inference.daemon_engine import VisageEngine
from visage.model.inference.panorama_input import FORCED, TWO_TO_ONE_NOTE, PanoramaInput
from visage.model.inference.panorama_views import window_views
from visage.model.inference.pipeline import GenerationOutput, GenerationRequest, VideoToAmbisonics

OBJECT = (-60.0, 15.0)  # azimuth, elevation (degrees) of the moving disc


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """2-s panoramas (256 x 128, 8 fps) with a disc moving about OBJECT: with and without metadata."""
    root = tmp_path_factory.mktemp("panoramas")
    frames = disc_frames(moving_disc_centres(*OBJECT, frames=16, span_deg=16.0))
    tagged = write_panorama_video(root / "tagged.mp4", frames)
    add_spherical_metadata(tagged, SphericalVideo("equirectangular", "mono", "sv3d"))
    cubemap = write_panorama_video(root / "cubemap.mp4", frames[:4])
    add_spherical_metadata(cubemap, SphericalVideo("cubemap", "mono", "sv3d", projection_private=bytes(12)))
    stereo = write_panorama_video(root / "stereo.mp4", frames[:4])
    add_spherical_metadata(stereo, SphericalVideo("equirectangular", "top-bottom", "sv3d"))
    return {
        "tagged": tagged,
        "untagged": write_panorama_video(root / "untagged.mp4", frames),
        "cubemap": cubemap,
        "stereo": stereo,
    }


@pytest.fixture
def network_inputs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, torch.Tensor]]:
    """What the pipeline hands the network at each call (clip, energy map, direction); it then runs."""
    calls: list[dict[str, torch.Tensor]] = []
    real = pipeline_module.generate

    def recording(model, clip, energy, direction, **kwargs):  # noqa: ANN001, ANN202
        calls.append({"clip": clip.clone(), "energy": energy.clone(), "direction": direction.clone()})
        return real(model, clip, energy, direction, **kwargs)

    monkeypatch.setattr(pipeline_module, "generate", recording)
    return calls


def degrees_between(direction: CameraDirection, az: float, el: float) -> float:
    angle = angular_distance(
        math.radians(direction.yaw_deg), math.radians(direction.pitch_deg), math.radians(az), math.radians(el)
    )
    return math.degrees(float(angle))


def decoded(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_the_model_sees_the_view_where_things_move_and_is_told_that_direction(
    pipeline: VideoToAmbisonics, media: dict[str, Path], tmp_path: Path, network_inputs: list
) -> None:
    out, view_file = tmp_path / "pano.wav", tmp_path / "view.mp4"
    request = GenerationRequest(media["tagged"], seed=3, output=out, look="auto", save_view=view_file)
    (result,) = pipeline.generate([request])
    assert isinstance(result, GenerationOutput), result
    sidecar = json.loads(sidecar_path(out).read_text())
    read_as = sidecar[INPUT_KEY]
    assert read_as["projection"] == "equirectangular" and read_as["detected_by"] == "sv3d"
    assert read_as["look"] == "auto" and "world-fixed" in read_as["sound_field"]
    (window,) = read_as["views"]
    assert window["looked"] is True
    looked = CameraDirection(window["yaw_deg"], window["pitch_deg"])
    assert degrees_between(looked, *OBJECT) < 10.0
    (per_window,) = sidecar[DIRECTION_KEY]["per_window"]
    assert (per_window["yaw_deg"], per_window["pitch_deg"]) == (looked.yaw_deg, looked.pitch_deg)
    # The direction handed to the network is the view's (no pose: world = panorama direction) ...
    (call,) = network_inputs
    np.testing.assert_allclose(call["direction"][0].numpy(), model_direction_vector(looked), atol=1e-6)
    # ... and its CLIP input is the 90° view there, rendered as the dataset renders it.
    windows = plan_windows(0.0, 2.0, pipeline.model.config.sequence)
    (view,) = window_views(media["tagged"], 0.0, 2.0, windows, [looked], PanoramaInput(True, FORCED))
    with torch.inference_mode():
        expected = pipeline.vision(view.frames).frame_embeds.float()
    frames = len(view.frames)
    torch.testing.assert_close(call["clip"][0, :frames].float(), expected.to(call["clip"].dtype).float())
    # The saved clip is those views: the disc sits in the middle of the picture.
    saved = decoded(view_file)
    assert saved.shape == (frames, 224, 224, 3)
    rows, cols = np.nonzero(np.all(saved[frames // 2] > 180, axis=-1))
    assert abs(rows.mean() - 111.5) < 20 and abs(cols.mean() - 111.5) < 20


def test_each_window_of_a_long_clip_sees_and_is_told_its_own_direction(
    pipeline: VideoToAmbisonics, tmp_path: Path, network_inputs: list
) -> None:
    """6 s: windows [0, 5) and [4, 6) s; the curve holds 0° until 5 s, then 90°: means 0° and 45°."""
    path = write_panorama_video(tmp_path / "long.mp4", disc_frames([(0.0, 0.0)] * 24), fps=4)
    curve = DirectionCurve((0.0, 5.0), (0.0, 90.0), (0.0, 0.0))
    out = tmp_path / "long.wav"
    (result,) = pipeline.generate(
        [GenerationRequest(path, direction=curve, seed=5, output=out, equirect=True)]
    )
    assert isinstance(result, GenerationOutput), result
    views = json.loads(sidecar_path(out).read_text())[INPUT_KEY]["views"]
    assert [(v["start_s"], v["looked"]) for v in views] == [(0.0, False), (4.0, False)]
    assert [v["yaw_deg"] for v in views] == pytest.approx([0.0, 45.0])
    told = [call["direction"][0].numpy() for call in network_inputs]
    for vector, yaw in zip(told, (0.0, 45.0), strict=True):
        np.testing.assert_allclose(vector, model_direction_vector(CameraDirection(yaw, 0.0)), atol=1e-6)


def test_a_two_to_one_video_without_metadata_is_flat_and_the_sidecar_says_so(
    pipeline: VideoToAmbisonics, media: dict[str, Path], tmp_path: Path
) -> None:
    out, seen = tmp_path / "flat.wav", tmp_path / "seen.mp4"
    request = GenerationRequest(media["untagged"], 0.0, 1.0, seed=1, output=out, save_view=seen)
    (result,) = pipeline.generate([request])
    assert isinstance(result, GenerationOutput), result
    read_as = json.loads(sidecar_path(out).read_text())[INPUT_KEY]
    assert read_as.keys() == {"projection", "sound_field", "note", "saved_views"}
    assert read_as["projection"] == "flat" and read_as["note"] == TWO_TO_ONE_NOTE
    assert decoded(seen).shape == (4, 224, 224, 3)  # the centre-cropped frames CLIP saw


def test_a_saved_view_is_not_replaced_without_force(
    pipeline: VideoToAmbisonics, media: dict[str, Path], tmp_path: Path
) -> None:
    existing = tmp_path / "view.mp4"
    existing.write_bytes(b"mine")
    request = GenerationRequest(media["tagged"], 0.0, 0.5, output=tmp_path / "a.wav", save_view=existing)
    (result,) = pipeline.generate([request])
    assert isinstance(result, OutputExistsError) and existing.read_bytes() == b"mine"
    assert not (tmp_path / "a.wav").exists()


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_the_api_never_saves_views_over_the_input_video(
    pipeline: VideoToAmbisonics, media: dict[str, Path], tmp_path: Path, link: str
) -> None:
    source = tmp_path / "input.mp4"
    source.write_bytes(media["tagged"].read_bytes())
    view = {"same": source, "symlink": tmp_path / "view.mp4", "hardlink": tmp_path / "view.mp4"}[link]
    if link == "symlink":
        view.symlink_to(source)
    elif link == "hardlink":
        view.hardlink_to(source)
    request = GenerationRequest(source, 0.0, 0.5, output=tmp_path / "a.wav", save_view=view, overwrite=True)
    with pytest.raises(ValueError, match="would replace the input video"):
        pipeline_module.validate_request(request)
    (result,) = pipeline.generate([request])
    assert isinstance(result, ValueError) and "would replace the input video" in str(result)
    assert source.read_bytes() == media["tagged"].read_bytes() and not (tmp_path / "a.wav").exists()


def test_the_daemon_engine_reads_360_files_and_refuses_cubemaps_and_stereo(
    pipeline: VideoToAmbisonics, media: dict[str, Path], tmp_path: Path
) -> None:
    engine = VisageEngine(pipeline, "tiny-random")

    def spec(name: str, **extra: object) -> GenerateSpec:
        return GenerateSpec(media[name], 0.0, 0.5, 20.0, 0.0, None, 2.5, 1, 48000, tmp_path / f"{name}.wav",
                            {"binaural_preview": False, **extra})  # fmt: skip

    outcomes = engine.run_batch(
        [spec("tagged"), spec("untagged", equirect=True, look="auto"), spec("cubemap"), spec("stereo"),
         spec("untagged", look="auto")],
        lambda *_: None,
        lambda _: False,
    )  # fmt: skip
    tagged, forced, cubemap, stereo, flat_look = outcomes
    assert isinstance(tagged, JobDone) and isinstance(forced, JobDone)
    tagged_input = json.loads(tagged.metadata.read_text())[INPUT_KEY]
    assert tagged_input["detected_by"] == "sv3d" and tagged_input["views"][0]["yaw_deg"] == 20.0
    forced_input = json.loads(forced.metadata.read_text())[INPUT_KEY]
    assert forced_input["detected_by"] == FORCED and forced_input["look"] == "auto"
    assert isinstance(cubemap, JobFailed) and cubemap.code == "unsupported_video"
    assert "cubemap projection" in cubemap.message and "only monoscopic equirectangular" in cubemap.message
    assert isinstance(stereo, JobFailed) and stereo.code == "unsupported_video"
    assert "top-bottom stereo" in stereo.message
    assert isinstance(flat_look, JobFailed) and flat_look.code == "unsupported_video"
    assert "--look auto needs a 360° video" in flat_look.message


def test_bad_panorama_options_are_refused_before_a_job_is_queued() -> None:
    assert parse_options('{"equirect": true, "look": "auto"}').extra == {"equirect": True, "look": "auto"}
    for text, message in [('{"equirect": "yes"}', "equirect"), ('{"look": "left"}', "look")]:
        with pytest.raises(RequestError, match=message) as error:
            parse_options(text)
        assert error.value.code.value == "bad_options"


def test_fill_and_batch_send_the_panorama_options_with_every_shot() -> None:
    assert engine_options(GenerationSettings()) == {"binaural_preview": False}
    assert engine_options(GenerationSettings(equirect=True, look="auto")) == {
        "binaural_preview": False,
        "equirect": True,
        "look": "auto",
    }


def test_the_command_line_shows_the_two_to_one_note_once(
    media: dict[str, Path], tmp_path: Path, capsys, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    monkeypatch.setenv("VISAGE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "flat.wav"
    args = ["generate", str(media["untagged"]), "--end", "0.5", "-o", str(out), "--model", "tiny-random"]
    with caplog.at_level("WARNING"):  # what the terminal shows by default (no -v)
        assert main([*args, "--device", "cpu"]) == 0
    printed = capsys.readouterr()
    terminal = printed.out + printed.err + "".join(f"{r.getMessage()}\n" for r in caplog.records)
    assert terminal.count("treated as flat video") == 1, terminal
    assert f"note: {TWO_TO_ONE_NOTE}" in printed.out.splitlines()
    assert json.loads(sidecar_path(out).read_text())[INPUT_KEY]["note"] == TWO_TO_ONE_NOTE


def test_generate_from_the_command_line(media: dict[str, Path], tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("VISAGE_CACHE_DIR", str(tmp_path / "cache"))
    out, view = tmp_path / "cli.wav", tmp_path / "cli_view.mp4"
    args = [
        *(
            "generate",
            str(media["untagged"]),
            "--end",
            "0.5",
            "--yaw",
            "-60",
            "--pitch",
            "15",
            "-o",
            str(out),
        ),
        *("--model", "tiny-random", "--device", "cpu", "--equirect", "--save-view", str(view), "--seed", "2"),
    ]
    assert main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert f"wrote {view}" in printed
    # one window, looking where it was told; the user sees the video was read as 360°
    assert (
        "360° video (--equirect): views at panorama yaw/pitch -60°/15°; "
        "world-fixed: AmbiX front (azimuth 0) = the panorama's centre column"
    ) in printed.splitlines()
    read_as = json.loads(sidecar_path(out).read_text())[INPUT_KEY]
    assert read_as["detected_by"] == FORCED and read_as["views"][0]["yaw_deg"] == -60.0
    assert main([*args, "--force"]) == 0  # both files replaced when asked
    view.unlink()
    code = main(args)  # the WAV is in the way: refused before anything is written
    assert code != 0 and "--force" in capsys.readouterr().err and not view.exists()
