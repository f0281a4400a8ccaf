"""Guided autoregressive generation over a code pattern, batched and cached.

Structure (compared with the official ``generate_cfg``, which runs a conditional and an unconditional
decoder one after the other with growing caches and samples each head in a Python loop):

* every guidance *variant* (conditional, unconditional, direction-only, video-only) is a slice of one
  batch: one encoder pass and one decoder pass per step for all of them;
* the decoder's self-attention keys/values live in a preallocated cache, cross-attention keys/values are
  computed once;
* the heads live at a step are one matmul over a contiguous run of a head-ordered weight copy, and the
  top-k sampling is vectorised over heads and batch;
* leading steps that are fully known (a prompt) are fed in one prefill chunk.

Greedy outputs equal the official ones; sampling follows its distribution (top-k with ties kept,
temperature) but not its random stream.

Dimension letters: B clips, V guidance variants, N = V * B decoder rows, S pattern steps, T code frames,
K code rows, n rows live at a step, C classes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .decode_step import StaticDecodeStep
from .few_rows_linear import few_rows_linear
from .visage import Visage

# A guidance variant says which conditions are replaced by their null embeddings: (video, direction).
FULL = (False, False)
UNCONDITIONAL = (True, True)
DIRECTION_ONLY = (True, False)  # video nulled: p(x | null, D)
VIDEO_ONLY = (False, True)  # direction nulled: p(x | V, null)

GUIDANCE_MODES = ("joint", "directional", "visual", "dual", "none")


@dataclass(frozen=True)
class Guidance:
    """Classifier-free guidance on logits, in the official convention ``c + s * (x - u)``.

    Modes (paper Eq. 5-7; c = p(V, D), u = p(null, null)):
        joint: c + s (c - u), video and direction guided together (official ``generate_cfg``; 2.5 here
            equals 3.5 in the usual ``u + w (c - u)`` convention);
        directional: c + s (p(null, D) - u);
        visual: c + s (p(V, null) - u);
        dual: c + s (p(V, null) - u) + direction_scale (p(null, D) - u) (official ``generate_dual_cfg``);
        none: c.
    """

    mode: str = "joint"
    scale: float = 2.5
    direction_scale: float | None = None  # dual mode only; defaults to ``scale``

    def __post_init__(self) -> None:
        if self.mode not in GUIDANCE_MODES:
            raise ValueError(f"guidance mode {self.mode!r} is not one of {', '.join(GUIDANCE_MODES)}")
        for name, value in (("scale", self.scale), ("direction_scale", self.direction_scale)):
            if value is not None and not (value == value and abs(value) != float("inf")):
                raise ValueError(f"guidance {name} must be finite, got {value}")

    @property
    def variants(self) -> tuple[tuple[bool, bool], ...]:
        """The conditionings each step needs, conditional first."""
        return {
            "joint": (FULL, UNCONDITIONAL),
            "directional": (FULL, DIRECTION_ONLY, UNCONDITIONAL),
            "visual": (FULL, VIDEO_ONLY, UNCONDITIONAL),
            "dual": (FULL, VIDEO_ONLY, DIRECTION_ONLY, UNCONDITIONAL),
            "none": (FULL,),
        }[self.mode]

    def combine(self, logits: torch.Tensor) -> torch.Tensor:
        """Guided logits from per-variant logits [V, ...] (in :attr:`variants` order) -> [...]."""
        c = logits[0]
        if self.mode == "none":
            return c
        u = logits[-1]
        if self.mode == "joint":
            return c + (c - u) * self.scale  # the official float operations
        if self.mode == "dual":
            ds = self.scale if self.direction_scale is None else self.direction_scale
            return c + self.scale * (logits[1] - u) + ds * (logits[2] - u)
        return c + self.scale * (logits[1] - u)


@dataclass(frozen=True)
class Sampling:
    """How a code is chosen from guided logits: greedy argmax, or top-k sampling with a temperature.

    Top-k keeps every logit >= the k-th largest (ties kept), as the official code does.
    """

    do_sample: bool = True
    top_k: int | None = 256
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


def choose_codes(
    logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Pick one class per row of ``logits`` [..., C] -> [...] long, vectorised over all leading dims."""
    if not sampling.do_sample:
        return logits.argmax(dim=-1)
    scores = logits / sampling.temperature if sampling.temperature != 1.0 else logits
    if sampling.top_k is not None and sampling.top_k < scores.shape[-1]:
        kth = torch.topk(scores, sampling.top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    probs = F.softmax(scores, dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])


@dataclass
class GenerationResult:
    """Codes of a batch of clips.

    Attributes:
        codes: [B, T, K]; clip b is valid for its first ``lengths[b]`` frames, pad ids after.
        lengths: [B] frames per clip.
        steps: [B, S, K] the generated pattern steps (pads where nothing is predicted).
        cancelled: True if ``should_stop`` ended the loop early (codes are then incomplete).
    """

    codes: torch.Tensor
    lengths: torch.Tensor
    steps: torch.Tensor
    cancelled: bool = False


ProgressCallback = Callable[[int, int], None]  # (steps done, steps total)
# (step, rows [n], per-variant logits [V, B, n, C], guided logits [B, n, C]): to inspect or record a run.
StepObserver = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None]


def contiguous_row_order(sets: Sequence[frozenset[int]], num_rows: int) -> list[int] | None:
    """An ordering of rows in which every set is a contiguous run, or None if none is found.

    Tries the natural order, then every order of the groups of rows that belong to the same sets (few
    for the patterns here: three for ViSAGe). Lets each step's live heads be a single slice.
    """

    def is_contiguous(order: Sequence[int]) -> bool:
        pos = {r: i for i, r in enumerate(order)}
        return all(max(pos[r] for r in s) - min(pos[r] for r in s) + 1 == len(s) for s in sets if s)

    natural = list(range(num_rows))
    if is_contiguous(natural):
        return natural
    groups: dict[tuple[bool, ...], list[int]] = {}
    for r in natural:
        groups.setdefault(tuple(r in s for s in sets), []).append(r)
    if len(groups) > 7:
        return None
    for perm in itertools.permutations(groups.values()):
        order = [r for g in perm for r in g]
        if is_contiguous(order):
            return order
    return None


class _HeadRuns:
    """Head weights reordered so that each distinct live set is one contiguous slice."""

    def __init__(self, model: Visage, live_sets: Sequence[frozenset[int]]) -> None:
        w, b = model.heads.weight, model.heads.bias  # [K, C, D], [K, C]
        k = w.shape[0]
        order = contiguous_row_order(live_sets, k)
        self._slices: dict[frozenset[int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        if order is not None:
            idx = torch.tensor(order, device=w.device)
            w_ord, b_ord = w.index_select(0, idx), b.index_select(0, idx)
            pos = {r: i for i, r in enumerate(order)}
            for s in live_sets:
                lo = min(pos[r] for r in s)
                rows = idx[lo : lo + len(s)]
                self._slices[s] = (rows, w_ord[lo : lo + len(s)], b_ord[lo : lo + len(s)])
        else:  # no single order: one gathered copy per set
            for s in live_sets:
                rows = torch.tensor(sorted(s), device=w.device)
                self._slices[s] = (rows, w.index_select(0, rows), b.index_select(0, rows))

    def logits(self, h: torch.Tensor, live: frozenset[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows [n] and their logits [N, n, C] for decoder states ``h`` [N, D]."""
        rows, w, b = self._slices[live]
        n, c, d = w.shape
        return rows, few_rows_linear(h, w.reshape(n * c, d), b.reshape(n * c)).view(-1, n, c)


def _as_counts(value: int | Sequence[int] | torch.Tensor | None, batch: int, name: str) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return [value] * batch
    counts = [int(v) for v in (value.tolist() if isinstance(value, torch.Tensor) else value)]
    if len(counts) != batch:
        raise ValueError(f"{name} has {len(counts)} entries for a batch of {batch}")
    return counts


@torch.inference_mode()
def generate(
    model: Visage,
    clip: torch.Tensor,
    energy_map: torch.Tensor | None = None,
    direction: torch.Tensor | None = None,
    *,
    guidance: Guidance = Guidance(),
    top_k: int | None = 256,
    temperature: float = 1.0,
    do_sample: bool = True,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    frame_counts: int | Sequence[int] | torch.Tensor | None = None,
    num_frames: int | Sequence[int] | None = None,
    prompt: torch.Tensor | None = None,
    prompt_frames: int | Sequence[int] | None = None,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    step_observer: StepObserver | None = None,
    static_steps: bool | None = None,
) -> GenerationResult:
    """Generate the codes of a batch of clips.

    Args:
        model: the network (eval mode is set for the call's duration).
        clip: [B, F, d_clip] CLIP frame embeddings (clips shorter than F padded at the end).
        energy_map: [B, F, 49] or None; direction: [B, 3] model direction vectors or None.
        guidance: see :class:`Guidance`.
        top_k, temperature, do_sample: see :class:`Sampling`.
        generator: random stream for sampling (reproducible runs); a sequence gives each clip its own
            stream, so that a clip's result does not depend on which other clips share its batch.
        frame_counts: real CLIP frames per clip (default F for all).
        num_frames: code frames to generate per clip; default the official int(frames / 4 * 86), and
            then the result is padded to the official length by repeating the last frame (431 for 20
            frames). With an explicit value exactly that many frames are returned.
        prompt: [B, Tp, K] codes to continue from (forced, not sampled): a window that overlaps the
            previous one starts from its last codes so that the joined stream has no seam.
        prompt_frames: how many leading frames of ``prompt`` each clip uses (default all Tp).
        progress: called as progress(done, total) after each step.
        should_stop: polled between steps; True stops early (``cancelled`` in the result).
        step_observer: called with each step's logits (see :data:`StepObserver`).
        static_steps: decode with fixed tensor shapes, replayed as a CUDA graph on a GPU (default: on
            CUDA only; on a CPU the dynamic form is faster).
    """
    cfg = model.config
    pattern = model.pattern
    pad = cfg.dac_pad_token_id
    device = clip.device
    b, f, _ = clip.shape
    k = pattern.num_rows
    sampling = Sampling(do_sample, top_k, temperature)
    seq = cfg.sequence

    if isinstance(generator, Sequence) and len(generator) != b:
        raise ValueError(f"{len(generator)} generators for a batch of {b} clips")
    counts = _as_counts(frame_counts, b, "frame_counts") or [f] * b
    if any(not 1 <= c <= f for c in counts):
        raise ValueError(f"frame_counts {counts} must lie in [1, {f}]")
    explicit = _as_counts(num_frames, b, "num_frames")
    frames = explicit or [seq.generated_codec_frames(c) for c in counts]
    steps_per_clip = [pattern.num_steps(t) for t in frames]
    total_steps = max(steps_per_clip)
    if total_steps > model.decoder.max_positions:
        raise ValueError(
            f"{max(frames)} code frames need {total_steps} decoder steps; the model has "
            f"{model.decoder.max_positions} (generate longer clips in windows)"
        )

    # Per clip: which (step, row) cells are predicted, and which of them are forced by the prompt.
    live = torch.zeros(b, total_steps, k, dtype=torch.bool)
    forced = torch.zeros_like(live)
    forced_ids = torch.full((b, total_steps, k), pad, dtype=torch.long)
    p_frames = [0] * b
    if prompt is not None:
        p_frames = _as_counts(prompt_frames, b, "prompt_frames") or [prompt.shape[1]] * b
        prompt_steps = pattern.build(prompt.long().cpu(), pad)
    for i, (t, s) in enumerate(zip(frames, steps_per_clip, strict=True)):
        frame_of = pattern.frame_index(t)  # [S_i, K]
        live[i, :s] = frame_of >= 0
        if p_frames[i]:
            if p_frames[i] > min(t, prompt.shape[1]):  # type: ignore[union-attr]
                raise ValueError(f"prompt_frames {p_frames[i]} exceed the prompt or the clip's {t} frames")
            cells = (frame_of >= 0) & (frame_of < p_frames[i])
            n = min(s, prompt_steps.shape[1])
            forced[i, :n] = cells[:n]
            forced_ids[i, :n] = torch.where(cells[:n], prompt_steps[i, :n], pad)
    union = live.any(dim=0)  # [S, K] rows needed by some clip at each step
    live_sets = [frozenset(torch.nonzero(union[s]).flatten().tolist()) for s in range(total_steps)]
    # Leading steps whose every live cell is forced are fed in one prefill chunk.
    fully_forced = (forced == live).all(dim=2).all(dim=0)  # [S]
    prefill = min(int(torch.cumprod(fully_forced.int(), 0).sum()), total_steps - 1)

    variants = guidance.variants
    v = len(variants)
    null_video = torch.tensor([nv for nv, _ in variants for _ in range(b)], device=device)
    null_dir = torch.tensor([nd for _, nd in variants for _ in range(b)], device=device)
    counts_t = torch.tensor(counts * v, device=device)

    def rep(x: torch.Tensor) -> torch.Tensor:
        return x.repeat(v, *([1] * (x.dim() - 1)))  # [v·B, ...], variant-major

    was_training = model.training
    model.eval()
    try:
        cond = model.conditions(
            rep(clip),
            None if energy_map is None else rep(energy_map),
            None if direction is None else rep(direction),
            null_video=null_video,
            null_direction=null_dir,
            frame_counts=counts_t,
        )
        states, mask = model.encode_conditions(cond)
        cache = model.decoder.new_cache(states, mask, total_steps)
        heads = _HeadRuns(model, sorted(set(live_sets), key=sorted))
        live_d, forced_d, forced_ids_d = live.to(device), forced.to(device), forced_ids.to(device)

        out = torch.full((b, total_steps, k), pad, dtype=torch.long, device=device)
        out[:, :prefill] = forced_ids_d[:, :prefill]
        first = out[:, :prefill].repeat(v, 1, 1) if prefill else None
        h = model.decoder(model.decoder.embed(first, prepend_bos=True, batch_size=v * b), cache=cache)[:, -1]
        static = device.type == "cuda" if static_steps is None else static_steps
        decode_step = StaticDecodeStep(model.decoder, cache, v * b, use_graph=True) if static else None
        cancelled = False
        for step in range(prefill, total_steps):
            if should_stop is not None and should_stop():
                cancelled = True
                break
            rows, logits = heads.logits(h, live_sets[step])  # [n], [N, n, C]
            per_variant = logits.float().view(v, b, *logits.shape[1:])  # [V, B, n, C]
            guided = guidance.combine(per_variant)  # [B, n, C]
            if step_observer is not None:
                step_observer(step, rows, per_variant, guided)
            if isinstance(generator, Sequence):  # one stream per clip
                chosen = torch.stack([choose_codes(guided[i], sampling, g) for i, g in enumerate(generator)])
            else:
                chosen = choose_codes(guided, sampling, generator)  # [B, n]
            row = torch.full((b, k), pad, dtype=torch.long, device=device)
            row[:, rows] = chosen
            row = torch.where(forced_d[:, step], forced_ids_d[:, step], row)
            row = torch.where(live_d[:, step], row, pad)
            out[:, step] = row
            if progress is not None:
                progress(step + 1, total_steps)
            if step + 1 < total_steps:
                rows_in = row.repeat(v, 1)  # [N, K]: every variant is fed the same choice
                if decode_step is not None:
                    h = decode_step(rows_in, step + 1)
                else:
                    h = model.decoder(model.decoder.embed(rows_in[:, None], prepend_bos=False), cache=cache)[
                        :, -1
                    ]
    finally:
        model.train(was_training)

    return _collect(model, out, frames, counts, explicit is None, cancelled)


def _collect(
    model: Visage,
    steps: torch.Tensor,
    frames: list[int],
    counts: list[int],
    official_padding: bool,
    cancelled: bool,
) -> GenerationResult:
    """De-interleave each clip and, for default lengths, repeat the last frame as the official code does."""
    pad = model.config.dac_pad_token_id
    seq = model.config.sequence
    lengths = [
        seq.output_codec_frames(c) if official_padding else t for t, c in zip(frames, counts, strict=True)
    ]
    b, _, k = steps.shape
    codes = steps.new_full((b, max(lengths), k), pad)
    for i, (t, n) in enumerate(zip(frames, lengths, strict=True)):
        clip_codes = model.pattern.revert(steps[i : i + 1, : model.pattern.num_steps(t)], t)[0]  # [T, K]
        codes[i, :t] = clip_codes
        if n > t:
            codes[i, t:n] = clip_codes[-1]
    return GenerationResult(codes, torch.tensor(lengths), steps, cancelled)
