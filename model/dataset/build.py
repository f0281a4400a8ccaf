"""Build a training dataset: 360° recordings or field-of-view clip tables -> precomputed features in shards.

Two kinds of input, one output (``dataset_format``):

* **360° recordings** (equirectangular video with a 4-channel AmbiX or FuMa track, in the container or
  in a sidecar audio file): cut into clips by ``clip_selection`` (whole-second windows with enough valid
  audio), each clip's camera looking at its dominant sound; the field of view there is rendered with
  ``equirect.render_view`` (90°, 224 x 224, 4 fps, as the official ``nfov`` crop);
* **a clip table** of already-cropped field-of-view clips with their directions (``direction_table``,
  the YT-Ambigen layout).

For every clip: CLIP frame embeddings [F, 512] and patch energy maps [F, 49] from the field-of-view
frames, codec codes [T, K] of the AmbiX audio at the codec rate, and codes of the same audio rotated as
the augmentation does (``ambisonics.rotate(yaw=-90°)``: Y' = -X, X' = Y, spec §6.2), which pairs with
the camera turned by -90° of AmbiX yaw (the stored ``direction_rotated``).

Clips already in the manifest are skipped, so an interrupted build resumes where its last shard ended;
a clip (or a whole recording) that fails is reported, recorded in the manifest with the reason, and
skipped. Models are passed in (:class:`FeatureModels`), so tests run the real path on tiny ones; or a
`ClipFeaturizer` that computes features elsewhere (``ray_build``: on Ray actors) and hands them back in
the order the clips were planned, so that this one writer makes the same shards either way.

Dimension letters: F CLIP frames, S view side, C = 4 AmbiX channels, N samples, T code frames, K rows.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from visage.model.audio.ambisonics import fuma_to_ambix, rotate
from visage.model.audio.codec import FoaCodec
from visage.model.features.energy_map import energy_map
from visage.model.features.equirect import render_view
from visage.model.features.vision import ClipVisionEncoder
from visage.model.files.audio_io import fit_length, resample
from visage.model.files.panorama_video import read_equirect_frames, write_view_clip
from visage.model.files.video_io import read_clip_frames
from visage.model.network.sequence import clip_frame_count

from .clip_selection import SelectionRules, clip_starts, dominant_direction, valid_seconds
from .direction_table import ClipDirection, TableClip
from .shard_format import (
    ClipRecord,
    ClipTensors,
    DatasetFormatError,
    DatasetSettings,
    Failure,
    Manifest,
    write_shard,
)
from .source_media import read_ambisonic_track

Log = Callable[[str], None]


@dataclass(frozen=True)
class BuildOptions:
    """How clips are made.

    Attributes:
        rules: clip cutting and selection for 360° recordings.
        fuma: the recordings' tracks are FuMa (W, X, Y, Z; W at -3 dB) and are converted to AmbiX.
        fov_deg, view_size: the rendered field of view.
        clip_frame_rate: CLIP frames per second.
        shard_size: clips per shard (the manifest is rewritten after each shard).
        val_fraction: share of recordings (or table clips without a split) put in the validation split,
            chosen by a hash of the recording name so that a recording never spans both splits.
        write_views: also write each rendered field-of-view clip to ``views/<id>.mp4``.
    """

    rules: SelectionRules = field(default_factory=SelectionRules)
    fuma: bool = False
    fov_deg: float = 90.0
    view_size: int = 224
    clip_frame_rate: int = 4
    shard_size: int = 64
    val_fraction: float = 0.0
    write_views: bool = True

    def __post_init__(self) -> None:
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1), got {self.val_fraction}")


@dataclass
class FeatureModels:
    """The networks that turn a clip into features, and the names recorded in the manifest."""

    vision: ClipVisionEncoder
    codec: FoaCodec
    clip_model: str
    codec_name: str


@dataclass(frozen=True)
class PlannedClip:
    """A clip ready to be turned into features.

    Attributes:
        id: clip id.
        source: where it comes from.
        start_s, duration_s: range in the source.
        direction: camera direction and model vectors.
        split: fixed split, or None to let the builder decide.
        audio: [4, N] AmbiX samples of exactly this clip.
        sample_rate: of ``audio``.
        views: returns the [F, S, S, 3] uint8 field-of-view frames (read lazily: the slow part).
    """

    id: str
    source: str
    start_s: float
    duration_s: float
    direction: ClipDirection
    split: str | None
    audio: np.ndarray
    sample_rate: int
    views: Callable[[], np.ndarray]


# A clip's features and field-of-view frames, or why they could not be made (``Type: message``).
ClipResult = tuple[ClipTensors, np.ndarray] | str
# What a build sends to be computed, in order: a clip, or a failure passed through to keep its place.
Work = PlannedClip | Failure


class ClipFeaturizer(Protocol):
    """Computes clip features somewhere (here, on a cluster) for `build_dataset`."""

    def settings(self, options: BuildOptions) -> DatasetSettings:
        """The dataset settings its models give (codec rate, rows, names)."""
        ...  # pragma: no cover

    def features(
        self, work: Iterable[Work], options: BuildOptions
    ) -> Iterator[tuple[Work, ClipResult | None]]:
        """Each item of ``work`` with its result (None for a failure), in the order of ``work``."""
        ...  # pragma: no cover


class LocalFeaturizer:
    """Features computed in this process, one clip at a time."""

    def __init__(self, models: FeatureModels) -> None:
        self.models = models

    def settings(self, options: BuildOptions) -> DatasetSettings:
        return dataset_settings(self.models, options)

    def features(
        self, work: Iterable[Work], options: BuildOptions
    ) -> Iterator[tuple[Work, ClipResult | None]]:
        for item in work:
            yield item, None if isinstance(item, Failure) else clip_result(item, self.models, options)


@dataclass(frozen=True)
class BuildReport:
    """What a build run did."""

    built: int
    already_done: int
    failures: list[Failure]
    manifest: Path


def recording_clips(path: str | Path, options: BuildOptions) -> Iterator[PlannedClip]:
    """The clips of one 360° recording (reads its audio track; frames are read per clip when asked).

    Raises:
        FileNotFoundError, audio_io.ChannelCountError, source_media.SourceMediaError: the track
            cannot be read as 4-channel audio.
    """
    path = Path(path)
    audio, rate = read_ambisonic_track(path)
    if options.fuma:
        audio = fuma_to_ambix(audio)
    rules = options.rules
    starts = clip_starts(valid_seconds(audio, rate, rules.rms_threshold_db), rules)
    for start in starts:
        segment = np.ascontiguousarray(audio[:, start * rate : (start + rules.clip_seconds) * rate])
        camera = dominant_direction(segment)
        end = float(start + rules.clip_seconds)

        def views(start: int = start, end: float = end, camera=camera) -> np.ndarray:
            panoramas = read_equirect_frames(path, float(start), end, fps=options.clip_frame_rate)
            return np.stack(
                [render_view(p, camera, fov_deg=options.fov_deg, size=options.view_size) for p in panoramas]
            )

        yield PlannedClip(
            id=f"{path.stem}_{start}",
            source=str(path),
            start_s=float(start),
            duration_s=float(rules.clip_seconds),
            direction=ClipDirection.from_camera(camera),
            split=None,
            audio=segment,
            sample_rate=rate,
            views=views,
        )


def table_clip(row: TableClip, options: BuildOptions) -> PlannedClip:
    """A clip of a clip table: its audio (the first ``clip_seconds`` at most) and lazily its frames."""
    audio, rate = read_ambisonic_track(row.audio)
    if options.fuma:
        audio = fuma_to_ambix(audio)
    duration = min(float(options.rules.clip_seconds), audio.shape[1] / rate)
    if clip_frame_count(0.0, duration, options.clip_frame_rate) < 1:
        raise ValueError(f"{row.audio}: the audio is too short ({audio.shape[1]} samples)")

    def views() -> np.ndarray:
        return read_clip_frames(
            row.video, 0.0, duration, fps=options.clip_frame_rate, size=options.view_size
        ).frames

    return PlannedClip(
        id=row.id,
        source=str(row.video),
        start_s=0.0,
        duration_s=duration,
        direction=row.direction,
        split=row.split,
        audio=np.ascontiguousarray(audio[:, : round(duration * rate)]),
        sample_rate=rate,
        views=views,
    )


@torch.inference_mode()
def clip_features(
    clip: PlannedClip, models: FeatureModels, options: BuildOptions
) -> tuple[ClipTensors, np.ndarray]:
    """CLIP embeddings, energy maps, codes and rotated codes of one clip, and its field-of-view frames.

    Raises:
        ValueError: frames and audio that disagree in length.
    """
    views = clip.views()  # [F, S, S, 3]
    frames = clip_frame_count(0.0, clip.duration_s, options.clip_frame_rate)
    if len(views) != frames:
        raise ValueError(f"{clip.source}: got {len(views)} frames for {clip.duration_s} s, expected {frames}")
    features = models.vision(views)
    codec = models.codec
    samples = round(clip.duration_s * codec.sample_rate)
    if clip.sample_rate == codec.sample_rate:
        audio = fit_length(clip.audio, samples)
    else:
        audio = resample(clip.audio, clip.sample_rate, codec.sample_rate, num_samples=samples)
    both = np.stack([audio, rotate(audio, yaw=-math.pi / 2)])  # [2, C, N]
    codes = codec.encode(torch.from_numpy(both)).cpu()  # [2, T, K]
    tensors = ClipTensors(
        clip=features.frame_embeds.float().cpu(),
        energy=energy_map(features.patch_tokens.float()).cpu(),
        codes=codes[0],
        codes_rotated=codes[1],
    )
    return tensors, views


def clip_result(clip: PlannedClip, models: FeatureModels, options: BuildOptions) -> ClipResult:
    """`clip_features`, or why it failed: a broken clip is reported, not raised."""
    try:
        return clip_features(clip, models, options)
    except Exception as exc:
        return _describe(exc)


def _split_of(name: str, fraction: float) -> str:
    digest = hashlib.sha1(name.encode("utf-8")).digest()
    return "val" if int.from_bytes(digest[:8], "big") / 2**64 < fraction else "train"


def dataset_settings(models: FeatureModels, options: BuildOptions) -> DatasetSettings:
    """What a dataset built with ``models`` and ``options`` records (and must match to be extended)."""
    codec = models.codec
    return DatasetSettings(
        clip_seconds=float(options.rules.clip_seconds),
        clip_frame_rate=options.clip_frame_rate,
        sample_rate=codec.sample_rate,
        num_code_rows=codec.num_rows,
        cardinality=codec.cardinality,
        clip_model=models.clip_model,
        codec=models.codec_name,
        fov_deg=options.fov_deg,
        view_size=options.view_size,
    )


def build_dataset(
    output: str | Path,
    models: FeatureModels | ClipFeaturizer,
    *,
    recordings: Sequence[str | Path] = (),
    table: Sequence[TableClip] = (),
    options: BuildOptions | None = None,
    log: Log = lambda _: None,
) -> BuildReport:
    """Build (or extend) the dataset in ``output`` from recordings and/or clip-table rows; ``models`` are
    used here, or a `ClipFeaturizer` computes the features (the output is the same).

    Raises:
        DatasetFormatError: ``output`` holds a dataset made with other settings.
    """
    options = options or BuildOptions()
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    featurizer = LocalFeaturizer(models) if isinstance(models, FeatureModels) else models
    settings = featurizer.settings(options)
    if (folder / "manifest.json").exists():
        manifest = Manifest.read(folder)
        if manifest.settings != settings:
            raise DatasetFormatError(
                f"{folder}: the existing dataset was built with {manifest.settings}; this run would use "
                f"{settings}. Build into a new folder."
            )
        manifest.failures = []  # everything not done is tried again
    else:
        manifest = Manifest(settings)
    done = {c.id for c in manifest.clips}
    already = 0
    next_shard = len({c.shard for c in manifest.clips})
    pending: dict[str, tuple[PlannedClip, ClipTensors]] = {}
    produced: set[str] = set()
    if options.write_views:
        (folder / "views").mkdir(exist_ok=True)

    def flush() -> None:
        nonlocal next_shard
        if not pending:
            return
        shard = f"shard-{next_shard:05d}.safetensors"
        write_shard(folder / shard, {cid: t for cid, (_, t) in pending.items()})
        for clip, t in pending.values():
            manifest.clips.append(_record(clip, t, shard, options))
        manifest.write(folder)
        log(f"wrote {shard} ({len(pending)} clips, {len(manifest.clips)} in the dataset)")
        next_shard += 1
        pending.clear()

    def planned() -> Iterator[PlannedClip | Failure]:
        for path in recordings:
            try:
                yield from recording_clips(path, options)
            except Exception as exc:  # a broken recording is reported and skipped
                yield Failure(str(path), None, _describe(exc))
        for row in table:
            try:
                yield table_clip(row, options)
            except Exception as exc:
                yield Failure(str(row.video), row.id, _describe(exc))

    def work() -> Iterator[Work]:
        """The clips still to build, and the failures among them, in order."""
        nonlocal already
        sent: set[str] = set()
        for item in planned():
            if isinstance(item, PlannedClip) and item.id in done:
                already += 1
            elif isinstance(item, PlannedClip) and item.id in sent:
                error = ValueError(f"clip id {item.id} is used by another clip in this run")
                yield Failure(item.source, item.id, _describe(error))
            else:
                if isinstance(item, PlannedClip):
                    sent.add(item.id)
                yield item

    for item, result in featurizer.features(work(), options):
        if isinstance(item, Failure) or isinstance(result, str):
            failure = item if isinstance(item, Failure) else Failure(item.source, item.id, str(result))
            manifest.failures.append(failure)
            log(f"skipped {failure.source}{f' ({failure.clip})' if failure.clip else ''}: {failure.error}")
            continue
        assert result is not None
        tensors, views = result
        if options.write_views:
            try:
                write_view_clip(
                    folder / "views" / f"{item.id}.mp4", views, options.clip_frame_rate, overwrite=True
                )
            except Exception as exc:
                manifest.failures.append(Failure(item.source, item.id, _describe(exc)))
                log(f"skipped {item.id} ({item.source}): {_describe(exc)}")
                continue
        split = item.split or _split_of(Path(item.source).stem, options.val_fraction)
        pending[item.id] = (replace(item, split=split), tensors)
        produced.add(item.id)
        if len(pending) >= options.shard_size:
            flush()
    flush()
    manifest.write(folder)
    return BuildReport(len(produced), already, list(manifest.failures), folder / "manifest.json")


def _record(clip: PlannedClip, t: ClipTensors, shard: str, options: BuildOptions) -> ClipRecord:
    return ClipRecord(
        id=clip.id,
        shard=shard,
        source=clip.source,
        start_s=clip.start_s,
        duration_s=clip.duration_s,
        yaw_deg=clip.direction.camera.yaw_deg,
        pitch_deg=clip.direction.camera.pitch_deg,
        direction=clip.direction.vector,
        direction_rotated=clip.direction.vector_rotated,
        clip_frames=int(t.clip.shape[0]),
        code_frames=int(t.codes.shape[0]),
        split=clip.split or "train",
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
