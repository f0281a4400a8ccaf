"""Procedural field-of-view clips with ground-truth ambisonics: a moving, pulsing shape that sounds.

A scene is a camera direction and, in its field of view, one shape (disc, square or diamond) of some
colour on a textured background. The shape drifts across the view, bouncing off the edges, and pulses:
its size and its sound follow the same envelope. Its sound is the carrier of
:mod:`~visage.model.audio.carrier_codec` that belongs to its shape (so the shape sets the timbre), placed at
the direction of the shape's centre as seen through the camera (``equirect.pixel_directions``), so it moves
with the shape. An ambient bed (carrier 0) comes from a fixed direction of the world,
:data:`AMBIENT_DIRECTION`, whatever the camera looks at, as a river or a road would: an off-screen sound
that only a model which knows the camera direction can place.

So the sound field depends on the camera direction (which places both sources), on where the shape is in
the picture (which the patch energy map shows) and on the shape (its timbre): what ViSAGe's inputs carry.

Pure: a :class:`Scene` and numpy arrays in, arrays out. Shapes: F frames, S view side, N samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from visage.model.audio.ambisonics import sh_gains
from visage.model.features.direction import CameraDirection
from visage.model.features.equirect import pixel_directions

SHAPES = ("disc", "square", "diamond")
AMBIENT_DIRECTION = (math.radians(135.0), math.radians(35.0))  # azimuth, elevation of the ambient bed
SOURCE_LEVEL = 0.3  # peak amplitude of the shape's sound
AMBIENT_LEVEL = 0.25  # amplitude of the ambient bed (the shape's sound pulses, so it is louder on average)
FOV_DEG = 90.0
_MARGIN = 0.2  # the shape's centre stays this fraction of the view away from the edges


@dataclass(frozen=True)
class Scene:
    """One synthetic clip.

    Attributes:
        camera: where the camera looks (AmbiX degrees).
        shape: index into :data:`SHAPES`; its sound is carrier ``shape + 1``.
        color, background: RGB.
        position: (row, col) of the shape's centre at t = 0, in view pixels of a 224 view.
        velocity: (rows, cols) per second.
        radius: base half-size in pixels.
        pulse_hz, phase: the envelope's rate and phase.
        texture_seed: seed of the background's fixed texture.
    """

    camera: CameraDirection
    shape: int
    color: tuple[int, int, int]
    background: tuple[int, int, int]
    position: tuple[float, float]
    velocity: tuple[float, float]
    radius: float
    pulse_hz: float
    phase: float
    texture_seed: int


def random_scene(rng: np.random.Generator, size: int = 224) -> Scene:
    """A scene with every property drawn from ``rng`` (camera anywhere in azimuth, pitch within ±30°)."""
    lo, hi = _MARGIN * size, (1 - _MARGIN) * size
    color = rng.integers(0, 256, 3)
    background = (255 - color + rng.integers(-40, 41, 3)).clip(0, 255)  # contrasting
    return Scene(
        camera=CameraDirection(float(rng.uniform(-180, 180)), float(rng.uniform(-30, 30))),
        shape=int(rng.integers(len(SHAPES))),
        color=tuple(int(c) for c in color),  # type: ignore[arg-type]
        background=tuple(int(c) for c in background),  # type: ignore[arg-type]
        position=(float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi))),
        velocity=(float(rng.uniform(-40, 40)), float(rng.uniform(-40, 40))),
        radius=float(rng.uniform(14, 22)),
        pulse_hz=float(rng.uniform(0.8, 2.5)),
        phase=float(rng.uniform(0, 2 * math.pi)),
        texture_seed=int(rng.integers(2**31)),
    )


def envelope(scene: Scene, times: np.ndarray) -> np.ndarray:
    """The pulse shared by the shape's size and its sound, in [0.1, 1]."""
    wave = 0.5 + 0.5 * np.sin(2 * math.pi * scene.pulse_hz * times + scene.phase)
    return 0.1 + 0.9 * wave**2


def track(scene: Scene, times: np.ndarray, size: int = 224) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the shape's centre at ``times`` (bouncing inside the margins)."""
    lo, hi = _MARGIN * size, (1 - _MARGIN) * size
    span = hi - lo

    def bounce(start: float, speed: float) -> np.ndarray:
        x = (start - lo + speed * times) % (2 * span)
        return lo + np.where(x > span, 2 * span - x, x)

    return bounce(scene.position[0], scene.velocity[0]), bounce(scene.position[1], scene.velocity[1])


def render_frames(scene: Scene, num_frames: int, fps: int = 4, size: int = 224) -> np.ndarray:
    """The field-of-view video: ``[F, S, S, 3]`` uint8 RGB, frame k at time k / fps."""
    times = np.arange(num_frames) / fps
    rows, cols = track(scene, times, size)
    radii = scene.radius * (0.7 + 0.6 * envelope(scene, times))
    texture = np.random.default_rng(scene.texture_seed).integers(-18, 19, (size, size, 1))
    base = np.clip(np.asarray(scene.background)[None, None, :] + texture, 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for k in range(num_frames):
        dy, dx = yy - rows[k], xx - cols[k]
        if SHAPES[scene.shape] == "disc":
            inside = dy**2 + dx**2 <= radii[k] ** 2
        elif SHAPES[scene.shape] == "square":
            inside = np.maximum(np.abs(dy), np.abs(dx)) <= radii[k] * 0.85
        else:
            inside = np.abs(dy) + np.abs(dx) <= radii[k] * 1.2
        frames[k] = base
        frames[k][inside] = scene.color
    return frames


def render_foa(
    scene: Scene,
    carriers: np.ndarray,
    sample_rate: int,
    size: int = 224,
    *,
    ambient_level: float = AMBIENT_LEVEL,
) -> np.ndarray:
    """Ground-truth AmbiX ``[4, N]`` float32: the shape's carrier at its direction, plus the ambient bed.

    Args:
        carriers: ``[Q, N]`` carrier signals (``CarrierCodec.carrier_signal``), Q > number of shapes; the
            clip lasts N samples.
        sample_rate: of ``carriers``.
        ambient_level: amplitude of the ambient bed (0: the shape alone).
    """
    n = carriers.shape[1]
    times = np.arange(n) / sample_rate
    control = np.arange(0.0, n / sample_rate + 0.01, 0.01)  # direction updated every 10 ms
    rows, cols = track(scene, control, size)
    az, el = pixel_directions(rows, cols, scene.camera, fov_deg=FOV_DEG, size=size)
    gains = sh_gains(az, el)  # [M, 4]
    gains = np.stack([np.interp(times, control, gains[:, c]) for c in range(4)])  # [4, N]
    source = SOURCE_LEVEL * envelope(scene, times) * carriers[scene.shape + 1]
    ambient = ambient_level * carriers[0]
    foa = gains * source[None, :] + sh_gains(*AMBIENT_DIRECTION)[:, None] * ambient[None, :]
    return foa.astype(np.float32)
