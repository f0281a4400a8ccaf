"""visage eval: the official spatial numbers through the command path, semantic plumbing, clear errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from visage.model.audio.ambisonics import encode_mono
from visage.model.commands import research as research_commands
from visage.model.evaluation.audio_feature_models import tiny_random_classifier, tiny_random_embedder
from visage.model.evaluation.paper_metrics import (
    EvaluationError,
    evaluate,
    format_table,
    mono_signals,
    read_directions,
)
from visage.model.features.direction import CameraDirection

PARITY = Path(__file__).resolve().parents[4] / "shared" / "parity" / "spatial"
KEYS = [
    ("cc_all", "cc_all"),
    ("auc_all", "aucj_all_nojitter"),
    ("cc_1fps", "cc_1fps_mean"),
    ("auc_1fps", "aucj_1fps_mean_nojitter"),
    ("cc_5fps", "cc_5fps_mean"),
    ("auc_5fps", "aucj_5fps_mean_nojitter"),
]


def run_eval(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    research_commands.add_eval_arguments(parser)
    return research_commands.run_eval(parser.parse_args(argv))


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    if not (PARITY / "spatial_vectors.npz").exists():
        pytest.skip("parity vectors not found")
    audio = np.load(PARITY / "spatial_vectors.npz")["audio_int16"]  # [4 signals, C, T] at 16 kHz
    metrics = json.loads((PARITY / "spatial_metrics.json").read_text())
    root = tmp_path_factory.mktemp("golden")
    for side in ("gen", "ref"):
        (root / side).mkdir()
    for i, (pred, gt) in enumerate(metrics["pairs_pred_gt"]):
        sf.write(str(root / "gen" / f"pair{i}.wav"), audio[pred].T, 16000, subtype="PCM_16")
        sf.write(str(root / "ref" / f"pair{i}.wav"), audio[gt].T, 16000, subtype="PCM_16")
    return root / "gen", root / "ref", metrics


def test_the_eval_command_reproduces_the_official_numbers(golden, tmp_path: Path, capsys) -> None:
    gen, ref, metrics = golden
    out = tmp_path / "r.json"
    assert run_eval([str(gen), str(ref), "--spatial-only", "--json", str(out)]) == 0
    paper = json.loads(out.read_text())["spatial"]["paper"]
    for ours, theirs in KEYS:
        expected = np.mean([metrics[f"pair{i}"][theirs] for i in range(3)])
        assert paper[ours] == pytest.approx(expected, abs=1e-6), ours
    table = capsys.readouterr().out
    assert "paper" in table and "corrected" in table and f"{paper['cc_all']:7.3f}" in table


def test_semantic_metrics_with_tiny_extractors(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cameras = {"a": CameraDirection(30, 0), "b": CameraDirection(-100, 20), "c": CameraDirection(170, -10)}
    for side in ("gen", "ref"):
        (tmp_path / side).mkdir()
    for clip_id, cam in cameras.items():
        for side in ("gen", "ref"):
            foa = encode_mono(
                0.1 * rng.standard_normal(44100), np.radians(cam.yaw_deg), np.radians(cam.pitch_deg)
            )
            sf.write(
                str(tmp_path / side / f"{clip_id}.wav"), foa.T.astype(np.float32), 44100, subtype="FLOAT"
            )
    (tmp_path / "dirs.csv").write_text(
        "id,yaw,pitch\n" + "".join(f"{k},{c.yaw_deg},{c.pitch_deg}\n" for k, c in cameras.items())
    )
    result = evaluate(
        tmp_path / "gen",
        tmp_path / "ref",
        directions=tmp_path / "dirs.csv",
        embedder=tiny_random_embedder(),
        classifier=tiny_random_classifier(),
    )
    sem = result.semantic
    assert sem is not None and set(sem.fad_channels) == {"w", "y", "z", "x"}
    assert sem.fad_avg == pytest.approx(np.mean(list(sem.fad_channels.values())))
    assert np.isfinite([sem.fad_dec, sem.kld_dec, sem.kld_avg]).all()
    assert result.spatial["corrected"].cc_all > 0.99  # same directions, different noise
    assert (
        "FAD_dec" in format_table(result)
        and json.loads(result.to_json())["semantic"]["fad_dec"] == sem.fad_dec
    )


def test_the_decode_points_the_cardioid_at_the_camera() -> None:
    cam = CameraDirection(60, 0)
    front = encode_mono(np.ones(8), np.radians(60), 0.0).T
    back = encode_mono(np.ones(8), np.radians(-120), 0.0).T
    assert mono_signals(front, cam)["dec"] == pytest.approx(np.full(8, 2.0))
    assert mono_signals(back, cam)["dec"] == pytest.approx(np.zeros(8), abs=1e-12)


def test_mismatched_folders_and_bad_files_are_clear_errors(tmp_path: Path, capsys) -> None:
    (tmp_path / "gen").mkdir()
    (tmp_path / "ref").mkdir()
    with pytest.raises(EvaluationError, match="no audio files"):
        evaluate(tmp_path / "gen", tmp_path / "ref")
    sf.write(str(tmp_path / "gen" / "a.wav"), np.zeros((100, 4), np.float32), 16000)
    sf.write(str(tmp_path / "ref" / "b.wav"), np.zeros((100, 4), np.float32), 16000)
    with pytest.raises(EvaluationError, match=r"only generated \['a'\], only reference \['b'\]"):
        evaluate(tmp_path / "gen", tmp_path / "ref")
    sf.write(str(tmp_path / "ref" / "a.wav"), np.zeros((100, 2), np.float32), 16000)
    (tmp_path / "ref" / "b.wav").unlink()
    with pytest.raises(EvaluationError, match="2 channel"):
        evaluate(tmp_path / "gen", tmp_path / "ref")
    assert run_eval([str(tmp_path / "none"), str(tmp_path / "ref"), "--spatial-only"]) == 1
    assert "visage eval: error:" in capsys.readouterr().err
    assert run_eval([str(tmp_path / "gen"), str(tmp_path / "ref")]) == 1
    assert "--directions" in capsys.readouterr().err


def test_direction_files(tmp_path: Path) -> None:
    (tmp_path / "ambi.json").write_text(json.dumps({"x": [44, 90]}))
    assert read_directions(tmp_path / "ambi.json")["x"] == CameraDirection(-1.0, 1.0)
    with pytest.raises(EvaluationError, match=r"\.json or \.csv"):
        read_directions(tmp_path / "d.txt")
    (tmp_path / "d.csv").write_text("id,yaw\nx,1\n")
    with pytest.raises(EvaluationError, match="line 2: no direction"):
        read_directions(tmp_path / "d.csv")
