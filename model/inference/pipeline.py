"""The facade everything else calls: video clips + camera directions -> AmbiX audio (and files).

``VideoToAmbisonics.generate(requests)`` takes a batch of requests (media file, time range, direction
or direction curve, options) and runs: frames (4 fps, 224x224) -> CLIP frame embeddings and patch
tokens -> patch energy maps -> windows of guided generation (all requests' k-th windows in one batch)
-> DAC decoding of each clip's whole code stream -> resampling to the output rate, exactly the
requested number of samples -> an atomically written WAV with a JSON sidecar that records how to
reproduce it. The daemon, the OTIO batch and the command line all go through here.

A 360° video (``panorama_input``: spherical metadata, or ``equirect``) gives the model what the dataset
gave it in training: per window, the 90° view at the window's direction (``panorama_views``), its own
CLIP features and energy map. The direction is the world direction the view looks at, so the result is
world-fixed (front = the panorama's centre column), as for flat video, where the direction says where
the camera looked in the sound field's frame.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visage.model.audio.codec import DacCodec, FoaCodec
from visage.model.audio.loudness import LoudnessError, measure_loudness_if_possible, normalize_loudness
from visage.model.delivery.binaural_preview import (
    WrittenPreview,
    check_preview_output,
    check_renderer,
    preview_path,
    render_binaural_preview,
    write_preview_file,
)
from visage.model.features.direction import (
    CameraDirection,
    DirectionCurve,
    DirectionSource,
    direction_for_window,
    model_direction_vector,
)
from visage.model.features.energy_map import energy_map
from visage.model.features.vision import DEFAULT_CLIP_MODEL, ClipVisionEncoder
from visage.model.features.windows import Window, plan_windows
from visage.model.files.audio_io import WrittenAudio, check_output_path, resample, write_ambix
from visage.model.files.output_files import check_new_output
from visage.model.files.panorama_video import write_view_clip
from visage.model.files.result_files import INPUT_KEY, PREVIEW_KEY
from visage.model.files.video_io import RangeError, VideoError, probe_video, read_clip_frames
from visage.model.network.checkpoint import DEFAULT_REPO_ID, load_pretrained
from visage.model.network.fast_decoder import fast_kind, make_fast
from visage.model.network.generation import Guidance, Sampling, generate
from visage.model.network.visage import Visage

from .device_choice import resolve_device, resolve_dtype
from .kernel_store import use_store
from .panorama_input import PanoramaInput, panorama_input
from .panorama_views import saved_view_frames, window_views
from .tiny_random_bundle import TINY_RANDOM, tiny_random_folder

log = logging.getLogger(__name__)

PACKAGE_VERSION = "0.1.0"

# Share of a request's progress spent in each stage (for progress bars).
_STAGES = {"features": (0.0, 0.1), "generate": (0.1, 0.85), "decode": (0.85, 0.97), "write": (0.97, 1.0)}

Progress = Callable[[int, float, str], None]  # (request index, fraction 0..1, stage)


class GenerationCancelled(Exception):
    """The request was cancelled before it finished; nothing was written."""


@dataclass(frozen=True)
class GenerationRequest:
    """One clip to generate.

    Attributes:
        media: video file.
        start, end: media seconds; ``end=None`` = the end of the video.
        direction: a fixed camera direction or a curve over media time (AmbiX yaw/pitch, degrees).
        guidance: classifier-free guidance (mode and scale; official: joint, 2.5).
        seed: sampling seed; None picks one, recorded in the metadata so the result can be remade.
        output: WAV to write, or None to only return the audio.
        sample_rate: output rate (48 kHz default; 44100 keeps the codec's rate, no resampling).
        subtype: "PCM_24" or "FLOAT".
        overwrite: replace an existing output.
        top_k, temperature: sampling (official: 256, 1.0).
        metadata: extra keys recorded in the sidecar (e.g. a request id).
        binaural_preview: also write ``<output stem>.binaural.wav``, a stereo render for headphones
            facing the camera (the field's front for a direction curve), named under ``"preview"`` in
            the AmbiX sidecar (needs ``output``).
        preview_renderer: the preview's decoder: ``spherical-head`` (the built-in head) or ``youtube``
            (the decoder YouTube plays 360° videos with).
        loudness_target: scale all four channels together so that W reaches this integrated loudness
            (LUFS, e.g. -23); None keeps the model's level. The sidecar records the loudness either way.
        equirect: read the video as an equirectangular 360° panorama even without spherical metadata
            (``panorama_input`` has the rules; metadata makes it one anyway).
        look: None, or ``"auto"``: each window of a 360° video looks where things move.
        save_view: also write the frames the model saw (4 fps MP4: the views of a 360° video, the
            cropped frames of a flat one); replaced only with ``overwrite``.
    """

    media: Path
    start: float = 0.0
    end: float | None = None
    direction: DirectionSource = field(default_factory=lambda: CameraDirection(0.0, 0.0))
    guidance: Guidance = field(default_factory=Guidance)
    seed: int | None = None
    output: Path | None = None
    sample_rate: int = 48000
    subtype: str = "PCM_24"
    overwrite: bool = False
    top_k: int = 256
    temperature: float = 1.0
    metadata: Mapping[str, Any] = field(default_factory=dict)
    binaural_preview: bool = False
    preview_renderer: str = "spherical-head"
    loudness_target: float | None = None
    equirect: bool = False
    look: str | None = None
    save_view: Path | None = None


@dataclass
class GenerationOutput:
    """A finished request: the audio [4, N] float32 (W, Y, Z, X) at ``sample_rate`` and where it went."""

    request: GenerationRequest
    audio: np.ndarray
    sample_rate: int
    metadata: dict[str, Any]
    written: WrittenAudio | None = None
    preview: WrittenPreview | None = None


@dataclass
class _Plan:
    """A request resolved: its range, windows, features per window and growing code stream."""

    index: int
    request: GenerationRequest
    start: float
    end: float
    seed: int
    windows: list[Window]
    source: PanoramaInput
    directions: list[CameraDirection] = field(default_factory=list)  # per window, world frame
    clips: list[torch.Tensor] = field(default_factory=list)  # per window [F_k, 512]
    energies: list[torch.Tensor] = field(default_factory=list)  # per window [F_k, 49]
    views: list[dict[str, Any]] = field(default_factory=list)  # 360° input: per window, for the sidecar
    seen: np.ndarray | None = None  # [F, S, S, 3] frames the model saw, kept for save_view
    codes: torch.Tensor | None = None  # [T, 36]

    @property
    def duration(self) -> float:
        return self.end - self.start


def validate_request(request: GenerationRequest) -> tuple[float, float]:
    """Check a request without loading any model; returns its (start, end) in media seconds.

    Raises the specific error of the first problem: the output cannot be written (exists, folder
    missing or read-only), the media is missing / not a video / has no video stream, the range is
    empty, negative or beyond the video, the sample rate is not positive, top_k / temperature are
    out of range, or the video cannot be read as asked (``panorama_input.UnsupportedVideo``: cubemap or
    stereo 360°, ``look`` on a flat video, ...). Directions are checked when they are built
    (:class:`CameraDirection`, :class:`DirectionCurve`).
    """
    start, end, _ = _checked(request)
    return start, end


def _checked(request: GenerationRequest) -> tuple[float, float, PanoramaInput]:
    """:func:`validate_request`'s checks; also says how the video is read."""
    if request.output is not None:
        check_output_path(request.output, overwrite=request.overwrite)
    if request.binaural_preview:
        if request.output is None:
            raise ValueError("binaural_preview needs an output file to sit beside")
        check_preview_output(preview_path(request.output), request.output, overwrite=request.overwrite)
        check_renderer(request.preview_renderer)
    if request.loudness_target is not None and not -70.0 <= request.loudness_target <= 0.0:
        raise LoudnessError(f"loudness_target must be between -70 and 0 LUFS, got {request.loudness_target}")
    if request.sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {request.sample_rate}")
    if request.subtype not in ("PCM_24", "FLOAT"):
        raise ValueError(f"subtype must be PCM_24 or FLOAT, got {request.subtype!r}")
    if request.save_view is not None:
        if _same_file(request.save_view, request.media):  # even overwrite never replaces the input
            raise ValueError(
                f"{request.save_view}: the saved views would replace the input video; name another file"
            )
        check_new_output(request.save_view, suffixes=(".mp4",), overwrite=request.overwrite)
    Sampling(top_k=request.top_k, temperature=request.temperature)  # its checks, before any model runs
    info = probe_video(request.media)
    if not info.has_video:
        raise VideoError(f"{request.media}: no video stream; ViSAGe needs the picture")
    start = float(request.start)
    end = info.duration if request.end is None else float(request.end)
    if not (np.isfinite(start) and np.isfinite(end)):
        raise RangeError(f"{request.media}: start and end must be finite, got {start}, {end}")
    if start < 0:
        raise RangeError(f"{request.media}: start must be >= 0 s, got {start} s")
    if start >= end:
        raise RangeError(f"{request.media}: start ({start} s) must be before end ({end} s)")
    half_frame = 0.5 / float(info.frame_rate) if info.frame_rate else 0.0
    if end > info.duration + half_frame:
        raise RangeError(
            f"{request.media}: range [{start}, {end}) s goes beyond the end of the video "
            f"at {info.duration:.3f} s"
        )
    return start, end, panorama_input(request.media, info, equirect=request.equirect, look=request.look)


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one existing file (symbolic or hard links included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # either is missing: they cannot be one file
        return False


class VideoToAmbisonics:
    """Hosts the three models (ViSAGe, CLIP, DAC) and turns requests into AmbiX audio.

    Args:
        model: the ViSAGe network.
        vision: CLIP image encoder.
        codec: the FOA codec over DAC.
        checkpoint: name recorded in metadata (repo id, folder or ``tiny-random``).
        max_batch: windows generated together at most.
        batch_invariant: generate each window as its own decoder batch (the default), so that a request
            with a seed gives the same audio whatever it shares a batch with; False batches the decoder's
            matrix products for throughput, and a result may then change in its last bits with its batch.
    """

    def __init__(
        self,
        model: Visage,
        vision: ClipVisionEncoder,
        codec: FoaCodec,
        *,
        checkpoint: str,
        max_batch: int = 16,
        batch_invariant: bool = True,
    ) -> None:
        self.model = model.eval()
        self.vision = vision
        self.codec = codec
        self.checkpoint = checkpoint
        self.max_batch = max_batch
        self.batch_invariant = batch_invariant
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype

    @classmethod
    def load(
        cls,
        checkpoint: str | Path = DEFAULT_REPO_ID,
        *,
        subfolder: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        clip_model: str | Path = DEFAULT_CLIP_MODEL,
        dac_weights: str | Path | None = None,
        local_files_only: bool | None = None,
        max_batch: int = 16,
        batch_invariant: bool = True,
        fast: str | None = None,
    ) -> VideoToAmbisonics:
        """Load everything; ``checkpoint="tiny-random"`` uses offline tiny random models (noise).

        ``fast`` (``bf16`` or ``int8``, default off) stores the decoder's per-step weights that way: faster
        on a CPU, no longer the official model's codes (``network/fast_decoder.py``).
        """
        dev = resolve_device(device)
        dt = resolve_dtype(dtype, dev)
        if str(checkpoint) == TINY_RANDOM:
            folder = tiny_random_folder()
            checkpoint, clip_model, dac_weights = folder / "visage", folder / "clip", folder / "dac.pth"
            name = TINY_RANDOM
        else:
            name = str(checkpoint)
        model = load_pretrained(
            checkpoint, subfolder=subfolder, device=dev, dtype=dt, local_files_only=local_files_only
        )
        if fast is not None:
            model = make_fast(model, fast)
        offline = bool(local_files_only) or os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "yes")
        vision = ClipVisionEncoder.from_pretrained(clip_model, device=dev, local_files_only=offline)
        codec = FoaCodec(DacCodec.load(dac_weights, device=dev))
        use_store()  # this machine's measured few-row kernels, kept in the user cache
        return cls(
            model, vision, codec, checkpoint=name, max_batch=max_batch, batch_invariant=batch_invariant
        )

    # -- the job -----------------------------------------------------------------------------------------

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        progress: Progress | None = None,
        cancelled: Callable[[int], bool] | None = None,
    ) -> list[GenerationOutput | Exception]:
        """Generate every request; each result is an output or the exception that stopped that request.

        A bad request (missing file, bad range, existing output...) fails alone; the others go on.
        ``cancelled(i)`` is polled between stages and decoder steps; a cancelled request ends with
        :class:`GenerationCancelled` and writes nothing.
        """
        report = progress or (lambda i, f, s: None)
        is_cancelled = cancelled or (lambda i: False)
        results: list[GenerationOutput | Exception | None] = [None] * len(requests)
        plans: list[_Plan] = []
        for i, request in enumerate(requests):
            try:
                plans.append(self._plan(i, request))
            except Exception as exc:  # reported per request
                results[i] = exc
        for plan in plans:
            try:
                self._features(plan)
                report(plan.index, _STAGES["features"][1], "features")
            except Exception as exc:
                results[plan.index] = exc
        live = [p for p in plans if results[p.index] is None]
        for group in _group_by(live, lambda p: (p.request.guidance, p.request.top_k, p.request.temperature)):
            failed = self._generate_codes(group, report, is_cancelled)
            for index, error in failed.items():
                results[index] = error
        for plan in live:
            if results[plan.index] is not None:
                continue
            try:
                if is_cancelled(plan.index):
                    raise GenerationCancelled(f"request {plan.index} cancelled")
                results[plan.index] = self._finish(plan, report)
            except Exception as exc:
                results[plan.index] = exc
        return [r if r is not None else RuntimeError("no result") for r in results]

    def _plan(self, index: int, request: GenerationRequest) -> _Plan:
        start, end, source = _checked(request)
        if source.note:  # once per request, at INFO: the sidecar (and visage generate) carry it to the user
            log.info("%s: %s", request.media, source.note)
        seq = self.model.config.sequence
        windows = plan_windows(start, end, seq)
        directions = [
            direction_for_window(
                request.direction,
                start + w.clip_start / seq.clip_frame_rate,
                min(end, start + w.clip_stop / seq.clip_frame_rate),
            )
            for w in windows
        ]
        seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
        return _Plan(index, request, start, end, seed, windows, source, directions)

    @torch.inference_mode()
    def _features(self, plan: _Plan) -> None:
        if plan.source.panorama:
            self._panorama_features(plan)
            return
        frames = read_clip_frames(
            plan.request.media,
            plan.start,
            plan.end,
            fps=self.model.config.clip_frame_rate,
            size=self.vision.image_size,
        )
        features = self.vision(frames.frames)
        clip = features.frame_embeds.float()  # [F, 512]
        energy = energy_map(features.patch_tokens)  # [F, 49]
        plan.clips = [clip[w.clip_start : w.clip_stop] for w in plan.windows]
        plan.energies = [energy[w.clip_start : w.clip_stop] for w in plan.windows]
        if plan.request.save_view is not None:
            plan.seen = frames.frames

    def _panorama_features(self, plan: _Plan) -> None:
        """Each window's view clip of a 360° video, its features computed as for a flat clip of its own."""
        seq = self.model.config.sequence
        views = window_views(
            Path(plan.request.media),
            plan.start,
            plan.end,
            plan.windows,
            plan.directions,
            plan.source,
            look=plan.request.look,
            fps=seq.clip_frame_rate,
            size=self.vision.image_size,
        )
        kept = []
        for k, (window, view) in enumerate(zip(plan.windows, views, strict=True)):
            features = self.vision(view.frames)
            plan.clips.append(features.frame_embeds.float())  # [F_k, 512]
            plan.energies.append(energy_map(features.patch_tokens))  # [F_k, 49]
            plan.directions[k] = view.direction
            plan.views.append(
                {
                    "start_s": plan.start + window.clip_start / seq.clip_frame_rate,
                    "yaw_deg": view.rendered.yaw_deg,
                    "pitch_deg": view.rendered.pitch_deg,
                    "looked": view.looked,
                }
            )
            if plan.request.save_view is not None:
                kept.append(view.frames)
        if kept:
            plan.seen = saved_view_frames(plan.windows, kept)

    def _generate_codes(
        self, plans: list[_Plan], report: Progress, cancelled: Callable[[int], bool]
    ) -> dict[int, Exception]:
        """All windows of these requests, the k-th windows of every request batched together."""
        seq = self.model.config.sequence
        k_rows = self.model.config.num_code_rows
        failed: dict[int, Exception] = {}
        for plan in plans:
            plan.codes = torch.full(
                (plan.windows[-1].code_stop, k_rows), self.model.config.dac_pad_token_id, dtype=torch.long
            )
        rounds = max(len(p.windows) for p in plans)
        for r in range(rounds):
            todo = [p for p in plans if r < len(p.windows) and p.index not in failed]
            for i in [p.index for p in todo if cancelled(p.index)]:
                failed[i] = GenerationCancelled(f"request {i} cancelled")
            todo = [p for p in todo if p.index not in failed]
            for chunk in (todo[i : i + self.max_batch] for i in range(0, len(todo), self.max_batch)):
                self._generate_round(chunk, r, rounds, seq.max_clip_frames, report, cancelled, failed)
        return failed

    def _generate_round(
        self,
        plans: list[_Plan],
        r: int,
        rounds: int,
        max_frames: int,
        report: Progress,
        cancelled: Callable[[int], bool],
        failed: dict[int, Exception],
    ) -> None:
        dev, dt = self.device, self.dtype
        b = len(plans)
        wins = [p.windows[r] for p in plans]
        clip = torch.zeros(b, max_frames, self.model.config.d_clip)
        energy = torch.zeros(b, max_frames, self.model.config.energy_map_size)
        for i, (p, w) in enumerate(zip(plans, wins, strict=True)):
            clip[i, : w.clip_frames] = p.clips[r]
            energy[i, : w.clip_frames] = p.energies[r]
        direction = torch.from_numpy(np.stack([model_direction_vector(p.directions[r]) for p in plans]))
        max_prompt = max(w.prompt for w in wins)
        prompt = None
        if max_prompt:
            prompt = torch.zeros(b, max_prompt, self.model.config.num_code_rows, dtype=torch.long)
            for i, (p, w) in enumerate(zip(plans, wins, strict=True)):
                prompt[i, : w.prompt] = p.codes[w.code_start : w.code_start + w.prompt]  # type: ignore[index]
        generators = [torch.Generator(device=dev).manual_seed(p.seed + 1_000_003 * r) for p in plans]
        lo, hi = _STAGES["generate"]

        def step_progress(done: int, total: int) -> None:
            for p in plans:
                report(p.index, lo + (hi - lo) * (r + done / total) / len(p.windows), "generate")

        result = generate(
            self.model,
            clip.to(dev, dt),
            energy.to(dev, dt),
            direction.to(dev, dt),
            guidance=plans[0].request.guidance,
            top_k=plans[0].request.top_k,
            temperature=plans[0].request.temperature,
            generator=generators,
            frame_counts=[w.clip_frames for w in wins],
            num_frames=[w.generated_frames for w in wins],
            prompt=None if prompt is None else prompt.to(dev),
            prompt_frames=[w.prompt for w in wins],
            progress=step_progress,
            stop_clip=lambda i: cancelled(plans[i].index),  # a cancelled request leaves the batch
            batch_invariant=self.batch_invariant,
        )
        for i, (p, w) in enumerate(zip(plans, wins, strict=True)):
            if i in result.stopped or cancelled(p.index):
                failed[p.index] = GenerationCancelled(f"request {p.index} cancelled")
                continue
            n = w.generated_frames
            p.codes[w.code_start : w.code_start + n] = result.codes[i, :n].cpu()  # type: ignore[index]
            if w.repeat_last:
                p.codes[w.code_start + n : w.code_stop] = result.codes[i, n - 1].cpu()  # type: ignore[index]

    @torch.inference_mode()
    def _finish(self, plan: _Plan, report: Progress) -> GenerationOutput:
        req = plan.request
        lo, hi = _STAGES["generate"][1], _STAGES["decode"][1]

        def decode_progress(fraction: float) -> None:
            report(plan.index, lo + (hi - lo) * fraction, "decode")

        codes = plan.codes[None].to(self.device)  # type: ignore[index]  # [1, T, 36]
        decoded = self.codec.decode(codes, progress=decode_progress)  # [1, 4, T*hop]
        audio44 = decoded[0].float().cpu().numpy()  # [4, T*hop]
        codec_rate = self.codec.sample_rate
        n_codec = round(plan.duration * codec_rate)
        n_out = round(plan.duration * req.sample_rate)
        audio44 = audio44[:, :n_codec]
        audio = (
            audio44
            if req.sample_rate == codec_rate
            else resample(audio44, codec_rate, req.sample_rate, num_samples=n_out)
        )
        metadata = self._metadata(plan, n_out)
        if req.loudness_target is not None:
            normalized = normalize_loudness(audio, req.sample_rate, req.loudness_target)
            audio = normalized.audio
            metadata["loudness_normalization"] = {
                "target_lufs": req.loudness_target,
                "gain_db": round(normalized.gain_db, 3),
            }
        rendered = None
        if req.binaural_preview:
            listener = (  # the field's front when the direction changes from window to window
                req.direction
                if isinstance(req.direction, CameraDirection) and req.look is None
                else CameraDirection(0, 0)
            )
            rendered = render_binaural_preview(
                audio, req.sample_rate, listener, renderer=req.preview_renderer
            )
            loudness = rendered.loudness
        else:
            loudness = measure_loudness_if_possible(audio, req.sample_rate)
        metadata["loudness"] = None if loudness is None else loudness.as_metadata()
        written = preview = None
        if req.save_view is not None and plan.seen is not None:
            write_view_clip(
                req.save_view, plan.seen, self.model.config.clip_frame_rate, overwrite=req.overwrite
            )
        if req.output is not None:
            if rendered is not None:
                metadata[PREVIEW_KEY] = preview_path(req.output).name  # relative to the sidecar's folder
            written = write_ambix(
                req.output,
                audio,
                req.sample_rate,
                subtype=req.subtype,  # type: ignore[arg-type]
                overwrite=req.overwrite,
                metadata=metadata,
            )
            if rendered is not None:
                preview = write_preview_file(
                    preview_path(written.path), rendered, written.path, overwrite=req.overwrite
                )
        report(plan.index, 1.0, "write")
        return GenerationOutput(req, audio, req.sample_rate, metadata, written, preview)

    def _metadata(self, plan: _Plan, samples: int) -> dict[str, Any]:
        req = plan.request
        media = Path(req.media)
        stat = media.stat()
        seq = self.model.config.sequence
        if isinstance(req.direction, DirectionCurve):
            direction: dict[str, Any] = {"curve": True, "samples": len(req.direction.times_s)}
        else:
            direction = {"yaw_deg": req.direction.yaw_deg, "pitch_deg": req.direction.pitch_deg}
        direction["per_window"] = [
            {
                "start_s": plan.start + w.clip_start / seq.clip_frame_rate,
                "yaw_deg": d.yaw_deg,
                "pitch_deg": d.pitch_deg,
            }
            for w, d in zip(plan.windows, plan.directions, strict=True)
        ]
        return {
            "generator": f"visage {PACKAGE_VERSION}",
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "source": {
                "media": str(media.resolve()),
                "size_bytes": stat.st_size,
                "modified": _dt.datetime.fromtimestamp(stat.st_mtime, _dt.timezone.utc).isoformat(),
            },
            "range": {
                "start_s": plan.start,
                "end_s": plan.end,
                "duration_s": plan.duration,
                "samples": samples,
            },
            "direction": direction,
            "model": {
                "checkpoint": self.checkpoint,
                "dtype": str(self.dtype).removeprefix("torch."),
                "device": self.device.type,
                "fast": fast_kind(self.model),
            },
            "guidance": {
                "mode": req.guidance.mode,
                "scale": req.guidance.scale,
                "direction_scale": req.guidance.direction_scale,
            },
            "sampling": {"seed": plan.seed, "top_k": req.top_k, "temperature": req.temperature},
            "windows": len(plan.windows),
            **({"request": dict(req.metadata)} if req.metadata else {}),
            **({INPUT_KEY: self._input_metadata(plan)} if _input_worth_recording(plan) else {}),
        }

    def _input_metadata(self, plan: _Plan) -> dict[str, Any]:
        """How the video was read (360° or flat), where each window's view looked, and the result's frame."""
        source, req = plan.source, plan.request
        entry: dict[str, Any] = {
            "projection": "equirectangular" if source.panorama else "flat",
            "sound_field": source.sound_field_frame(),
        }
        if source.panorama:
            entry |= {
                "detected_by": source.detected_by,
                "pose_yaw_deg": source.pose_yaw_deg,
                "look": req.look,
                "views": plan.views,
            }
        if source.note:
            entry["note"] = source.note
        if req.save_view is not None:
            entry["saved_views"] = str(Path(req.save_view).resolve())
        return entry


def _input_worth_recording(plan: _Plan) -> bool:
    """A 360° video, a 2:1 one read as flat, or saved views: the sidecar says how the video was read."""
    return plan.source.panorama or plan.source.note is not None or plan.request.save_view is not None


def _group_by(items: list[_Plan], key: Callable[[_Plan], Any]) -> list[list[_Plan]]:
    groups: dict[Any, list[_Plan]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.values())
