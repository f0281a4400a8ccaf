"""One adapter from a job to a :class:`GenerationRequest`, shared by every way a clip gets generated.

A job is a media range, a camera direction (yaw/pitch, or a direction-curve file that overrides them)
and options. ``visage generate`` gives typed values, the daemon's engine gives a JSON object of options
(checked here for unknown names and wrong types first), and ``visage fill`` runs the daemon's engine in
its own process; all of them call :func:`job_request`, so a job is refused alike, with the same message,
however it arrived. Nothing here loads a model or opens the media: the output and media checks are
:func:`pipeline.validate_request`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from visage.model.delivery.binaural_preview import PREVIEW_RENDERERS
from visage.model.features.direction import CameraDirection, DirectionSource, load_direction_curve
from visage.model.network.generation import GUIDANCE_MODES, Guidance, Sampling

from .panorama_input import LOOK_MODES
from .pipeline import GenerationRequest

SAMPLE_FORMATS = {"pcm24": "PCM_24", "float": "FLOAT"}  # option value -> WAV subtype

# Each option's JSON type; the order is the one error messages list them in.
_OPTION_TYPES: dict[str, type] = {
    "guidance_mode": str,
    "direction_scale": float,
    "format": str,
    "top_k": int,
    "temperature": float,
    "binaural_preview": bool,
    "preview_renderer": str,
    "loudness_target": float,
    "equirect": bool,
    "look": str,
}


class BadOption(ValueError):
    """An option of a job has an unknown name, the wrong type or a value out of range."""


@dataclass(frozen=True)
class JobOptions:
    """What a job may set besides its media, range, direction, guidance scale, seed and sample rate.

    Attributes:
        guidance_mode: joint, directional, visual, dual or none (:class:`Guidance`).
        direction_scale: dual mode's directional scale; None = the guidance scale.
        format: ``pcm24`` or ``float`` (:data:`SAMPLE_FORMATS`).
        top_k, temperature: sampling (official: 256, 1.0).
        binaural_preview: also write the headphone preview beside the output.
        preview_renderer: the preview's decoder (:data:`PREVIEW_RENDERERS`: ``spherical-head``, ``youtube``).
        loudness_target: LUFS that W is normalised to (one gain for all channels); None keeps the level.
        equirect: read the video as a 360° equirectangular panorama even without spherical metadata.
        look: None, or ``"auto"``: each window of a 360° video looks where things move.
    """

    guidance_mode: str = "joint"
    direction_scale: float | None = None
    format: str = "pcm24"
    top_k: int = 256
    temperature: float = 1.0
    binaural_preview: bool = False
    preview_renderer: str = PREVIEW_RENDERERS[0]
    loudness_target: float | None = None
    equirect: bool = False
    look: str | None = None

    @classmethod
    def from_json(cls, options: Mapping[str, Any], defaults: JobOptions | None = None) -> JobOptions:
        """Options from a job's JSON object; keys it leaves out keep ``defaults``.

        Raises:
            BadOption: an unknown key, or a value of the wrong JSON type (an integer counts as a float,
                a boolean never as a number).
        """
        unknown = sorted(set(options) - set(_OPTION_TYPES))
        if unknown:
            raise BadOption(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(_OPTION_TYPES)}")
        typed = {key: _typed(key, value, _OPTION_TYPES[key]) for key, value in options.items()}
        return replace(defaults or cls(), **typed)


def job_request(
    media: Path,
    *,
    output: Path | None,
    start: float = 0.0,
    end: float | None = None,
    yaw_deg: float = 0.0,
    pitch_deg: float = 0.0,
    direction_curve: Path | None = None,
    guidance_scale: float = 2.5,
    seed: int | None = None,
    sample_rate: int = 48000,
    overwrite: bool = False,
    options: JobOptions | None = None,
    metadata: Mapping[str, Any] | None = None,
    save_view: Path | None = None,
) -> GenerationRequest:
    """The pipeline request for one job.

    Args:
        media: the video file.
        output: the WAV to write; None only returns the audio.
        start, end: media seconds; ``end=None`` = the end of the video.
        yaw_deg, pitch_deg: camera direction (AmbiX: yaw positive left, pitch positive up).
        direction_curve: a JSON/CSV direction file; when given, it overrides yaw/pitch.
        guidance_scale: classifier-free guidance scale (official convention c + s (c - u)).
        seed: sampling seed; None = a random one, recorded in the sidecar.
        sample_rate: output rate in Hz.
        overwrite: replace an existing output.
        options: the rest (:class:`JobOptions`; the defaults when None).
        metadata: keys recorded under ``request`` in the sidecar.
        save_view: also write the frames the model saw to this MP4 (``visage generate --save-view``).

    Raises:
        BadOption: a guidance mode, format, guidance scale, top_k, temperature or look that cannot be
            used.
        DirectionError: a direction out of range, or a direction file missing, unreadable or malformed.
    """
    opts = options or JobOptions()
    if opts.guidance_mode not in GUIDANCE_MODES:
        raise BadOption(
            f"option guidance_mode must be one of {', '.join(GUIDANCE_MODES)}, got {opts.guidance_mode!r}"
        )
    if opts.format not in SAMPLE_FORMATS:
        raise BadOption(f"option format must be {' or '.join(SAMPLE_FORMATS)}, got {opts.format!r}")
    if opts.preview_renderer not in PREVIEW_RENDERERS:
        raise BadOption(
            f"option preview_renderer must be {' or '.join(PREVIEW_RENDERERS)}, got {opts.preview_renderer!r}"
        )
    if opts.look is not None and opts.look not in LOOK_MODES:
        raise BadOption(f"option look must be {' or '.join(LOOK_MODES)}, got {opts.look!r}")
    try:
        guidance = Guidance(opts.guidance_mode, guidance_scale, opts.direction_scale)
        Sampling(top_k=opts.top_k, temperature=opts.temperature)  # the sampler's own range checks
    except ValueError as exc:
        raise BadOption(str(exc)) from None
    return GenerationRequest(
        media=Path(media),
        start=start,
        end=end,
        direction=_direction(yaw_deg, pitch_deg, direction_curve),
        guidance=guidance,
        seed=seed,
        output=None if output is None else Path(output),
        sample_rate=sample_rate,
        subtype=SAMPLE_FORMATS[opts.format],
        overwrite=overwrite,
        top_k=opts.top_k,
        temperature=opts.temperature,
        metadata=dict(metadata or {}),
        binaural_preview=opts.binaural_preview,
        preview_renderer=opts.preview_renderer,
        loudness_target=opts.loudness_target,
        equirect=opts.equirect,
        look=opts.look,
        save_view=None if save_view is None else Path(save_view),
    )


def _direction(yaw_deg: float, pitch_deg: float, curve: Path | None) -> DirectionSource:
    return CameraDirection(yaw_deg, pitch_deg) if curve is None else load_direction_curve(curve)


def _typed(key: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BadOption(f"option {key} must be a {kind.__name__}, got {value!r}")
    return value
