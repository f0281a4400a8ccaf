"""Training and fine-tuning ViSAGe with Hugging Face accelerate: one CPU, one GPU, several GPUs or machines.

``train(config)`` runs the same code under ``python -m ...`` and under ``accelerate launch``: accelerate
picks the device, wraps the model for data parallelism and sets up mixed precision (bf16 where the GPU
has it, as the paper trained). The recipe is the official one (spec §6; ``train_config`` has the
defaults): AdamW with the official weight-decay split, gradient clipping, a constant schedule with an
optional warm-up, condition dropout for classifier-free guidance, rotation augmentation, and the code
pattern and initialisation of choice (from scratch, from the official VGGSound mono checkpoint, or from
an ambisonics checkpoint).

Every ``checkpoint_every`` steps a resumable checkpoint is written (``training_checkpoint``), every
``val_every`` steps the validation loss is computed (no augmentation, no dropout), and every
``samples.every`` steps sample clips are generated and decoded to AmbiX WAVs. Metrics go to
``metrics.jsonl`` and, when TensorBoard is installed, to ``tensorboard/`` (with the samples' W channel).

Dimension letters: B clips, F CLIP frames, T code frames, K code rows.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from visage.model.dataset.shard_format import DatasetSettings, Manifest
from visage.model.network.code_pattern import get_pattern
from visage.model.network.config import VisageConfig
from visage.model.network.visage import Visage

from .checkpoints import Progress, latest_checkpoint, load_checkpoint, save_checkpoint
from .config import Config, ConfigError, ModelConfig
from .data import Augmentation, ClipDataset, draw, epoch_batches, make_batch, shared_generator
from .objective import TrainingObjective
from .optimizer import build_optimizer, constant_schedule

Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainResult:
    """How a training run ended."""

    steps: int
    train_loss: float | None
    val_loss: float | None
    checkpoint: Path | None
    seconds: float


def build_model(config: ModelConfig, *, seed: int) -> Visage:
    """The model to train, initialised as the config says (scratch, mono or checkpoint).

    Raises:
        ConfigError: a bad architecture override.
        checkpoint.CheckpointError: an unusable checkpoint.
    """
    generator = torch.Generator().manual_seed(seed)
    if config.init == "scratch":
        base = VisageConfig.preset(config.preset)
        try:
            arch = dataclasses.replace(base, **config.architecture)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"[model.architecture] {exc}") from None
        model = Visage(arch, get_pattern(config.pattern, arch.num_rvq, arch.num_channels))
        model.init_weights(generator)
        return model.train()
    if config.init == "mono":
        from visage.model.network.checkpoint import load_mono_for_ambisonics

        loaded = load_mono_for_ambisonics(config.checkpoint, generator=generator)
    else:
        from visage.model.network.checkpoint import load_pretrained

        loaded = load_pretrained(config.checkpoint)
    if config.pattern == loaded.pattern.name:
        return loaded.train()
    model = Visage(
        loaded.config, get_pattern(config.pattern, loaded.config.num_rvq, loaded.config.num_channels)
    )
    model.load_state_dict(loaded.state_dict())
    return model.train()


def check_compatible(model: Visage, settings: DatasetSettings, dataset: str) -> None:
    """Raise ConfigError if the dataset's features cannot feed this model."""
    c = model.config
    seq = c.sequence
    problems = []
    if settings.num_code_rows != c.num_code_rows:
        problems.append(f"{settings.num_code_rows} code rows vs the model's {c.num_code_rows} (num_rvq)")
    if settings.cardinality != c.dac_vocab_size:
        problems.append(
            f"codebooks of {settings.cardinality} vs the model's {c.dac_vocab_size} (dac_vocab_size)"
        )
    if settings.clip_frame_rate != c.clip_frame_rate:
        problems.append(f"{settings.clip_frame_rate} CLIP frames/s vs {c.clip_frame_rate}")
    if settings.sample_rate != c.dac_sample_rate:
        problems.append(f"codec rate {settings.sample_rate} Hz vs {c.dac_sample_rate}")
    if problems:
        raise ConfigError(f"dataset {dataset} does not fit the model: {'; '.join(problems)}")
    steps = model.pattern.num_steps(seq.generated_codec_frames(seq.max_clip_frames))
    if steps > model.decoder.max_positions:
        raise ConfigError(
            f"pattern {model.pattern.name} needs {steps} decoder steps for a full window; the model has "
            f"{model.decoder.max_positions} (raise max_target_length)"
        )


def agree_to_stop(local: bool, accelerator: Any) -> bool:
    """Whether any process wants to stop, agreed by all of them.

    A wall-clock limit or a stop request is seen by each process on its own (their clocks start apart);
    if one stopped while another took one more step, the latter would wait forever in the gradient
    all-reduce. Every process calls this at the same point of the loop.
    """
    if accelerator.num_processes == 1:
        return local
    flag = torch.tensor(float(local), device=accelerator.device)
    return bool(accelerator.reduce(flag, reduction="sum").item() > 0)


def _mixed_precision(choice: str) -> str:
    if choice != "auto":
        return choice
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


class TrainingLog:
    """Metrics to ``metrics.jsonl`` and, if installed, TensorBoard; main process only."""

    def __init__(self, folder: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.path = folder / "metrics.jsonl"
        self.writer: Any = None
        if enabled:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(folder / "tensorboard"))
            except ImportError:  # TensorBoard is optional: the JSONL log is always written
                self.writer = None

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(name, value, step)

    def audio(self, step: int, tag: str, mono: torch.Tensor, sample_rate: int) -> None:
        if self.enabled and self.writer is not None:
            self.writer.add_audio(tag, mono.clamp(-1, 1), step, sample_rate=sample_rate)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def train(config: Config, *, log: Log = print, should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Run (or resume) training as ``config`` says; see the module docstring.

    Raises:
        ConfigError: settings that cannot work together (dataset vs model, empty split).
        dataset_format.DatasetFormatError, checkpoint.CheckpointError: unusable inputs.
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    started = time.monotonic()
    tc, dc, oc = config.train, config.data, config.optim
    accelerator = Accelerator(
        mixed_precision=_mixed_precision(tc.mixed_precision),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    rank, world = accelerator.process_index, accelerator.num_processes
    torch.manual_seed(tc.seed + rank)
    out = Path(tc.output_dir)
    manifest = Manifest.read(dc.dataset)
    model = build_model(config.model, seed=tc.seed)
    check_compatible(model, manifest.settings, dc.dataset)
    seq = model.config.sequence
    train_set = ClipDataset(dc.dataset, manifest.split("train"), seq)
    val_set = ClipDataset(dc.dataset, manifest.split("val"), seq)
    if len(train_set) < world:
        raise ConfigError(f"dataset {dc.dataset} has {len(train_set)} training clips for {world} processes")
    objective = TrainingObjective(model, tc.loss_chunk_rows)
    optimizer = build_optimizer(
        model, lr=oc.lr, weight_decay=oc.weight_decay, betas=(oc.beta1, oc.beta2), eps=oc.eps
    )
    scheduler = constant_schedule(optimizer, oc.warmup_steps)
    objective, optimizer = accelerator.prepare(objective, optimizer)
    generator = torch.Generator().manual_seed(tc.seed * 1000 + rank)
    progress = Progress()
    saved_at = -1
    resume_from = latest_checkpoint(out) if tc.resume else None
    if resume_from is not None:
        progress = load_checkpoint(
            resume_from, model=model, optimizer=optimizer, scheduler=scheduler, generator=generator, rank=rank
        )
        log(f"resumed from {resume_from} at step {progress.step}")
        saved_at = progress.step  # never rewrite (delete and replace) the checkpoint resumed from
    logger = TrainingLog(out, accelerator.is_main_process)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1) + "\n")
    augmentation = Augmentation(
        tc.rotation_prob, tc.video_dropout, tc.direction_dropout, tc.dropout_mode == "sample"
    )
    pad = model.config.dac_pad_token_id
    device = accelerator.device
    sampler = _Samples(config, manifest, val_set if len(val_set) else train_set, out, logger, log)
    last_loss: float | None = None
    val_loss: float | None = None
    checkpoint_path: Path | None = resume_from

    def save() -> None:
        nonlocal saved_at, checkpoint_path
        checkpoint_path = save_checkpoint(
            out,
            progress,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            generator=generator,
            rank=rank,
            is_main=accelerator.is_main_process,
            barrier=accelerator.wait_for_everyone,
            keep=tc.keep_checkpoints,
        )
        saved_at = progress.step

    def finished() -> bool:
        if tc.max_steps and progress.step >= tc.max_steps:
            return True
        if tc.epochs and progress.epoch >= tc.epochs:
            return True
        if not (tc.max_seconds or should_stop):
            return False
        late = bool(tc.max_seconds and time.monotonic() - started >= tc.max_seconds)
        return agree_to_stop(late or bool(should_stop and should_stop()), accelerator)

    while not finished():
        batches = epoch_batches(
            len(train_set), dc.batch_size, seed=tc.seed, epoch=progress.epoch, rank=rank, world_size=world
        )
        if progress.batch_in_epoch >= len(batches):
            progress.epoch += 1
            progress.batch_in_epoch = 0
            continue
        micro = batches[progress.batch_in_epoch : progress.batch_in_epoch + tc.grad_accum]
        objective.train()
        step_loss = 0.0
        for k, indices in enumerate(micro):
            examples = [train_set.example(i, generator) for i in indices]
            shared = shared_generator(tc.seed, progress.step, k)  # alike on every process
            rotate, null_video, null_direction = draw(len(examples), augmentation, generator, shared)
            batch = make_batch(
                examples,
                model.pattern,
                pad,
                rotate=rotate,
                null_video=null_video,
                null_direction=null_direction,
            ).to(device)
            sync = nullcontext() if k == len(micro) - 1 else accelerator.no_sync(objective)
            with sync:
                loss, _ = objective(*batch.objective_inputs())
                accelerator.backward(loss / len(micro))
            step_loss += float(loss.detach()) / len(micro)
        grad_norm = (
            float(accelerator.clip_grad_norm_(objective.parameters(), oc.grad_clip))
            if oc.grad_clip
            else math.nan
        )
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        progress.step += 1
        progress.batch_in_epoch += len(micro)
        last_loss = float(accelerator.reduce(torch.tensor(step_loss, device=device), reduction="mean"))
        if progress.step % tc.log_every == 0 or progress.step == 1:
            logger.scalars(
                progress.step,
                {
                    "train/loss": last_loss,
                    "train/lr": float(scheduler.get_last_lr()[0]),
                    "train/grad_norm": grad_norm,
                },
            )
            log(f"step {progress.step} epoch {progress.epoch} loss {last_loss:.4f}")
        if tc.val_every and progress.step % tc.val_every == 0 and len(val_set):
            val_loss = _validate(objective, val_set, config, model, accelerator)
            logger.scalars(progress.step, {"val/loss": val_loss})
            log(f"step {progress.step} validation loss {val_loss:.4f}")
        if config.samples.every and progress.step % config.samples.every == 0:
            sampler.write(model, progress.step, accelerator)
        if tc.checkpoint_every and progress.step % tc.checkpoint_every == 0:
            save()
    if saved_at != progress.step and progress.step > 0:
        save()
    if len(val_set):
        val_loss = _validate(objective, val_set, config, model, accelerator)
        logger.scalars(progress.step, {"val/loss": val_loss})
        log(f"final validation loss {val_loss:.4f}")
    logger.close()
    return TrainResult(progress.step, last_loss, val_loss, checkpoint_path, time.monotonic() - started)


@torch.no_grad()
def _validate(objective: Any, val_set: ClipDataset, config: Config, model: Visage, accelerator: Any) -> float:
    """Mean teacher-forced loss over the validation split (each process takes part of every batch)."""
    objective.eval()
    size = config.data.val_batch_size or config.data.batch_size
    rank, world = accelerator.process_index, accelerator.num_processes
    total = torch.zeros(2, device=accelerator.device)
    starts = list(range(0, len(val_set), size))
    if config.data.max_val_batches:
        starts = starts[: config.data.max_val_batches]
    pad = model.config.dac_pad_token_id
    for start in starts:
        part = torch.tensor_split(torch.arange(start, min(start + size, len(val_set))), world)[rank].tolist()
        if not part:
            continue
        examples = [val_set.example(i) for i in part]
        off = torch.zeros(len(examples), dtype=torch.bool)
        batch = make_batch(examples, model.pattern, pad, rotate=off, null_video=off, null_direction=off)
        batch = batch.to(accelerator.device)
        loss, _ = objective(*batch.objective_inputs())
        total += torch.stack(
            [loss.float() * len(examples), torch.tensor(float(len(examples)), device=total.device)]
        )
    total = accelerator.reduce(total, reduction="sum")
    objective.train()
    return float(total[0] / total[1].clamp_min(1))


class _Samples:
    """Periodic sample audio: generate a few clips, decode them, write AmbiX WAVs (main process)."""

    def __init__(
        self, config: Config, manifest: Manifest, clips: ClipDataset, out: Path, logger: TrainingLog, log: Log
    ) -> None:
        self.config = config.samples
        self.spec = config.samples.codec or manifest.settings.codec
        self.clips = clips
        self.out = out
        self.logger = logger
        self.log = log
        self.codec: Any = None
        self.failed = False

    def write(self, model: Visage, step: int, accelerator: Any) -> None:
        if accelerator.is_main_process and not self.failed and self.config.clips:
            try:
                self._write(model, step, accelerator.device)
            except Exception as exc:  # samples are a convenience: never stop training for them
                self.failed = True
                self.log(f"sample audio disabled: {type(exc).__name__}: {exc}")
        accelerator.wait_for_everyone()

    def _write(self, model: Visage, step: int, device: torch.device) -> None:
        from visage.model.audio.codec_spec import load_codec
        from visage.model.files.audio_io import write_ambix
        from visage.model.network.generation import Guidance, generate

        if self.codec is None:
            self.codec = load_codec(self.spec, device=str(device))
        folder = self.out / "samples" / f"step_{step:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(min(self.config.clips, len(self.clips))):
            e = self.clips.example(i)
            result = generate(
                model,
                e.clip[None].to(device),
                e.energy[None].to(device),
                e.direction[None].to(device),
                guidance=Guidance("joint", self.config.guidance_scale),
                generator=torch.Generator(device=device).manual_seed(self.config.seed + i),
            )
            codes = result.codes[:, : int(result.lengths[0])]
            audio = self.codec.decode(codes.to(device))[0].float().cpu()  # [4, N]
            write_ambix(
                folder / f"{e.id}.wav", audio.numpy(), self.codec.sample_rate, subtype="FLOAT", overwrite=True
            )
            self.logger.audio(step, f"samples/{e.id}/W", audio[0], self.codec.sample_rate)
        self.log(f"wrote sample audio to {folder}")
