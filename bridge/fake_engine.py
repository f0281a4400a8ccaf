"""`FakeEngine`: a stand-in model that writes a real, small AmbiX WAV after a configurable delay.

It lets the daemon, the host plugins and their tests run without torch or weights
(``visage serve --model fake:delay=0.2,steps=4,seconds=0.5``). Each output is a tone panned to the
requested direction with first-order AmbiX encoding (ACN order W, Y, Z, X; SN3D), 16-bit PCM, plus a
JSON sidecar ``OUT.wav.json`` with the contract's result keys and the job's own values
(``visage.model.files.result_files``), and, unless the job's ``binaural_preview`` option is false (as the
real engine), a stereo stand-in preview ``OUT.binaural.wav`` so pages and plugins have something to play:
two virtual cardioids pointing to the listener's left and right, not an HRTF rendering. Test hooks in
the request options: ``"fake_fail": "<code>"`` fails that job with the code; ``"fake_raise": true``
makes the whole batch raise.
"""

from __future__ import annotations

import array
import json
import math
import sys
import threading
import time
import wave
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import visage.model.files.result_files as rf
from visage.model.files.output_files import atomic_output, atomic_write_bytes

from .engine import (
    CancelledCallback,
    GenerateSpec,
    JobDone,
    JobFailed,
    JobOutcome,
    ProgressCallback,
    cancelled_outcome,
)

FAKE_TONE_HZ = 440.0
FAKE_AMPLITUDE = 0.25  # of full scale


@dataclass(frozen=True)
class FakeSettings:
    delay_s: float = 0.5  # per batch, spread over the steps
    steps: int = 5  # progress callbacks (decoder steps) per batch
    seconds: float = 1.0  # longest audio written, seconds
    model_id: str = "fake-1"

    @classmethod
    def parse(cls, model: str) -> FakeSettings:
        """Parse ``fake[:delay=S,steps=N,seconds=S,model_id=NAME]``."""
        _, _, params = model.partition(":")
        values: dict[str, object] = {}
        for item in filter(None, params.split(",")):
            key, sep, raw = item.partition("=")
            if not sep:
                raise ValueError(f"fake engine parameter {item!r} is not key=value")
            if key in ("delay", "seconds"):
                values["delay_s" if key == "delay" else key] = float(raw)
            elif key == "steps":
                values["steps"] = max(1, int(raw))
            elif key == "model_id":
                values["model_id"] = raw
            else:
                raise ValueError(f"unknown fake engine parameter {key!r} (delay, steps, seconds, model_id)")
        return cls(**values)  # type: ignore[arg-type]


def ambix_gains(yaw_deg: float, pitch_deg: float) -> tuple[float, float, float, float]:
    """First-order SN3D gains (W, Y, Z, X) of a plane wave from (yaw, pitch), AmbiX convention."""
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    return (1.0, math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch))


def preview_gains(spec: GenerateSpec) -> tuple[float, float]:
    """(left, right) gains of the fake preview: horizontal cardioids at the listener's ±90°.

    The listener faces the camera (yaw, pitch), as the real preview's does; a cardioid towards azimuth
    ``a`` picks ``(W + cos(a) X + sin(a) Y) / 2`` out of an SN3D field.
    """
    w, y, _, x = ambix_gains(spec.yaw, spec.pitch)
    ears = []
    for side in (90.0, -90.0):
        a = math.radians(spec.yaw + side)
        ears.append(0.5 * (w + math.cos(a) * x + math.sin(a) * y))
    return ears[0], ears[1]


def tone(spec: GenerateSpec, seconds: float, gains: Sequence[float]) -> bytes:
    """Interleaved 16-bit samples [T, len(gains)] of the fake tone, each channel scaled by its gain."""
    channels = len(gains)
    frames = max(1, round(seconds * spec.sample_rate))
    step = 2.0 * math.pi * FAKE_TONE_HZ / spec.sample_rate
    phase = (spec.seed or 0) % 360 * math.pi / 180.0
    full_scale = 32767 * FAKE_AMPLITUDE
    mono = [math.sin(step * n + phase) * full_scale for n in range(frames)]
    samples = array.array("h", bytes(2 * channels * frames))
    for channel, gain in enumerate(gains):
        samples[channel::channels] = array.array("h", [int(x * gain) for x in mono])
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def foa_tone(spec: GenerateSpec, seconds: float) -> bytes:
    """Interleaved 16-bit AmbiX samples [T, C] of a tone from (yaw, pitch), little-endian."""
    return tone(spec, seconds, ambix_gains(spec.yaw, spec.pitch))


class FakeEngine:
    """Implements `engine.Engine` without a model; see the module docstring."""

    device: str

    def __init__(self, settings: FakeSettings | None = None, device: str = "cpu") -> None:
        self.settings = settings or FakeSettings()
        self.model_id = self.settings.model_id
        self.device = device
        self.batch_sizes: list[int] = []  # one entry per run_batch call, for tests and benchmarks
        self._lock = threading.Lock()

    def batch_key(self, spec: GenerateSpec) -> Hashable:
        return (spec.sample_rate, self._seconds(spec))

    def _seconds(self, spec: GenerateSpec) -> float:
        wanted = self.settings.seconds if spec.end is None else spec.end - spec.start
        return min(wanted, self.settings.seconds)

    def run_batch(
        self, specs: Sequence[GenerateSpec], progress: ProgressCallback, cancelled: CancelledCallback
    ) -> list[JobOutcome]:
        with self._lock:
            self.batch_sizes.append(len(specs))
        if any(spec.extra.get("fake_raise") for spec in specs):
            raise RuntimeError("fake engine asked to raise")
        live = [True] * len(specs)
        steps = self.settings.steps
        for step in range(steps):
            if not any(live):
                break  # every job of the batch was cancelled
            time.sleep(self.settings.delay_s / steps)
            for i in range(len(specs)):
                if live[i] and cancelled(i):
                    live[i] = False
                elif live[i]:
                    progress(i, (step + 1) / (steps + 1), "decoding")
        outcomes: list[JobOutcome] = []
        for i, spec in enumerate(specs):
            if not live[i]:
                outcomes.append(cancelled_outcome())
                continue
            fail = spec.extra.get("fake_fail")
            if fail:
                outcomes.append(JobFailed(str(fail), "fake engine asked to fail"))
                continue
            progress(i, steps / (steps + 1), "writing")
            outcomes.append(self._write(spec))
        return outcomes

    def _write(self, spec: GenerateSpec) -> JobDone:
        seconds = self._seconds(spec)
        samples = foa_tone(spec, seconds)
        _write_wave(spec.output, 4, spec.sample_rate, samples)
        preview = None
        if spec.extra.get("binaural_preview", True) is not False:
            preview = self._write_preview(spec, seconds)
        metadata = rf.sidecar_path(spec.output)
        sidecar = {
            **rf.AMBIX_LAYOUT,
            rf.FILE_KEY: spec.output.name,
            rf.SAMPLE_RATE_KEY: spec.sample_rate,
            rf.NUM_FRAMES_KEY: len(samples) // 8,  # 4 channels of 2 bytes
            rf.SUBTYPE_KEY: "PCM_16",
            rf.MODEL_ID_KEY: self.model_id,
            rf.MEDIA_KEY: str(spec.media),
            rf.START_KEY: spec.start,
            rf.END_KEY: spec.end,
            rf.YAW_KEY: spec.yaw,
            rf.PITCH_KEY: spec.pitch,
            rf.SEED_KEY: spec.seed,
            rf.GUIDANCE_KEY: spec.guidance,
            rf.DURATION_KEY: seconds,
        }
        if preview is not None:
            sidecar[rf.PREVIEW_KEY] = preview.name
        _write_json(metadata, sidecar)
        return JobDone(output=spec.output, metadata=metadata)

    def _write_preview(self, spec: GenerateSpec, seconds: float) -> Path:
        preview = rf.preview_path(spec.output)
        samples = tone(spec, seconds, preview_gains(spec))
        _write_wave(preview, 2, spec.sample_rate, samples)
        _write_json(
            rf.sidecar_path(preview),
            {
                rf.FORMAT_KEY: "binaural",
                rf.CHANNELS_KEY: ["L", "R"],
                rf.FILE_KEY: preview.name,
                rf.SOURCE_KEY: str(spec.output),
                rf.SAMPLE_RATE_KEY: spec.sample_rate,
                rf.NUM_FRAMES_KEY: len(samples) // 4,  # 2 channels of 2 bytes
                rf.LISTENER_KEY: {"yaw_deg": spec.yaw, "pitch_deg": spec.pitch},
                rf.HRTF_KEY: "fake engine: cardioids at the listener's left and right, no HRTF",
                rf.GAIN_DB_KEY: 0.0,
                rf.LOUDNESS_KEY: None,
            },
        )
        return preview


def _write_wave(path: Path, channels: int, sample_rate: int, samples: bytes) -> None:
    # overwrite: the daemon refused existing outputs when it accepted the job
    with atomic_output(path, overwrite=True) as temp:
        with wave.open(str(temp), "wb") as out:
            out.setnchannels(channels)
            out.setsampwidth(2)
            out.setframerate(sample_rate)
            out.writeframes(samples)


def _write_json(path: Path, values: dict[str, object]) -> None:
    text = json.dumps(values, indent=2, ensure_ascii=False) + "\n"  # as the model writes sidecars
    atomic_write_bytes(path, text.encode("utf-8"), overwrite=True)


def create_fake_engine(model: str, device: str) -> FakeEngine:
    """`engine.EngineFactory` for ``--model fake[:...]``."""
    return FakeEngine(FakeSettings.parse(model), device=device if device != "auto" else "cpu")
