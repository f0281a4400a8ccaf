"""The camera direction: the user's yaw/pitch, the model's input vector, and the dataset's angle units.

User convention (AmbiX, like the audio): ``yaw_deg`` is the azimuth the camera looks at, positive to
the LEFT (counter-clockwise seen from above); ``pitch_deg`` is its elevation, positive up; (0, 0) is
the front of the sound field. The model never sees these angles: it gets the unit vector of
``model_direction_vector``, in the frame the official preprocessing used (spec §7.6).

A direction can change over a clip (a moving camera): ``DirectionCurve`` holds time-stamped samples
and gives the mean direction over a window. Times are seconds on the media's own timeline (0 = the
first frame of the source video file, not of an edit's in-point), so one curve serves every range
cut from that media. Curve files are JSON ``{"time": [...], "yaw": [...], "pitch": [...]}`` or CSV
with the header ``time,yaw,pitch`` (seconds, degrees, degrees); ``visage.model.files.result_files``
owns that format and the yaw interval [-180, 180), which the model shares with the daemon and the hosts.

Shapes: S samples of a curve.
"""

from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

import visage.model.files.result_files as result_files

ELEVATION_UNITS_MAX = 90  # dataset elevation e: 2° steps from the zenith, 0..90
AZIMUTH_UNITS_MAX = 179  # dataset azimuth a: 2° steps from the back, 0..179
AUGMENT_AZIMUTH_UNITS = 45  # the official rotation augmentation: +45 units = +90° of α


class DirectionError(ValueError):
    """A direction, a direction curve, or a direction file that cannot be used."""


@dataclass(frozen=True)
class CameraDirection:
    """Where the camera looks, in degrees (AmbiX: yaw positive left, pitch positive up).

    ``yaw_deg`` is wrapped into [−180, 180) on construction; ``pitch_deg`` must lie in [−90, 90].
    """

    yaw_deg: float
    pitch_deg: float

    def __post_init__(self) -> None:
        yaw = _finite("yaw_deg", self.yaw_deg)
        pitch = _finite("pitch_deg", self.pitch_deg)
        _check_pitch("pitch_deg", pitch)
        object.__setattr__(self, "yaw_deg", result_files.wrap_yaw(yaw))
        object.__setattr__(self, "pitch_deg", pitch)


@dataclass(frozen=True)
class DirectionCurve:
    """Camera direction sampled over time, held from each sample until the next one.

    Sample ``i`` holds from ``times_s[i]`` until ``times_s[i + 1]``; the first sample also holds
    before its time and the last one after. Sample-and-hold matches per-frame data (a frame is
    shown until the next) and never interpolates yaw across ±180°.
    """

    times_s: tuple[float, ...]  # [S] seconds on the media timeline, strictly increasing
    yaws_deg: tuple[float, ...]  # [S] wrapped into [−180, 180)
    pitches_deg: tuple[float, ...]  # [S] in [−90, 90]

    def __post_init__(self) -> None:
        try:
            times, yaws, pitches = result_files.check_curve(
                self.times_s, self.yaws_deg, self.pitches_deg, names=("times_s", "yaws_deg", "pitches_deg")
            )
        except result_files.CurveError as error:
            raise DirectionError(str(error)) from None
        object.__setattr__(self, "times_s", times)
        object.__setattr__(self, "yaws_deg", tuple(result_files.wrap_yaw(yaw) for yaw in yaws))
        object.__setattr__(self, "pitches_deg", pitches)

    def mean_over(self, start_s: float, end_s: float) -> CameraDirection:
        """Mean direction over ``[start_s, end_s]``, each sample weighted by the time it holds there.

        Yaw is the circular mean (so 170° and −170° average to −180°, not 0°); pitch the arithmetic
        mean. A window of zero length gives the direction held at ``start_s``.

        Raises:
            DirectionError: bad window, or yaws that cancel out (no mean azimuth exists).
        """
        start, end = _checked_window(start_s, end_s)
        times = np.asarray(self.times_s)  # [S]
        yaws = np.deg2rad(self.yaws_deg)  # [S]
        pitches = np.asarray(self.pitches_deg)  # [S]
        if end == start:
            held = max(int(np.searchsorted(times, start, side="right")) - 1, 0)
            return CameraDirection(self.yaws_deg[held], self.pitches_deg[held])
        holds_from = np.concatenate([[-np.inf], times[1:]])  # [S]
        holds_until = np.concatenate([times[1:], [np.inf]])  # [S]
        weights = np.clip(np.minimum(end, holds_until) - np.maximum(start, holds_from), 0.0, None)  # [S]
        weights /= weights.sum()
        cos_mean, sin_mean = float(weights @ np.cos(yaws)), float(weights @ np.sin(yaws))
        if math.hypot(cos_mean, sin_mean) < 1e-9:
            raise DirectionError(
                f"the yaw samples in [{start}, {end}] s cancel out (e.g. opposite directions held for "
                "equal times), so they have no mean azimuth"
            )
        return CameraDirection(math.degrees(math.atan2(sin_mean, cos_mean)), float(weights @ pitches))


# A fixed direction or one that changes over time; ``direction_for_window`` accepts either.
DirectionSource = CameraDirection | DirectionCurve


def direction_for_window(source: DirectionSource, start_s: float, end_s: float) -> CameraDirection:
    """The single direction to condition a window ``[start_s, end_s]`` (media seconds) on.

    Args:
        source: a constant direction, or a curve averaged with ``DirectionCurve.mean_over``.
        start_s: window start in seconds on the media timeline.
        end_s: window end, ≥ ``start_s``.

    Returns:
        The direction itself, or the curve's mean over the window.
    """
    if isinstance(source, DirectionCurve):
        return source.mean_over(start_s, end_s)
    _checked_window(start_s, end_s)
    return source


def model_direction_vector(direction: CameraDirection) -> npt.NDArray[np.float32]:
    """THE conversion from the user's camera direction to the model's direction input.

    The official preprocessing (spec §7.6) turns dataset angles α (yaw) and β (pitch) into
    ``[sin α·cos β, −sin β, cos α·cos β]``, a unit vector in the frame of the perspective crop
    (x right, y down, z forward) where a larger α looks further right in the equirectangular
    video and β > 0 looks up. Right is negative AmbiX azimuth, so the camera's AmbiX yaw is −α.
    The rotation augmentation confirms the sign without relying on the video layout: it adds +90°
    to α while turning the sound field by −90° in AmbiX azimuth (``Y' = −X, X' = Y``, spec §6.2),
    and the sources seen by the camera stay where it looks only if the camera's azimuth also
    changes by −90°. α = 0 is the centre of the equirectangular frame, which YouTube's layout
    makes the AmbiX front, so there is no offset. With yaw = −α and pitch = β:

        vector = [−sin(yaw)·cos(pitch), −sin(pitch), cos(yaw)·cos(pitch)].

    (The official mono-decode metric uses +α as an AmbiX azimuth, i.e. the mirror image; see
    ``visage.model.audio.ambisonics.official_mono_decode``.)

    Args:
        direction: where the camera looks.

    Returns:
        ``[3]`` float32 unit vector, computed in float64 as the official code does.
    """
    yaw = math.radians(direction.yaw_deg)
    pitch = math.radians(direction.pitch_deg)
    return _float32_vector(
        -math.sin(yaw) * math.cos(pitch), -math.sin(pitch), math.cos(yaw) * math.cos(pitch)
    )


def dataset_units_to_vector(
    elevation_units: int, azimuth_units: int, augment: bool = False
) -> npt.NDArray[np.float32]:
    """The official ``PreprocessorAmbi.prepare_ambi``: YT-Ambigen angle units → model input.

    α = (2a − 179)°, β = (89 − 2e)°, vector = ``[sin α·cos β, −sin β, cos α·cos β]`` in float64,
    cast to float32 (bit-identical to the official vectors).

    Args:
        elevation_units: e in 0..90, 2° steps from the zenith (e = 90 gives β = −91°, as theirs does).
        azimuth_units: a in 0..179, 2° steps counted from the back.
        augment: apply the rotation augmentation's azimuth shift (a + 45, wrapped), which goes with
            ``ambisonics.rotate(foa, yaw=-math.pi / 2)`` of the audio.

    Returns:
        ``[3]`` float32 unit vector.
    """
    alpha_deg, beta_deg = _dataset_degrees(elevation_units, azimuth_units, augment)
    alpha, beta = alpha_deg * math.pi / 180, beta_deg * math.pi / 180  # as the official code rounds
    return _float32_vector(
        math.sin(alpha) * math.cos(beta), -math.sin(beta), math.cos(alpha) * math.cos(beta)
    )


def dataset_units_to_camera(
    elevation_units: int, azimuth_units: int, augment: bool = False
) -> CameraDirection:
    """The camera direction a YT-Ambigen clip was recorded with: yaw = −α, pitch = β.

    e = 90 gives β = −91°, past the nadir; it is folded to pitch −89° on the opposite side
    (yaw + 180°), which is the same vector.

    Args:
        elevation_units: e in 0..90 (see ``dataset_units_to_vector``).
        azimuth_units: a in 0..179.
        augment: apply the rotation augmentation's azimuth shift.

    Returns:
        The direction whose ``model_direction_vector`` equals ``dataset_units_to_vector`` to 1e-7.
    """
    alpha_deg, beta_deg = _dataset_degrees(elevation_units, azimuth_units, augment)
    yaw, pitch = float(-alpha_deg), float(beta_deg)
    if pitch < -90.0:
        yaw, pitch = yaw + 180.0, -180.0 - pitch
    return CameraDirection(yaw, pitch)


def parse_direction_curve(text: str, file_format: str) -> DirectionCurve:
    """Read a curve from the text of a JSON or CSV direction file (format: ``result_files``).

    Args:
        text: the file's content.
        file_format: ``"json"`` or ``"csv"``.

    Returns:
        The validated curve.

    Raises:
        DirectionError: naming the field and the entry (JSON index, CSV line) that is wrong.
    """
    try:
        return DirectionCurve(*result_files.parse_curve(text, file_format))
    except result_files.CurveError as error:
        raise DirectionError(str(error)) from None


def format_direction_curve(curve: DirectionCurve, file_format: str) -> str:
    """Write a curve as the text of a JSON or CSV direction file (floats round-trip exactly).

    Args:
        curve: the curve to write.
        file_format: ``"json"`` or ``"csv"``.

    Returns:
        The file content.
    """
    try:
        return result_files.format_curve(_columns(curve), file_format)
    except result_files.CurveError as error:
        raise DirectionError(str(error)) from None


def load_direction_curve(path: str | Path) -> DirectionCurve:
    """Load a direction curve from a ``.json`` or ``.csv`` file.

    Raises:
        DirectionError: missing file, unknown suffix, or bad content; the message starts with the path.
    """
    try:
        columns = result_files.read_curve_file(path)
    except result_files.CurveError as error:
        raise DirectionError(str(error)) from None
    return DirectionCurve(*columns)


def save_direction_curve(curve: DirectionCurve, path: str | Path) -> None:
    """Save a direction curve as ``.json`` or ``.csv`` (by the suffix), replacing the file atomically."""
    try:
        result_files.write_curve_file(path, _columns(curve), overwrite=True)
    except result_files.CurveError as error:
        raise DirectionError(str(error)) from None


def _columns(curve: DirectionCurve) -> result_files.CurveColumns:
    return result_files.CurveColumns(curve.times_s, curve.yaws_deg, curve.pitches_deg)


def _dataset_degrees(elevation_units: int, azimuth_units: int, augment: bool) -> tuple[int, int]:
    """α = 2a − 179 and β = 89 − 2e in whole degrees."""
    e = _units("elevation_units", elevation_units, ELEVATION_UNITS_MAX)
    a = _units("azimuth_units", azimuth_units, AZIMUTH_UNITS_MAX)
    if augment:
        a += AUGMENT_AZIMUTH_UNITS
        if a > AZIMUTH_UNITS_MAX:
            a -= 180
    return 2 * a - 179, 89 - 2 * e


def _units(name: str, value: int, maximum: int) -> int:
    try:
        units = operator.index(value)
    except TypeError:
        raise DirectionError(f"{name} must be an integer number of 2° units, got {value!r}") from None
    if not 0 <= units <= maximum:
        raise DirectionError(f"{name} must lie in 0..{maximum}, got {units}")
    return units


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DirectionError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise DirectionError(f"{name} must be finite, got {number}")
    return number


def _check_pitch(name: str, pitch: float) -> None:
    if not -90.0 <= pitch <= 90.0:
        raise DirectionError(f"{name} must lie in [-90, 90] degrees (positive up), got {pitch}")


def _checked_window(start_s: float, end_s: float) -> tuple[float, float]:
    start, end = _finite("start_s", start_s), _finite("end_s", end_s)
    if end < start:
        raise DirectionError(f"window end_s ({end}) is before start_s ({start})")
    return start, end


def _float32_vector(x: float, y: float, z: float) -> npt.NDArray[np.float32]:
    return np.array([x, y, z], dtype=np.float64).astype(np.float32)
