"""`visage generate` from the command line: one success, and every bad input as a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
from media_factory import make_audio_only, make_test_video

from visage.model.cli import main


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_video(tmp_path_factory.mktemp("cli") / "clip.mp4", duration=3.0).path


@pytest.fixture(autouse=True)
def _tiny_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISAGE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "visage-cache"))


def _run(capsys, *args: str) -> tuple[int, str]:
    code = main(["generate", *args])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


def test_generates_the_requested_range(video: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.wav"
    code = main(
        [
            "generate",
            str(video),
            "--start",
            "0.5",
            "--end",
            "2.75",
            "--yaw",
            "30",
            "--pitch",
            "-10",
            "-o",
            str(out),
            "--model",
            "tiny-random",
            "--seed",
            "4",
            "--sample-rate",
            "48000",
            "--binaural-preview",
            "--loudness",
            "-23",
        ]
    )
    assert code == 0, capsys.readouterr().err
    info = sf.info(str(out))
    assert (info.channels, info.samplerate, info.frames, info.subtype) == (4, 48000, 108000, "PCM_24")
    meta = json.loads(Path(str(out) + ".json").read_text())
    assert meta["direction"]["yaw_deg"] == 30.0 and meta["sampling"]["seed"] == 4
    assert meta["preview"] == "out.binaural.wav" and sf.info(str(tmp_path / "out.binaural.wav")).channels == 2
    assert meta["loudness"]["w_lufs"] == pytest.approx(-23.0, abs=0.05)
    printed = capsys.readouterr().out
    assert "wrote" in printed and "binaural preview" in printed and "loudness: W -23.0 LUFS" in printed


@pytest.mark.parametrize(
    "args,message",
    [
        (["--start", "2", "--end", "2"], "must be before end"),
        (["--start", "2.5", "--end", "1"], "must be before end"),
        (["--start", "-1"], "start must be >= 0"),
        (["--end", "9"], "beyond the end of the video at 3.000 s"),
        (["--yaw", "nan"], "yaw_deg must be finite"),
        (["--pitch", "inf"], "pitch_deg must be finite"),
        (["--pitch", "95"], "pitch_deg must lie in [-90, 90]"),
        (["--sample-rate", "0"], "sample_rate must be positive"),
        (["--loudness", "3"], "loudness_target must be between -70 and 0 LUFS"),
        (["--top-k", "0"], "top_k must be >= 1, got 0"),  # was a traceback after loading the model
        (["--temperature", "0"], "temperature must be > 0, got 0.0"),
        (["--guidance", "nan"], "guidance scale must be finite"),
        # was ignored: no preview, so nothing in YouTube's decoder
        (["--preview-renderer", "youtube"], "--preview-renderer youtube chooses the preview's decoder"),
    ],
)
def test_bad_arguments(video: Path, tmp_path: Path, capsys, args: list[str], message: str) -> None:
    out = tmp_path / "out.wav"
    code, err = _run(capsys, str(video), "-o", str(out), "--model", "tiny-random", *args)
    assert code == 1 and message in err and err.startswith("visage generate: error:")
    assert not list(tmp_path.iterdir())


def test_unreadable_direction_file_is_one_line_naming_it(video: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "pan.json"
    folder.mkdir()  # reading it raises IsADirectoryError, an OSError the command did not name
    code, err = _run(capsys, str(video), "-o", str(tmp_path / "out.wav"), "--direction-curve", str(folder))
    assert code == 1 and err.startswith(f"visage generate: error: {folder}: cannot read the direction file")
    assert list(tmp_path.iterdir()) == [folder]


def test_bad_media(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.wav"
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    voice = make_audio_only(tmp_path / "voice.wav")
    good = make_test_video(tmp_path / "good.mp4", duration=2.0).path
    corrupt = tmp_path / "corrupt.mp4"
    data = bytearray(good.read_bytes())
    data[len(data) // 3 :] = bytes(len(data) - len(data) // 3)  # zero the second two thirds
    corrupt.write_bytes(bytes(data))
    cases = [
        (tmp_path / "absent.mp4", "absent.mp4: no such file"),
        (text, "notes.mp4"),
        (voice, "no video stream"),
        (corrupt, "corrupt.mp4"),
    ]
    for media, message in cases:
        code, err = _run(capsys, str(media), "-o", str(out), "--model", "tiny-random", "--end", "1.5")
        assert code == 1 and message in err, (media, err)
        assert not out.exists()


def test_existing_output_is_kept_unless_forced(video: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.wav"
    out.write_bytes(b"my mix")
    code, err = _run(capsys, str(video), "-o", str(out), "--model", "tiny-random", "--end", "1")
    assert code == 1 and "already exists; pass --force" in err and out.read_bytes() == b"my mix"
    assert (
        main(["generate", str(video), "-o", str(out), "--model", "tiny-random", "--end", "1", "--force"]) == 0
    )
    assert sf.info(str(out)).channels == 4


def test_output_folder_missing_or_read_only(video: Path, tmp_path: Path, capsys) -> None:
    code, err = _run(
        capsys, str(video), "-o", str(tmp_path / "nowhere" / "out.wav"), "--model", "tiny-random"
    )
    assert code == 1 and "nowhere does not exist" in err
    if not Path("/sys/kernel").is_dir():
        pytest.skip("needs a read-only folder (/sys on Linux)")
    code, err = _run(capsys, str(video), "-o", "/sys/kernel/visage-test.wav", "--model", "tiny-random")
    assert code == 1 and "cannot create files in output folder /sys/kernel" in err


def test_checkpoint_missing_or_not_visage(video: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.wav"
    code, err = _run(capsys, str(video), "-o", str(out), "--checkpoint", str(tmp_path / "no-ckpt"))
    assert code == 1 and "no-ckpt: no such folder" in err
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    (other / "model.safetensors").write_bytes(b"")
    code, err = _run(capsys, str(video), "-o", str(out), "--checkpoint", str(other))
    assert code == 1 and "bert/config.json: architectures ['BertModel'] is not a ViSAGe model" in err
    assert not out.exists()


def test_offline_without_weights_says_how_to_fetch(video: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    code, err = _run(capsys, str(video), "-o", str(tmp_path / "out.wav"))
    assert code == 1 and "visage download" in err
    assert not (tmp_path / "out.wav").exists()


def test_save_view_never_replaces_the_input_video(video: Path, tmp_path: Path, capsys) -> None:
    media = tmp_path / "clip.mp4"
    media.write_bytes(video.read_bytes())
    out = tmp_path / "out.wav"
    code, err = _run(
        capsys, str(media), "-o", str(out), "--model", "tiny-random", "--save-view", str(media), "--force"
    )
    assert code == 1
    message = f"{media}: the saved views would replace the input video; name another file"
    assert err == f"visage generate: error: {message}"
    assert media.read_bytes() == video.read_bytes() and not out.exists()
