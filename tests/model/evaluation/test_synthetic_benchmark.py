"""The synthetic spatial benchmark: scenes carry their geometry, the pipeline runs end to end.

The full benchmark (a few minutes) is marked slow; the fast variant checks the plumbing on a handful of
clips with seconds of training.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from visage.model.audio.ambisonics import peak_direction, sphere_energy_map, spherical_grid
from visage.model.audio.carrier_codec import CarrierCodec
from visage.model.evaluation import spatial_metrics as sm
from visage.model.evaluation.synthetic_benchmark import (
    WORK_DIR_MARKER,
    BenchmarkConfig,
    ambi_enc,
    claim_work_dir,
    format_benchmark,
    run_benchmark,
)
from visage.model.evaluation.synthetic_scenes import Scene, render_foa, render_frames, track
from visage.model.features.direction import CameraDirection
from visage.model.features.equirect import pixel_directions


def scene(**changes: object) -> Scene:
    base = Scene(
        CameraDirection(50, 10), 1, (250, 30, 30), (20, 20, 200), (112.0, 60.0), (0.0, 0.0), 18.0, 1.0, 0.0, 0
    )
    return Scene(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_the_sound_comes_from_where_the_shape_is() -> None:
    s = scene()
    codec = CarrierCodec()
    n = 44100
    carriers = np.stack([codec.carrier_signal(q, n) for q in range(4)])
    foa = render_foa(s, carriers, 44100)
    frames = render_frames(s, 4)
    rows, cols = np.nonzero((frames[0, ..., 0] > 200) & (frames[0, ..., 2] < 100))
    assert (rows.mean(), cols.mean()) == pytest.approx((112.0, 60.0), abs=1.0)
    grid = spherical_grid(2.0)
    source = foa - render_foa(
        scene(), np.stack([carriers[0], carriers[1], 0 * carriers[2], carriers[3]]), 44100
    )
    peak = peak_direction(sphere_energy_map(source, grid.azimuths, grid.elevations), grid)
    az, el = pixel_directions(112.0, 60.0, s.camera)
    assert abs(math.degrees(peak.azimuth - az)) <= 2 and abs(math.degrees(peak.elevation - el)) <= 2
    assert math.degrees(az) > 50  # the shape is on the left of the picture: further left than the camera


def test_the_shape_bounces_inside_the_view() -> None:
    rows, cols = track(scene(velocity=(300.0, -500.0)), np.linspace(0, 10, 200))
    assert rows.min() >= 0.2 * 224 - 1e-9 and rows.max() <= 0.8 * 224 + 1e-9
    assert cols.min() >= 0.2 * 224 - 1e-9 and cols.max() <= 0.8 * 224 + 1e-9


def test_ambi_enc_is_the_papers_formula() -> None:
    w = np.ones(16000 * 5)
    foa = ambi_enc(w, CameraDirection(90, 0))
    np.testing.assert_allclose(foa[:, 0], [1.0, math.sqrt(2), 0.0, 0.0], atol=1e-7)  # W, Y = √2 W, Z, X
    maps = sm.sphere_maps(foa.T, mode="corrected")
    assert maps.map_all.shape == (sm.N_SPHERE_SAMPLES,)


def test_the_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    config = BenchmarkConfig(
        train_clips=6, test_clips=2, clip_seconds=1, train_steps=3, batch_size=3, d_model=16, ffn=32
    )
    result = run_benchmark(tmp_path, config, log=lambda _: None)
    names = [r.name for r in result.rows]
    assert names == ["ViSAGe", "direction-blind", "Ambi Enc.", "codec round trip (bound)"]
    bound = result.rows[-1].spatial["paper"]
    assert bound.cc_all > 0.99
    assert all(result.train_steps[k] >= 1 for k in ("ViSAGe", "direction-blind"))
    assert "CC_all" in format_benchmark(result) and (tmp_path / "benchmark.json").is_file()


def test_the_work_folder_of_a_user_is_never_deleted(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match="not made by the synthetic benchmark"):
        run_benchmark(mine, BenchmarkConfig(train_clips=1, test_clips=1), log=lambda _: None)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / WORK_DIR_MARKER).write_text("")
    (earlier / "stale.txt").write_text("from an earlier run")
    claim_work_dir(earlier)  # an earlier run's folder is emptied for the next one
    assert [p.name for p in earlier.iterdir()] == [WORK_DIR_MARKER]


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("VISAGE_RUN_SLOW") != "1", reason="3-6 minutes: set VISAGE_RUN_SLOW=1")
def test_visage_beats_both_baselines_after_a_few_minutes_of_training(tmp_path: Path) -> None:
    result = run_benchmark(tmp_path, BenchmarkConfig(), log=lambda _: None)
    cc = {r.name: r.spatial["paper"].cc_all for r in result.rows}
    assert cc["ViSAGe"] > cc["direction-blind"] + 0.05  # measured 0.553 vs 0.416
    assert cc["ViSAGe"] > cc["Ambi Enc."] + 0.05  # measured 0.553 vs 0.334
