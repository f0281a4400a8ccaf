"""Evaluate generated ambisonics against references: the paper's spatial and semantic metrics.

Inputs are two folders of 4-channel AmbiX files named by clip id (``<id>.wav``, any format soundfile
reads) and, for the semantic metrics, the camera direction of every clip. As the official evaluation
(spec §8): every clip is brought to 16 kHz (soxr here; the official scripts used torchaudio's and
julius' resamplers, so 16-kHz inputs reproduce their numbers exactly and others agree to resampler
differences) and truncated or zero-padded to 80000 samples.

Spatial metrics (``spatial_metrics``): CC and AUC-Judd over the whole clip, 1-s and 0.2-s windows, in
``paper`` mode (the official code with its quirks: √2-weighted dipoles, AUC off by one, AUC jitter
from a seeded ``RandomState``) and ``corrected`` mode (true SN3D, standard AUC-Judd, no jitter).

Semantic metrics (``semantic_metrics``): FAD and KLD of the mono signal decoded toward the camera
(FAD_dec, KLD_dec) and of each channel (FAD/KLD per W, Y, Z, X and their means FAD_avg, KLD_avg).
The decode is paper Eq. 2, ``W + cos(el)cos(az) X + cos(el)sin(az) Y + sin(el) Z``
(``ambisonics.official_mono_decode``) with the camera's AmbiX azimuth and elevation. Two official quirks
are deliberately *not* reproduced (spec §10 items 8, 9): the generated side of their script has an
operator typo (``W + cos(az)sin(az)·X·Y + sin(el)·Z``), and both sides use the dataset angle α as the
azimuth, which is the mirror image of the camera (the camera's AmbiX azimuth is −α).

Direction files: an ``ambi.json``-style JSON (``{"<id>": [e, a]}``, dataset units) or a CSV with
columns ``id`` and either ``yaw,pitch`` (AmbiX degrees) or ``elevation_units,azimuth_units``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from visage.model.audio.ambisonics import official_mono_decode
from visage.model.dataset.direction_table import ClipTableError, read_clip_table, read_direction_file
from visage.model.features.direction import CameraDirection
from visage.model.files.audio_io import fit_length, read_ambix, resample

from . import spatial_metrics as sm
from .semantic_metrics import Classifier, Embedder, fad, paired_kld

EVAL_RATE = sm.SAMPLE_RATE
EVAL_SAMPLES = sm.CLIP_SECONDS * sm.SAMPLE_RATE
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
CHANNELS = ("w", "y", "z", "x")


class EvaluationError(ValueError):
    """Inputs that cannot be evaluated; names the folder or file."""


@dataclass(frozen=True)
class EvalPair:
    """A generated file and its reference."""

    id: str
    generated: Path
    reference: Path


@dataclass(frozen=True)
class SemanticScores:
    """FAD and KLD on the decoded mono signal and per channel."""

    fad_dec: float
    kld_dec: float
    fad_avg: float
    kld_avg: float
    fad_channels: dict[str, float]
    kld_channels: dict[str, float]


@dataclass(frozen=True)
class EvaluationResult:
    """Everything ``visage eval`` reports."""

    clips: int
    spatial: dict[str, sm.SpatialScores]  # mode -> mean scores
    semantic: SemanticScores | None

    def to_json(self) -> str:
        data = {
            "clips": self.clips,
            "spatial": {mode: asdict(s) for mode, s in self.spatial.items()},
            "semantic": asdict(self.semantic) if self.semantic else None,
        }
        return json.dumps(data, indent=1) + "\n"


def pair_files(generated_dir: str | Path, reference_dir: str | Path) -> list[EvalPair]:
    """Match generated and reference files by id (file stem).

    Raises:
        EvaluationError: a missing folder, no files, or ids present on one side only.
    """
    sides = []
    for folder in (Path(generated_dir), Path(reference_dir)):
        if not folder.is_dir():
            raise EvaluationError(f"{folder}: no such folder")
        files = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in AUDIO_SUFFIXES}
        if not files:
            raise EvaluationError(f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
        sides.append(files)
    generated, reference = sides
    only_gen, only_ref = sorted(set(generated) - set(reference)), sorted(set(reference) - set(generated))
    if only_gen or only_ref:
        raise EvaluationError(
            f"{generated_dir} and {reference_dir} hold different clips: only generated {only_gen[:5]}"
            f"{'...' if len(only_gen) > 5 else ''}, only reference {only_ref[:5]}"
            f"{'...' if len(only_ref) > 5 else ''}"
        )
    return [EvalPair(i, generated[i], reference[i]) for i in sorted(generated)]


def read_directions(path: str | Path) -> dict[str, CameraDirection]:
    """Camera direction per clip id from an ``ambi.json``-style JSON or a CSV (see the module docstring).

    Raises:
        EvaluationError: missing file or bad content (the message names the file and the entry).
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".json":
            return {k: v.camera for k, v in read_direction_file(path).items()}
        if path.suffix.lower() == ".csv":
            return {row.id: row.direction.camera for row in read_clip_table(path)}
    except ClipTableError as exc:
        raise EvaluationError(str(exc)) from None
    raise EvaluationError(f"{path}: direction files end in .json or .csv")


def load_eval_audio(path: Path) -> np.ndarray:
    """A file as the evaluation sees it: ``[80000, 4]`` float32 at 16 kHz (AmbiX W, Y, Z, X)."""
    audio = read_ambix(path)
    samples = audio.audio
    if audio.sample_rate != EVAL_RATE:
        samples = resample(samples, audio.sample_rate, EVAL_RATE)
    return fit_length(samples, EVAL_SAMPLES).T.copy()


def spatial_scores(
    generated: Sequence[np.ndarray], reference: Sequence[np.ndarray], *, seed: int = 0
) -> dict[str, sm.SpatialScores]:
    """Mean CC and AUC in both modes over paired ``[T, 4]`` clips (16 kHz).

    In paper mode the AUC jitter comes from ``np.random.RandomState(seed)``, drawn clip by clip in order,
    as one run of the official script draws it from numpy's global RNG.
    """
    out = {}
    for mode in ("paper", "corrected"):
        jitter = np.random.RandomState(seed) if mode == "paper" else None
        clips = [
            sm.score_clip(
                sm.sphere_maps(g, mode=mode), sm.sphere_maps(r, mode=mode), mode=mode, jitter=jitter
            )
            for g, r in zip(generated, reference, strict=True)
        ]
        out[mode] = sm.mean_scores(clips)
    return out


def mono_signals(audio: np.ndarray, camera: CameraDirection) -> dict[str, np.ndarray]:
    """The mono signals the semantic metrics compare: decoded toward the camera, and each channel."""
    foa = audio.T  # [4, T]
    out = {"dec": official_mono_decode(foa, math.radians(camera.yaw_deg), math.radians(camera.pitch_deg))}
    out.update({name: foa[i] for i, name in enumerate(CHANNELS)})
    return out


def semantic_scores(
    generated: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    cameras: Sequence[CameraDirection],
    embedder: Embedder,
    classifier: Classifier,
) -> SemanticScores:
    """FAD and KLD on the decoded mono signal and on each channel of paired ``[T, 4]`` clips."""
    gen = [mono_signals(a, c) for a, c in zip(generated, cameras, strict=True)]
    ref = [mono_signals(a, c) for a, c in zip(reference, cameras, strict=True)]
    fads, klds = {}, {}
    for name in ("dec", *CHANNELS):
        g, r = [m[name] for m in gen], [m[name] for m in ref]
        fads[name] = fad(g, r, embedder)
        klds[name] = paired_kld(g, r, classifier)
    return SemanticScores(
        fad_dec=fads["dec"],
        kld_dec=klds["dec"],
        fad_avg=float(np.mean([fads[c] for c in CHANNELS])),
        kld_avg=float(np.mean([klds[c] for c in CHANNELS])),
        fad_channels={c: fads[c] for c in CHANNELS},
        kld_channels={c: klds[c] for c in CHANNELS},
    )


def evaluate(
    generated_dir: str | Path,
    reference_dir: str | Path,
    *,
    directions: str | Path | None = None,
    embedder: Embedder | None = None,
    classifier: Classifier | None = None,
    seed: int = 0,
) -> EvaluationResult:
    """Spatial metrics always; semantic metrics when directions and both extractors are given.

    Raises:
        EvaluationError: mismatched folders, a clip without a direction, unreadable audio.
    """
    pairs = pair_files(generated_dir, reference_dir)
    generated: list[np.ndarray] = []
    reference: list[np.ndarray] = []
    for pair in pairs:
        for path, bucket in ((pair.generated, generated), (pair.reference, reference)):
            try:
                bucket.append(load_eval_audio(path))
            except (OSError, ValueError) as exc:
                raise EvaluationError(f"{path}: {exc}") from None
    spatial = spatial_scores(generated, reference, seed=seed)
    semantic = None
    if directions is not None and embedder is not None and classifier is not None:
        by_id = read_directions(directions)
        missing = [p.id for p in pairs if p.id not in by_id]
        if missing:
            raise EvaluationError(f"{directions}: no direction for clip(s) {missing[:5]}")
        semantic = semantic_scores(generated, reference, [by_id[p.id] for p in pairs], embedder, classifier)
    return EvaluationResult(len(pairs), spatial, semantic)


def format_table(result: EvaluationResult) -> str:
    """The paper's Table 3 columns as text, one row per spatial mode."""
    head = (
        f"{'mode':<10} {'FAD_dec':>8} {'KLD_dec':>8} {'FAD_avg':>8} {'CC_all':>7} {'CC_1fps':>7} "
        f"{'CC_5fps':>7} {'AUC_all':>7} {'AUC_1fps':>8} {'AUC_5fps':>8}"
    )
    lines = [f"{result.clips} clips", head]
    sem = result.semantic
    f = "{:8.3f}".format
    semantic = f"{f(sem.fad_dec)} {f(sem.kld_dec)} {f(sem.fad_avg)}" if sem else f"{'-':>8} {'-':>8} {'-':>8}"
    for mode, s in result.spatial.items():
        lines.append(
            f"{mode:<10} {semantic} {s.cc_all:7.3f} {s.cc_1fps:7.3f} {s.cc_5fps:7.3f} "
            f"{s.auc_all:7.3f} {s.auc_1fps:8.3f} {s.auc_5fps:8.3f}"
        )
    return "\n".join(lines)
