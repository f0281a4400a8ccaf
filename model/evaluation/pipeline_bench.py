"""The whole pipeline, stage by stage, from random weights built in the run, against the official structure.

``visage bench pipeline`` builds CLIP ViT-B/32, the released ViSAGe architecture and DAC 44 kHz with
random weights (nothing is downloaded; ``size="tiny"`` uses the tiny test shapes instead), renders a
synthetic video, and runs one clip through :class:`VideoToAmbisonics` exactly as ``visage generate``
does, timing each stage from the pipeline's own progress reports:

* features: probe and decode the video, CLIP, energy maps;
* decoder: guided generation of the codes (the batched loop, with this machine's kernel choices);
* codec: DAC decoding of the four channels (weight norm folded, activations in place);
* write: resampling to 48 kHz, loudness measurement, WAV and sidecar.

Then, in the same process and on the same weights, the official structure: the same features, the loop
of ``network/reference_loop.py`` (conditional and unconditional passes one after the other, heads one
by one, plain ``F.linear``), DAC as released (weight norm recomputed at every call, its own
activations), and the same resampling and writing. Figures are printed as ratios, never asserted.

Dimension letters: F video frames at the CLIP rate, T code frames, K code rows, N samples.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visage.model.audio.codec import DacCodec, FoaCodec, build_tiny_random_dac
from visage.model.evaluation.bench import machine_description, peak_memory_bytes
from visage.model.features.direction import CameraDirection, model_direction_vector
from visage.model.features.energy_map import energy_map
from visage.model.features.vision import ClipVisionEncoder, build_tiny_random_clip
from visage.model.files.audio_io import resample, write_ambix
from visage.model.files.video_io import read_clip_frames
from visage.model.inference.device_choice import resolve_device, resolve_dtype
from visage.model.inference.pipeline import GenerationRequest, VideoToAmbisonics
from visage.model.network import few_rows_linear
from visage.model.network.config import VisageConfig
from visage.model.network.generation import generate
from visage.model.network.reference_loop import reference_generate_cfg
from visage.model.network.visage import Visage

SIZES = ("full", "tiny")
STAGES = ("features", "decoder", "codec", "write")
OUTPUT_RATE = 48000  # what `visage generate` writes by default


@dataclass(frozen=True)
class StageSeconds:
    """Seconds of each stage of one clip (wall clock, or this process's CPU time)."""

    features: float
    decoder: float
    codec: float
    write: float

    @property
    def total(self) -> float:
        return self.features + self.decoder + self.codec + self.write


@dataclass
class PipelineBenchResult:
    """One run of :func:`run_pipeline_benchmark`.

    Attributes:
        machine: the CPU or GPU that ran it, with threads and torch version.
        size: "full" or "tiny"; seconds: the clip length; steps: decoder steps of the clip.
        ours: the pipeline's stages; reference: the official structure's (None when skipped).
        ours_cpu, reference_cpu: the same in CPU seconds of this process, which other programs on the
            machine disturb less than the wall clock (ratios of both are printed).
        decode_reports: progress reports seen during the codec stage (more than one: it reports as it goes).
        kernel_choices: few-row linear kernel chosen per product kind ("linear", "weight_left").
        peak_memory_bytes: peak GPU memory on CUDA, else the process's peak resident memory.
    """

    machine: str
    size: str
    dtype: str
    seconds: float
    steps: int
    ours: StageSeconds
    reference: StageSeconds | None
    ours_cpu: StageSeconds
    reference_cpu: StageSeconds | None
    decode_reports: int
    kernel_choices: dict[str, str] = field(default_factory=dict)
    peak_memory_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("ours", "reference", "ours_cpu", "reference_cpu"):
            stages = getattr(self, name)
            if stages is not None:
                out[name]["total"] = stages.total
        return out


def write_test_video(
    path: Path, seconds: float, *, fps: int = 25, size: tuple[int, int] = (320, 240)
) -> Path:
    """A synthetic clip (a bright disc crossing a gradient), so that no media file is needed."""
    import av

    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(max(1, round(seconds * fps)) + 1):
            cx = width * (0.2 + 0.6 * i / max(1, seconds * fps))
            img = np.empty((height, width, 3), np.uint8)
            img[..., 0] = (255 * xx / width).astype(np.uint8)
            img[..., 1] = (255 * yy / height).astype(np.uint8)
            img[..., 2] = 80
            img[(xx - cx) ** 2 + (yy - height / 2) ** 2 < (height / 6) ** 2] = 250
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())
    return path


def _random_visage(size: str, device: torch.device, dtype: torch.dtype, seed: int) -> Visage:
    model = Visage(VisageConfig.preset("released" if size == "full" else "tiny"))
    model.init_weights(torch.Generator().manual_seed(seed))
    return model.to(device=device, dtype=dtype).eval()


def _random_clip(size: str, folder: Path, device: torch.device, seed: int) -> ClipVisionEncoder:
    if size == "tiny":
        return ClipVisionEncoder.from_pretrained(build_tiny_random_clip(folder / "clip", seed), device=device)
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPVisionModelWithProjection(CLIPVisionConfig())  # the defaults are ViT-B/32
    model.to(device)  # type: ignore[arg-type]  # transformers' wrapped .to() confuses mypy
    return ClipVisionEncoder(model)


def _random_dacs(size: str, folder: Path, device: torch.device, seed: int) -> tuple[Any, Any]:
    """Two DAC models with the same random weights: one for the pipeline, one left as released."""
    import dac

    def build() -> Any:
        if size == "tiny":
            return dac.utils.load_model(load_path=str(folder / "dac.pth"))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return dac.DAC()  # the defaults are the 44.1-kHz release architecture

    if size == "tiny":
        build_tiny_random_dac(folder / "dac.pth", seed)
    return build().to(device).float().eval(), build().to(device).float().eval()


class _StageClock:
    """Progress callback that remembers when each stage last reported (synchronising a GPU first)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.start = _now()
        self.last: dict[str, tuple[float, float]] = {}
        self.decode_reports = 0

    def __call__(self, _index: int, fraction: float, stage: str) -> None:
        if stage == "generate" and fraction < 0.85 - 1e-9:  # mid-generation: no sync, it would slow it
            return
        _sync(self.device)
        self.last[stage] = _now()
        self.decode_reports += stage == "decode"

    def stages(self, clock: int) -> StageSeconds:
        """Stage times on clock 0 (wall) or 1 (CPU time)."""
        t = {stage: times[clock] for stage, times in self.last.items()}
        return StageSeconds(
            features=t["features"] - self.start[clock],
            decoder=t["generate"] - t["features"],
            codec=t["decode"] - t["generate"],
            write=t["write"] - t["decode"],
        )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _now() -> tuple[float, float]:
    """Wall clock and this process's CPU time."""
    return time.perf_counter(), time.process_time()


def _timed(device: torch.device, fn: Callable[[], Any]) -> tuple[tuple[float, float], Any]:
    """(wall, CPU) seconds of ``fn()``, and its result."""
    _sync(device)
    start = _now()
    out = fn()
    _sync(device)
    end = _now()
    return (end[0] - start[0], end[1] - start[1]), out


def _reference_run(
    pipeline: VideoToAmbisonics, official_dac: Any, video: Path, seconds: float, out: Path, seed: int
) -> tuple[StageSeconds, StageSeconds]:
    """The official structure on the same weights (same features, official loop, DAC as released).

    Returns:
        Wall-clock and CPU seconds of its stages.
    """
    device, dtype = pipeline.device, pipeline.dtype
    fps = pipeline.model.config.clip_frame_rate

    def features() -> tuple[torch.Tensor, torch.Tensor]:
        frames = read_clip_frames(video, 0.0, seconds, fps=fps, size=pipeline.vision.image_size)
        with torch.inference_mode():
            feats = pipeline.vision(frames.frames)
            return feats.frame_embeds.float(), energy_map(feats.patch_tokens)  # [F, 512], [F, 49]

    t_features, (clip, energy) = _timed(device, features)
    direction = torch.from_numpy(model_direction_vector(CameraDirection(0.0, 0.0)))
    torch.manual_seed(seed)
    t_decoder, codes = _timed(
        device,
        lambda: reference_generate_cfg(
            pipeline.model,
            clip[None].to(device, dtype),
            energy[None].to(device, dtype),
            direction[None].to(device, dtype),
        ),
    )  # [1, T, K]

    def official_decode() -> np.ndarray:
        k = official_dac.n_codebooks
        mono = codes[0].T.reshape(codes.shape[-1] // k, k, codes.shape[1])  # [C, k, T], rows r = k·c + q
        with torch.inference_mode():
            audio = official_dac.decode(official_dac.quantizer.from_codes(mono.to(device))[0])  # [C, 1, N]
        return audio[:, 0].float().cpu().numpy()

    t_codec, audio44 = _timed(device, official_decode)

    def write() -> None:
        rate = int(official_dac.sample_rate)
        audio = resample(
            audio44[:, : round(seconds * rate)], rate, OUTPUT_RATE, num_samples=round(seconds * OUTPUT_RATE)
        )
        write_ambix(out, audio, OUTPUT_RATE, overwrite=True)

    t_write, _ = _timed(device, write)
    times = (t_features, t_decoder, t_codec, t_write)
    return StageSeconds(*(t[0] for t in times)), StageSeconds(*(t[1] for t in times))


def _warm_up(pipeline: VideoToAmbisonics, official_dac: Any) -> None:
    """First calls pay one-off costs (library set-up, kernel measurements, first touch of the weights)."""
    model, device, dtype = pipeline.model, pipeline.device, pipeline.dtype
    cfg = model.config
    clip = torch.zeros(1, 4, cfg.d_clip, device=device, dtype=dtype)
    energy = torch.full((1, 4, cfg.energy_map_size), 1 / cfg.energy_map_size, device=device, dtype=dtype)
    direction = torch.tensor([[0.0, 0.0, 1.0]], device=device, dtype=dtype)
    generate(model, clip, energy, direction, num_frames=2)
    reference_generate_cfg(model, clip, energy, direction, num_frames=2)
    codes = torch.zeros(1, 2, pipeline.codec.num_rows, dtype=torch.long, device=device)
    pipeline.codec.decode(codes)
    with torch.inference_mode():
        official_dac.decode(official_dac.quantizer.from_codes(codes[0, :, :9].T[None])[0])


def run_pipeline_benchmark(
    *,
    size: str = "full",
    seconds: float = 5.0,
    device: str = "auto",
    dtype: str = "auto",
    reference: bool = True,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> PipelineBenchResult:
    """Time one clip through the pipeline, and through the official structure on the same weights.

    Args:
        size: "full" (CLIP ViT-B/32, released ViSAGe, DAC 44 kHz) or "tiny" (the test shapes).
        seconds: clip length, at most 5 (one generation window, as the official loop handles).
        device, dtype: as ``visage generate`` takes them (auto: CUDA and bf16 if present, else CPU fp32).
        reference: also run the official structure.
        seed: seed of the random weights and of sampling.
        log: where the report lines go.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    if not 0 < seconds <= 5.0:
        raise ValueError(f"seconds must lie in (0, 5] (one generation window), got {seconds}")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    machine = machine_description(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    with tempfile.TemporaryDirectory(prefix="visage-bench-") as tmp:
        folder = Path(tmp)
        video = write_test_video(folder / "clip.mp4", seconds)
        ours_dac, official_dac = _random_dacs(size, folder, dev, seed)
        pipeline = VideoToAmbisonics(
            _random_visage(size, dev, dt, seed),
            _random_clip(size, folder, dev, seed),
            FoaCodec(DacCodec(ours_dac)),
            checkpoint=f"random-{size}",
        )
        cfg = pipeline.model.config
        steps = pipeline.model.pattern.num_steps(
            cfg.sequence.generated_codec_frames(round(seconds * cfg.clip_frame_rate))
        )
        shapes = "CLIP ViT-B/32, released ViSAGe, DAC 44 kHz" if size == "full" else "tiny test shapes"
        log(
            f"# pipeline, {size} size ({shapes}), random weights, one {seconds:g}-s clip ({steps} decoder "
            f"steps), {dev.type} {str(dt).removeprefix('torch.')}"
        )
        log(f"# machine: {machine}")
        _warm_up(pipeline, official_dac)
        clock = _StageClock(dev)
        request = GenerationRequest(
            video, 0.0, seconds, seed=seed, output=folder / "ours.wav", sample_rate=OUTPUT_RATE
        )
        (result,) = pipeline.generate([request], progress=clock)
        if isinstance(result, Exception):
            raise result
        refs = (
            _reference_run(pipeline, official_dac, video, seconds, folder / "reference.wav", seed)
            if reference
            else None
        )
    choices = few_rows_linear.CHOICES.choices()
    bench = PipelineBenchResult(
        machine=machine,
        size=size,
        dtype=str(dt).removeprefix("torch."),
        seconds=seconds,
        steps=steps,
        ours=clock.stages(0),
        reference=None if refs is None else refs[0],
        ours_cpu=clock.stages(1),
        reference_cpu=None if refs is None else refs[1],
        decode_reports=clock.decode_reports,
        kernel_choices=choices,
        peak_memory_bytes=peak_memory_bytes(dev),
    )
    log(format_pipeline_result(bench))
    return bench


def format_pipeline_result(bench: PipelineBenchResult) -> str:
    """The table of stages: seconds for ours and the official structure, and the speed-up of each."""
    lines = [
        f"{'stage':<9} {'ours s':>9} {'official s':>11} {'speed-up':>9}   "
        f"{'ours cpu s':>10} {'official cpu s':>14} {'cpu ratio':>9}"
    ]
    for stage in (*STAGES, "total"):
        row = f"{stage:<9} {getattr(bench.ours, stage):9.2f}"
        if bench.reference is not None:
            row += f" {getattr(bench.reference, stage):11.2f} {_ratio(bench.reference, bench.ours, stage):>9}"
        else:
            row += f" {'-':>11} {'-':>9}"
        row += f"   {getattr(bench.ours_cpu, stage):10.2f}"
        if bench.reference_cpu is not None:
            ratio = _ratio(bench.reference_cpu, bench.ours_cpu, stage)
            row += f" {getattr(bench.reference_cpu, stage):14.2f} {ratio:>9}"
        lines.append(row)
    kinds = Counter(bench.kernel_choices.values())
    chosen = ", ".join(f"{kernel} {count}" for kernel, count in sorted(kinds.items())) or "none measured"
    lines.append(
        f"# few-row kernels chosen here: {chosen}; "
        f"codec progress reports during decoding: {bench.decode_reports}; "
        f"peak memory {bench.peak_memory_bytes / 2**30:.2f} GiB; machine: {bench.machine}"
    )
    return "\n".join(lines)


def _ratio(reference: StageSeconds, ours: StageSeconds, stage: str) -> str:
    mine = getattr(ours, stage)
    return f"x{getattr(reference, stage) / mine:.2f}" if mine > 0 else "-"


def write_json(bench: PipelineBenchResult, path: str | Path) -> None:
    Path(path).write_text(json.dumps(bench.to_json(), indent=2) + "\n", encoding="utf-8")
