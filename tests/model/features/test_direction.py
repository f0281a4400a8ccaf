"""Camera direction: conventions, the official dataset vectors, curves over time, and curve files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from visage.model.audio.ambisonics import rotate, sh_gains
from visage.model.features.direction import (
    CameraDirection,
    DirectionCurve,
    DirectionError,
    dataset_units_to_camera,
    dataset_units_to_vector,
    direction_for_window,
    format_direction_curve,
    load_direction_curve,
    model_direction_vector,
    parse_direction_curve,
    save_direction_curve,
)

DIRECTION_VECTORS = (
    Path(__file__).resolve().parents[4] / "shared" / "parity" / "direction" / "direction_vectors.json"
)

yaws = st.floats(-1e4, 1e4, allow_nan=False)
pitches = st.floats(-90.0, 90.0)


def _official_vectors() -> list[dict]:
    if not DIRECTION_VECTORS.exists():
        pytest.skip(f"official parity vectors not found at {DIRECTION_VECTORS}")
    return json.loads(DIRECTION_VECTORS.read_text())


# --- CameraDirection -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaw", "wrapped"),
    [
        (0.0, 0.0),
        (180.0, -180.0),
        (-180.0, -180.0),
        (190.0, -170.0),
        (-190.0, 170.0),
        (540.0, -180.0),
        (-0.0, 0.0),
    ],
)
def test_yaw_wraps_into_minus_180_to_180(yaw: float, wrapped: float) -> None:
    assert CameraDirection(yaw, 0.0).yaw_deg == wrapped


@given(yaws, pitches)
def test_wrapped_yaw_is_in_range_and_the_same_angle(yaw: float, pitch: float) -> None:
    direction = CameraDirection(yaw, pitch)
    assert -180.0 <= direction.yaw_deg < 180.0
    assert math.cos(math.radians(direction.yaw_deg - yaw)) == pytest.approx(1.0)
    assert direction.pitch_deg == pitch


@pytest.mark.parametrize(
    ("yaw", "pitch", "message"),
    [
        (math.nan, 0.0, "yaw_deg must be finite, got nan"),
        (0.0, math.inf, "pitch_deg must be finite, got inf"),
        (0.0, 90.5, r"pitch_deg must lie in \[-90, 90\].*got 90.5"),
        (0.0, -91.0, r"pitch_deg must lie in \[-90, 90\].*got -91.0"),
        ("10", 0.0, "yaw_deg must be a number, got '10'"),
    ],
)
def test_camera_direction_rejects_bad_values(yaw: object, pitch: object, message: str) -> None:
    with pytest.raises(DirectionError, match=message):
        CameraDirection(yaw, pitch)  # type: ignore[arg-type]


def test_camera_direction_is_frozen() -> None:
    direction = CameraDirection(10.0, 5.0)
    with pytest.raises(AttributeError):
        direction.yaw_deg = 0.0  # type: ignore[misc]


def test_direction_error_is_a_value_error() -> None:
    assert issubclass(DirectionError, ValueError)


# --- model vector --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaw", "pitch", "expected"),
    [
        (0.0, 0.0, [0, 0, 1]),  # front → the crop's forward axis z
        (90.0, 0.0, [-1, 0, 0]),  # left → −x (x points right in the image)
        (-90.0, 0.0, [1, 0, 0]),  # right → +x
        (0.0, 90.0, [0, -1, 0]),  # up → −y (y points down in the image)
        (180.0, 0.0, [0, 0, -1]),
    ],
)
def test_model_vector_of_cardinal_directions(yaw: float, pitch: float, expected: list[int]) -> None:
    vector = model_direction_vector(CameraDirection(yaw, pitch))
    assert vector.dtype == np.float32 and vector.shape == (3,)
    np.testing.assert_allclose(vector, expected, atol=1e-7)


@given(yaws, pitches)
def test_model_vector_is_a_unit_vector(yaw: float, pitch: float) -> None:
    assert np.linalg.norm(model_direction_vector(CameraDirection(yaw, pitch))) == pytest.approx(1.0, abs=1e-6)


@given(st.integers(0, 90), st.integers(0, 179))
def test_the_augmentation_turns_camera_and_sound_field_together(e: int, a: int) -> None:
    """+45 units of dataset azimuth = the camera turning 90° right = rotate(foa, −90°) in AmbiX yaw."""
    camera = dataset_units_to_camera(e, a)
    augmented = dataset_units_to_camera(e, a, augment=True)
    assert math.cos(math.radians(augmented.yaw_deg - (camera.yaw_deg - 90.0))) == pytest.approx(1.0)
    source = sh_gains(math.radians(camera.yaw_deg), math.radians(camera.pitch_deg))[:, None]  # [4, 1]
    rotated = rotate(source, -math.pi / 2)[:, 0]
    expected = sh_gains(math.radians(augmented.yaw_deg), math.radians(augmented.pitch_deg))
    np.testing.assert_allclose(rotated, expected, atol=1e-12)


# --- dataset units (official parity) -------------------------------------------------------------


def test_dataset_vectors_match_the_official_prepare_ambi_exactly() -> None:
    entries = _official_vectors()
    assert len(entries) == 64
    for entry in entries:
        e, a = entry["elevation_units"], entry["azimuth_units"]
        for augment, key in ((False, "direction"), (True, "direction_augmented")):
            vector = dataset_units_to_vector(e, a, augment=augment)
            assert vector.dtype == np.float32
            np.testing.assert_array_equal(
                vector, np.asarray(entry[key], dtype=np.float32), err_msg=f"{e=} {a=}"
            )


def test_dataset_camera_gives_the_same_model_vector() -> None:
    for entry in _official_vectors():
        e, a = entry["elevation_units"], entry["azimuth_units"]
        for augment in (False, True):
            np.testing.assert_allclose(
                model_direction_vector(dataset_units_to_camera(e, a, augment=augment)),
                dataset_units_to_vector(e, a, augment=augment),
                atol=1e-6,
                err_msg=f"{e=} {a=} {augment=}",
            )


def test_dataset_vectors_quoted_in_the_parity_readme() -> None:
    """Literal values, so this runs even without ../shared/parity."""
    np.testing.assert_allclose(dataset_units_to_vector(20, 100), [0.2351, -0.7547, 0.6125], atol=1e-4)
    np.testing.assert_allclose(dataset_units_to_vector(45, 10), [-0.3583, 0.0175, -0.9334], atol=1e-4)


@pytest.mark.parametrize(
    ("e", "a", "yaw", "pitch"),
    [
        (0, 89, 1.0, 89.0),  # α = −1°: just left of centre, near the zenith
        (44, 90, -1.0, 1.0),  # α = +1° is to the right, so AmbiX yaw −1°
        (20, 100, -21.0, 49.0),
        (45, 0, 179.0, -1.0),  # a counts from the back
        (90, 0, -1.0, -89.0),  # β = −91° folds over the nadir
    ],
)
def test_dataset_units_to_camera(e: int, a: int, yaw: float, pitch: float) -> None:
    assert dataset_units_to_camera(e, a) == CameraDirection(yaw, pitch)


def test_augmentation_wraps_the_azimuth_units() -> None:
    np.testing.assert_array_equal(
        dataset_units_to_vector(10, 134, augment=True), dataset_units_to_vector(10, 179)
    )
    np.testing.assert_array_equal(
        dataset_units_to_vector(10, 135, augment=True), dataset_units_to_vector(10, 0)
    )


@pytest.mark.parametrize(
    ("e", "a", "message"),
    [
        (-1, 0, r"elevation_units must lie in 0..90, got -1"),
        (91, 0, r"elevation_units must lie in 0..90, got 91"),
        (0, 180, r"azimuth_units must lie in 0..179, got 180"),
        (0, 1.5, r"azimuth_units must be an integer number of 2° units, got 1.5"),
    ],
)
def test_dataset_units_out_of_range(e: int, a: int, message: str) -> None:
    with pytest.raises(DirectionError, match=message):
        dataset_units_to_vector(e, a)
    with pytest.raises(DirectionError, match=message):
        dataset_units_to_camera(e, a)


# --- DirectionCurve ------------------------------------------------------------------------------


def test_curve_holds_each_sample_until_the_next() -> None:
    curve = DirectionCurve((0.0, 1.0, 3.0), (10.0, 20.0, 30.0), (0.0, 10.0, -10.0))
    # [0, 2]: 10° for 1 s, 20° for 1 s
    mean = curve.mean_over(0.0, 2.0)
    assert mean.yaw_deg == pytest.approx(15.0, abs=1e-9)
    assert mean.pitch_deg == pytest.approx(5.0)
    # a window inside one hold gives that sample exactly
    assert curve.mean_over(1.2, 2.9) == CameraDirection(20.0, 10.0)


def test_curve_window_before_the_first_and_after_the_last_sample() -> None:
    curve = DirectionCurve((1.0, 2.0), (10.0, 20.0), (5.0, -5.0))
    assert curve.mean_over(-3.0, 0.5) == CameraDirection(10.0, 5.0)
    assert curve.mean_over(4.0, 9.0) == CameraDirection(20.0, -5.0)
    # [0, 3]: first sample held 2 s (including the 1 s before its time), last one 1 s
    mean = curve.mean_over(0.0, 3.0)
    assert mean.pitch_deg == pytest.approx(5.0 / 3.0)


def test_curve_zero_length_window_is_the_held_value() -> None:
    curve = DirectionCurve((0.0, 1.0), (10.0, 20.0), (0.0, 0.0))
    assert curve.mean_over(1.0, 1.0).yaw_deg == 20.0
    assert curve.mean_over(0.999, 0.999).yaw_deg == 10.0
    assert curve.mean_over(-5.0, -5.0).yaw_deg == 10.0


def test_curve_yaw_mean_is_circular_across_180() -> None:
    curve = DirectionCurve((0.0, 1.0), (170.0, -170.0), (0.0, 0.0))
    assert curve.mean_over(0.0, 2.0).yaw_deg == pytest.approx(-180.0)
    curve = DirectionCurve((0.0, 1.0), (-10.0, 30.0), (0.0, 0.0))
    assert curve.mean_over(0.0, 2.0).yaw_deg == pytest.approx(10.0)


@given(yaws, pitches, st.floats(-10.0, 10.0), st.floats(0.0, 10.0))
def test_constant_curve_mean_is_the_constant(yaw: float, pitch: float, start: float, length: float) -> None:
    curve = DirectionCurve((0.0, 0.5, 2.0), (yaw, yaw, yaw), (pitch, pitch, pitch))
    mean = curve.mean_over(start, start + length)
    constant = CameraDirection(yaw, pitch)
    assert math.cos(math.radians(mean.yaw_deg - constant.yaw_deg)) == pytest.approx(1.0)
    assert mean.pitch_deg == pytest.approx(pitch)


def test_curve_yaws_that_cancel_have_no_mean() -> None:
    curve = DirectionCurve((0.0, 1.0), (0.0, 180.0), (0.0, 0.0))
    with pytest.raises(DirectionError, match="cancel out"):
        curve.mean_over(0.0, 2.0)


def test_curve_wraps_yaws() -> None:
    assert DirectionCurve((0.0,), (180.0,), (0.0,)).yaws_deg == (-180.0,)


@pytest.mark.parametrize(
    ("times", "yaws", "pitches", "message"),
    [
        ((), (), (), "at least one sample"),
        ((0.0, 1.0), (0.0,), (0.0, 0.0), "one value per sample"),
        ((0.0, 0.0), (0.0, 0.0), (0.0, 0.0), "sample 1: times_s must increase strictly, got 0.0 after 0.0"),
        ((0.0, math.nan), (0.0, 0.0), (0.0, 0.0), "sample 1: times_s must be finite"),
        ((0.0,), (math.inf,), (0.0,), "sample 0: yaws_deg must be finite"),
        ((0.0, 1.0), (0.0, 0.0), (0.0, 95.0), r"sample 1: pitches_deg must lie in \[-90, 90\]"),
        (0.0, (0.0,), (0.0,), "times_s must be a sequence of numbers"),
    ],
)
def test_curve_rejects_bad_samples(times: object, yaws: object, pitches: object, message: str) -> None:
    with pytest.raises(DirectionError, match=message):
        DirectionCurve(times, yaws, pitches)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("start", "end", "message"), [(2.0, 1.0, "before start_s"), (math.nan, 1.0, "start_s")]
)
def test_bad_windows(start: float, end: float, message: str) -> None:
    curve = DirectionCurve((0.0,), (0.0,), (0.0,))
    for source in (curve, CameraDirection(0.0, 0.0)):
        with pytest.raises(DirectionError, match=message):
            direction_for_window(source, start, end)


def test_direction_for_window_accepts_a_constant_or_a_curve() -> None:
    constant = CameraDirection(30.0, -10.0)
    assert direction_for_window(constant, 0.0, 5.0) is constant
    curve = DirectionCurve((0.0, 1.0), (0.0, 40.0), (0.0, 0.0))
    assert direction_for_window(curve, 1.0, 2.0) == CameraDirection(40.0, 0.0)


# --- curve files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".csv", ".JSON"])
def test_curve_file_round_trip(tmp_path: Path, suffix: str) -> None:
    curve = DirectionCurve(
        (0.0, 1 / 24, 2 / 24, 0.125), (0.1, -179.99, 180.0, 33.3), (-90.0, 1e-9, 12.5, 90.0)
    )
    path = tmp_path / f"camera{suffix}"
    save_direction_curve(curve, path)
    assert load_direction_curve(path) == curve
    save_direction_curve(curve, path)  # replaces the file
    assert load_direction_curve(str(path)) == curve


def test_curve_file_formats_as_documented() -> None:
    curve = DirectionCurve((0.0, 0.5), (10.0, -20.0), (0.0, 5.0))
    assert format_direction_curve(curve, "csv") == "time,yaw,pitch\n0.0,10.0,0.0\n0.5,-20.0,5.0\n"
    assert json.loads(format_direction_curve(curve, "json")) == {
        "time": [0.0, 0.5],
        "yaw": [10.0, -20.0],
        "pitch": [0.0, 5.0],
    }


def test_csv_accepts_spaces_blank_lines_and_a_byte_order_mark() -> None:
    curve = parse_direction_curve("\ufefftime, yaw, pitch\n0, 10, 0\n\n1, 20 ,5\n", "csv")
    assert curve == DirectionCurve((0.0, 1.0), (10.0, 20.0), (0.0, 5.0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("t,yaw,pitch\n0,0,0\n", "expected the header time,yaw,pitch, got t,yaw,pitch"),
        ("time,pitch,yaw\n0,0,0\n", "expected the header time,yaw,pitch, got time,pitch,yaw"),
        ("time,yaw,pitch\n", "at least one sample"),
        ("time,yaw,pitch\n0,0,0\n1,0\n", r"line 3: expected 3 values"),
        ("time,yaw,pitch\n0,abc,0\n", "line 2, yaw: 'abc' is not a number"),
        ("time,yaw,pitch\n0,0,0\n1,nan,0\n", "line 3: yaw must be finite, got nan"),
        ("time,yaw,pitch\n0,0,0\n\n1,0,91\n", r"line 4: pitch must lie in \[-90, 90\].*got 91.0"),
        ("time,yaw,pitch\n1,0,0\n0.5,0,0\n", "line 3: time must increase strictly, got 0.5 after 1.0"),
    ],
)
def test_bad_csv(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "camera.csv"
    path.write_text(text)
    with pytest.raises(DirectionError, match=f"^{path}: .*{message}"):
        load_direction_curve(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[1, 2]", 'exactly the keys "time", "yaw", "pitch", got list'),
        ('{"time": [0], "yaw": [0]}', r"got \['time', 'yaw'\]"),
        ('{"time": [0], "yaw": [0], "pitch": [0], "roll": [0]}', "'roll'"),
        ('{"time": 0, "yaw": [0], "pitch": [0]}', '"time" must be a list of numbers, got int'),
        ('{"time": [], "yaw": [], "pitch": []}', "at least one sample"),
        ('{"time": [0, 1], "yaw": [0], "pitch": [0, 0]}', "one value per sample"),
        ('{"time": [0, 1], "yaw": [0, "1"], "pitch": [0, 0]}', "index 1: yaw must be a number, got '1'"),
        ('{"time": [0, 1], "yaw": [0, NaN], "pitch": [0, 0]}', "index 1: yaw must be finite, got nan"),
        ('{"time": [0, 1], "yaw": [0, 0], "pitch": [0, -100]}', r"index 1: pitch must lie in \[-90, 90\]"),
        ('{"time": [0, 0], "yaw": [0, 0], "pitch": [0, 0]}', "index 1: time must increase strictly"),
        ('{"time": [0], "yaw": [true], "pitch": [0]}', "index 0: yaw must be a number, got True"),
    ],
)
def test_bad_json(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "camera.json"
    path.write_text(text)
    with pytest.raises(DirectionError, match=f"^{path}: .*{message}"):
        load_direction_curve(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(DirectionError, match=f"^{path}: direction file not found"):
        load_direction_curve(path)


@pytest.mark.parametrize("name", ["camera.txt", "camera"])
def test_unknown_suffix(tmp_path: Path, name: str) -> None:
    curve = DirectionCurve((0.0,), (0.0,), (0.0,))
    with pytest.raises(DirectionError, match="must end in .json or .csv"):
        save_direction_curve(curve, tmp_path / name)
    with pytest.raises(DirectionError, match="must end in .json or .csv"):
        load_direction_curve(tmp_path / name)


def test_unknown_text_format() -> None:
    with pytest.raises(DirectionError, match="unknown direction file format 'xml'"):
        parse_direction_curve("", "xml")
    with pytest.raises(DirectionError, match="unknown direction file format 'xml'"):
        format_direction_curve(DirectionCurve((0.0,), (0.0,), (0.0,)), "xml")
