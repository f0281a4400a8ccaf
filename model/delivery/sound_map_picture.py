"""Pictures of a sound map: heat colours blended over the camera's picture, or over a panorama.

Why: one glance should tell whether the sound sits where the picture says it should. The camera
picture shows the heat over the video frame with a ring at the loudest direction; the panorama shows
the whole sphere, the video frame pasted where the camera looks (outlined), and the same ring, so a
source outside the frame is seen too. A 360° (equirectangular) video is its own panorama: the heat
goes over its frame, the AmbiX front on the centre column (``EquirectPainter``).

Colours follow matplotlib's perceptually uniform 'inferno' (nine anchors, linearly interpolated):
dark for quiet, pale yellow for the loudest direction; the heat is blended with an opacity that
grows with the level, so quiet regions leave the picture visible. Pure numpy, uint8 RGB pictures.

Shapes: H x W pictures, E x A level maps (``sound_map.map_grid``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .sound_map import (
    CameraView,
    map_peak,
    panorama_directions,
    panorama_pixels,
    sample_map,
    view_directions,
    view_pixels,
)

# matplotlib.colormaps['inferno'] at 0, 1/8, ..., 1, as 8-bit RGB.
INFERNO = np.array(
    [
        [0, 0, 4],
        [33, 12, 74],
        [87, 16, 110],
        [138, 34, 106],
        [188, 55, 84],
        [228, 90, 49],
        [249, 142, 9],
        [249, 203, 53],
        [252, 255, 164],
    ],
    dtype=np.float64,
)
MARKER_COLOUR = (0, 255, 255)  # cyan: absent from inferno, so the ring never blends into the heat
OUTLINE_COLOUR = (255, 255, 255)
_PANORAMA_BACKGROUND = 40  # dark grey, so the sphere outside the frame reads as "no picture"


def colorize(levels: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """Inferno colours of levels in [0, 1] (clipped): ``[...]`` -> ``[..., 3]`` uint8."""
    scaled = np.clip(np.asarray(levels, dtype=np.float64), 0.0, 1.0) * (len(INFERNO) - 1)
    low = np.minimum(np.floor(scaled).astype(np.int64), len(INFERNO) - 2)
    frac = (scaled - low)[..., None]
    colours = INFERNO[low] * (1 - frac) + INFERNO[low + 1] * frac
    return np.rint(colours).astype(np.uint8)


def blend_heat(
    picture: npt.ArrayLike, levels: npt.ArrayLike, max_alpha: float = 0.6
) -> npt.NDArray[np.uint8]:
    """Alpha-blend heat colours over a picture; opacity is ``max_alpha · level``.

    Args:
        picture: ``[H, W, 3]`` uint8 RGB.
        levels: ``[H, W]`` in [0, 1].
        max_alpha: opacity at level 1.

    Returns:
        ``[H, W, 3]`` uint8.
    """
    image = np.asarray(picture)
    heat = np.clip(np.asarray(levels, dtype=np.float64), 0.0, 1.0)
    if image.ndim != 3 or image.shape[2] != 3 or heat.shape != image.shape[:2]:
        raise ValueError(
            f"expected a picture [H, W, 3] and levels [H, W], got {image.shape} and {heat.shape}"
        )
    alpha = (max_alpha * heat)[..., None]
    blended = image.astype(np.float64) * (1 - alpha) + colorize(heat).astype(np.float64) * alpha
    return np.rint(blended).astype(np.uint8)


def draw_ring(
    picture: npt.NDArray[np.uint8],
    x: float,
    y: float,
    radius: float,
    colour: tuple[int, int, int] = MARKER_COLOUR,
) -> npt.NDArray[np.uint8]:
    """A ring of about 2 px width centred on continuous pixel coordinates (x, y), in place; clipped."""
    height, width = picture.shape[:2]
    x0, x1 = max(0, int(np.floor(x - radius - 2))), min(width, int(np.ceil(x + radius + 3)))
    y0, y1 = max(0, int(np.floor(y - radius - 2))), min(height, int(np.ceil(y + radius + 3)))
    if x0 >= x1 or y0 >= y1:
        return picture
    yy, xx = np.mgrid[y0:y1, x0:x1]
    ring = np.abs(np.hypot(xx - x, yy - y) - radius) <= 1.0
    picture[y0:y1, x0:x1][ring] = colour
    return picture


class CameraPainter:
    """Heat over the camera's own picture; the camera's geometry is computed once per clip."""

    def __init__(self, view: CameraView, max_alpha: float = 0.6) -> None:
        self.view = view
        self.max_alpha = max_alpha
        self._azimuths, self._elevations = view_directions(view)  # [H, W] each

    def __call__(self, frame: npt.ArrayLike, levels: npt.ArrayLike) -> npt.NDArray[np.uint8]:
        """Picture of one moment.

        Args:
            frame: ``[H, W, 3]`` uint8, the video frame at the camera's picture size.
            levels: ``[E, A]`` heat levels in [0, 1] on ``map_grid``.

        Returns:
            ``[H, W, 3]`` uint8 with the heat and, if the loudest direction is in view, a ring on it.
        """
        level_map = np.asarray(levels, dtype=np.float64)
        heat = sample_map(level_map, self._azimuths, self._elevations)  # [H, W]
        picture = blend_heat(frame, heat, self.max_alpha)
        peak = map_peak(level_map)
        if peak is not None:
            where = view_pixels(self.view, *peak)
            if (
                where.in_front
                and -0.5 <= where.x <= self.view.width - 0.5
                and -0.5 <= where.y <= self.view.height - 0.5
            ):
                draw_ring(picture, float(where.x), float(where.y), _ring_radius(self.view.width))
        return picture


class PanoramaPainter:
    """Heat over the whole sphere, with the camera's picture pasted (and outlined) where it looks."""

    def __init__(self, view: CameraView, width: int, max_alpha: float = 0.6) -> None:
        self.view = view
        self.width, self.height = width, width // 2
        self.max_alpha = max_alpha
        self._azimuths, self._elevations = panorama_directions(self.width, self.height)  # [H, W] each
        where = view_pixels(view, self._azimuths, self._elevations)
        columns, rows = np.rint(where.x), np.rint(where.y)
        self._inside = (
            where.in_front & (columns >= 0) & (columns < view.width) & (rows >= 0) & (rows < view.height)
        )
        self._source_rows = np.where(self._inside, rows, 0).astype(np.int64)  # nearest camera pixel
        self._source_columns = np.where(self._inside, columns, 0).astype(np.int64)
        self._outline = self._inside & ~_eroded(self._inside)

    def __call__(self, frame: npt.ArrayLike, levels: npt.ArrayLike) -> npt.NDArray[np.uint8]:
        """Panorama of one moment.

        Args:
            frame: ``[h, w, 3]`` uint8 video frame at the camera view's size.
            levels: ``[E, A]`` heat levels on ``map_grid``.

        Returns:
            ``[width / 2, width, 3]`` uint8.
        """
        image = np.asarray(frame)
        if image.shape[:2] != (self.view.height, self.view.width):
            raise ValueError(
                f"frame of shape {image.shape} does not match the view {self.view.width}x{self.view.height}"
            )
        picture = np.full((self.height, self.width, 3), _PANORAMA_BACKGROUND, np.uint8)
        picture[self._inside] = image[self._source_rows[self._inside], self._source_columns[self._inside]]
        return _sphere_heat(picture, levels, self._azimuths, self._elevations, self.max_alpha, self._outline)


class EquirectPainter:
    """Heat over an equirectangular 360° frame: the picture already covers the sphere.

    ``pose_yaw`` (radians) is the spherical metadata's pose: the projection is turned that far to the
    left, so the frame's pixel at azimuth ``a`` shows the sound field's (world) azimuth ``a + pose_yaw``;
    with 0 the AmbiX front is the centre column.
    """

    def __init__(self, width: int, max_alpha: float = 0.6, pose_yaw: float = 0.0) -> None:
        self.width, self.height = width, width // 2
        self.max_alpha = max_alpha
        self.pose_yaw = pose_yaw
        azimuths, self._elevations = panorama_directions(self.width, self.height)  # [H, W] each
        self._azimuths = azimuths + pose_yaw  # world azimuths (sample_map wraps them)

    def __call__(self, frame: npt.ArrayLike, levels: npt.ArrayLike) -> npt.NDArray[np.uint8]:
        """Panorama of one moment.

        Args:
            frame: ``[width / 2, width, 3]`` uint8, the 360° frame resized to the picture.
            levels: ``[E, A]`` heat levels on ``map_grid``.

        Returns:
            ``[width / 2, width, 3]`` uint8 with the heat and a ring at the loudest direction.
        """
        image = np.asarray(frame)
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame of shape {image.shape} is not a {self.width}x{self.height} panorama")
        return _sphere_heat(
            image, levels, self._azimuths, self._elevations, self.max_alpha, pose_yaw=self.pose_yaw
        )


def _sphere_heat(
    picture: npt.NDArray[np.uint8],
    levels: npt.ArrayLike,
    azimuths: npt.NDArray[np.float64],
    elevations: npt.NDArray[np.float64],
    max_alpha: float,
    outline: npt.NDArray[np.bool_] | None = None,
    *,
    pose_yaw: float = 0.0,
) -> npt.NDArray[np.uint8]:
    """Heat over an equirectangular picture, an optional outline, and a ring at the loudest direction.

    ``azimuths`` are the sound field's directions at each pixel; the picture's own azimuths are
    ``pose_yaw`` less (see ``EquirectPainter``).
    """
    level_map = np.asarray(levels, dtype=np.float64)
    painted = blend_heat(picture, sample_map(level_map, azimuths, elevations), max_alpha)
    if outline is not None:
        painted[outline] = OUTLINE_COLOUR
    peak = map_peak(level_map)
    if peak is not None:
        height, width = painted.shape[:2]
        x, y = panorama_pixels(peak[0] - pose_yaw, peak[1], width, height)
        draw_ring(painted, float(x), float(y), _ring_radius(width))
    return painted


def _ring_radius(width: int) -> float:
    return max(4.0, width / 40)


def _eroded(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` whose four neighbours are in it too (azimuth wraps at the picture's sides)."""
    inner = mask & np.roll(mask, 1, axis=1) & np.roll(mask, -1, axis=1)
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    return inner
