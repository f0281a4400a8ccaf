"""Guided autoregressive generation over a code pattern, batched and cached.

Structure (compared with the official ``generate_cfg``, which runs a conditional and an unconditional
decoder one after the other with growing caches and samples each head in a Python loop):

* every guidance *variant* (conditional, unconditional, direction-only, video-only) is a slice of one
  batch: one encoder pass and one decoder pass per step for all of them;
* the decoder's self-attention keys/values live in a preallocated cache, cross-attention keys/values are
  computed once;
* the heads live at a step are one matmul over a contiguous run of a head-ordered weight copy, and the
  top-k sampling is vectorised over heads and batch;
* leading steps that are fully known (a prompt) are fed in one prefill chunk;
* with ``batch_invariant``, each clip is its own decoder batch (a *lane*), stepped in lockstep with the
  others: a clip's arithmetic, and so its codes for a given random stream, are then the same whether it
  is generated alone or beside any other clips. Matrix products are not batch-invariant otherwise (the
  kernels' summation order depends on the row count and even on a row's position), and one differing
  logit bit can change a sampled code and everything after it.

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
from .transformer import DecoderCache
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
        stopped: clips dropped early by ``stop_clip`` (their codes are incomplete).
    """

    codes: torch.Tensor
    lengths: torch.Tensor
    steps: torch.Tensor
    cancelled: bool = False
    stopped: frozenset[int] = frozenset()


ProgressCallback = Callable[[int, int], None]  # (steps done, steps total)
# (step, clips, rows [n], per-variant logits [V, B, n, C], guided logits [B, n, C]): to inspect or record a
# run. Called once per step and lane; ``clips`` are the lane's clips, in the call's batch (all of them, or
# one with ``batch_invariant``), so B = len(clips).
StepObserver = Callable[[int, list[int], torch.Tensor, torch.Tensor, torch.Tensor], None]


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
        self.heads = model.heads
        tensors = self.heads.row_tensors()  # each [K, ...]: weight [K, C, D], bias [K, C], ...
        k, device = tensors[0].shape[0], tensors[0].device
        order = contiguous_row_order(live_sets, k)
        self._slices: dict[frozenset[int], tuple[torch.Tensor, tuple[torch.Tensor, ...]]] = {}
        if order is not None:
            idx = torch.tensor(order, device=device)
            ordered = tuple(t.index_select(0, idx) for t in tensors)
            pos = {r: i for i, r in enumerate(order)}
            for s in live_sets:
                lo = min(pos[r] for r in s)
                rows = idx[lo : lo + len(s)]
                self._slices[s] = (rows, tuple(t[lo : lo + len(s)] for t in ordered))
        else:  # no single order: one gathered copy per set
            for s in live_sets:
                rows = torch.tensor(sorted(s), device=device)
                self._slices[s] = (rows, tuple(t.index_select(0, rows) for t in tensors))

    def logits(self, h: torch.Tensor, live: frozenset[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows [n] and their logits [N, n, C] for decoder states ``h`` [N, D]."""
        rows, tensors = self._slices[live]
        return rows, self.heads.rows_logits(h, tensors)


class _Lane:
    """One decoder batch: some clips, each as V rows (variant-major), with its own cache and state.

    Batched generation runs one lane for all clips; batch-invariant generation runs one lane per clip.
    Everything a lane computes depends only on its own clips.

    Args:
        clips: indices of the lane's clips in the call's batch.
        clip, energy_map, direction: the lane's inputs ([b, F, d_clip], [b, F, 49] or None, [b, 3] or None).
        counts: real CLIP frames per clip of the lane.
        live, forced, forced_ids: [b, S, K] cells of the lane's clips (CPU).
        steps: pattern steps per clip of the lane.
        heads_for: the head runs for a collection of live sets (shared between lanes).
    """

    def __init__(
        self,
        model: Visage,
        clips: list[int],
        clip: torch.Tensor,
        energy_map: torch.Tensor | None,
        direction: torch.Tensor | None,
        counts: list[int],
        guidance: Guidance,
        live: torch.Tensor,
        forced: torch.Tensor,
        forced_ids: torch.Tensor,
        steps: list[int],
        heads_for: Callable[[list[frozenset[int]]], _HeadRuns],
        static: bool,
    ) -> None:
        device = clip.device
        b = len(clips)
        variants = guidance.variants
        v = len(variants)
        self.model, self.clips, self.v, self.static = model, clips, v, static
        self.index = torch.tensor(clips, device=device)  # the lane's rows of the call's output
        self.total = max(steps)
        live, forced, forced_ids = live[:, : self.total], forced[:, : self.total], forced_ids[:, : self.total]
        union = live.any(dim=0)  # [S, K] rows needed by some clip of the lane at each step
        self.live_sets = [frozenset(torch.nonzero(union[s]).flatten().tolist()) for s in range(self.total)]
        # Leading steps whose every live cell is forced are fed in one prefill chunk.
        fully_forced = (forced == live).all(dim=2).all(dim=0)  # [S]
        self.prefill = min(int(torch.cumprod(fully_forced.int(), 0).sum()), self.total - 1)
        self.live, self.forced, self.forced_ids = live.to(device), forced.to(device), forced_ids.to(device)
        self.heads = heads_for(sorted(set(self.live_sets), key=sorted))

        def rep(x: torch.Tensor) -> torch.Tensor:
            return x.repeat(v, *([1] * (x.dim() - 1)))  # [v·b, ...], variant-major

        cond = model.conditions(
            rep(clip),
            None if energy_map is None else rep(energy_map),
            None if direction is None else rep(direction),
            null_video=torch.tensor([nv for nv, _ in variants for _ in range(b)], device=device),
            null_direction=torch.tensor([nd for _, nd in variants for _ in range(b)], device=device),
            frame_counts=torch.tensor(counts * v, device=device),
        )
        states, mask = model.encode_conditions(cond)
        self.cache = model.decoder.new_cache(states, mask, self.total)
        first = self.forced_ids[:, : self.prefill].repeat(v, 1, 1) if self.prefill else None
        embedded = model.decoder.embed(first, prepend_bos=True, batch_size=v * b)
        self.h = model.decoder(embedded, cache=self.cache)[:, -1]  # [N, D]
        self.decode_step = (
            StaticDecodeStep(model.decoder, self.cache, v * b, use_graph=True) if static else None
        )

    def active(self, step: int) -> bool:
        return self.prefill <= step < self.total

    def logits(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Live rows [n] and per-variant logits [V, b, n, C] of this step."""
        rows, logits = self.heads.logits(self.h, self.live_sets[step])  # [n], [N, n, C]
        return rows, logits.float().view(self.v, len(self.clips), *logits.shape[1:])

    def feed(self, rows: torch.Tensor, chosen: torch.Tensor, step: int) -> torch.Tensor:
        """The step's full pattern row [b, K] (chosen codes, forced prompt codes, pads), fed back."""
        k = self.live.shape[2]
        pad = self.model.config.dac_pad_token_id
        row = torch.full((len(self.clips), k), pad, dtype=torch.long, device=chosen.device)
        row[:, rows] = chosen
        row = torch.where(self.forced[:, step], self.forced_ids[:, step], row)
        row = torch.where(self.live[:, step], row, pad)
        if step + 1 < self.total:
            rows_in = row.repeat(self.v, 1)  # [N, K]: every variant is fed the same choice
            if self.decode_step is not None:
                self.h = self.decode_step(rows_in, step + 1)
            else:
                embedded = self.model.decoder.embed(rows_in[:, None], prepend_bos=False)
                self.h = self.model.decoder(embedded, cache=self.cache)[:, -1]
        return row

    def drop(self, keep: list[int]) -> None:
        """Keep only the clips at these positions of the lane (a stopped clip leaves the batch)."""
        b = len(self.clips)
        rows = torch.tensor([vi * b + j for vi in range(self.v) for j in keep], device=self.h.device)
        cache = self.cache
        self.cache = DecoderCache(
            cache.self_keys.index_select(1, rows),
            cache.self_values.index_select(1, rows),
            [x.index_select(0, rows) for x in cache.cross_keys],
            [x.index_select(0, rows) for x in cache.cross_values],
            None if cache.cross_mask is None else cache.cross_mask.index_select(0, rows),
            cache.length,
        )
        self.h = self.h.index_select(0, rows)
        kept = torch.tensor(keep, device=self.live.device)
        self.live, self.forced = self.live.index_select(0, kept), self.forced.index_select(0, kept)
        self.forced_ids = self.forced_ids.index_select(0, kept)
        self.clips = [self.clips[j] for j in keep]
        self.index = self.index.index_select(0, kept.to(self.index.device))
        if self.decode_step is not None:
            self.decode_step = StaticDecodeStep(self.model.decoder, self.cache, len(rows), use_graph=True)


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
    stop_clip: Callable[[int], bool] | None = None,
    step_observer: StepObserver | None = None,
    static_steps: bool | None = None,
    batch_invariant: bool = False,
) -> GenerationResult:
    """Generate the codes of a batch of clips.

    Args:
        model: the network (eval mode is set for the call's duration).
        clip: [B, F, d_clip] CLIP frame embeddings (clips shorter than F padded at the end).
        energy_map: [B, F, 49] or None; direction: [B, 3] model direction vectors or None.
        guidance: see :class:`Guidance`.
        top_k, temperature, do_sample: see :class:`Sampling`.
        generator: random stream for sampling (reproducible runs); a sequence gives each clip its own
            stream (needed, with ``batch_invariant``, for a clip's result not to depend on its batch).
        frame_counts: real CLIP frames per clip (default F for all).
        num_frames: code frames to generate per clip; default the official int(frames / 4 * 86), and
            then the result is padded to the official length by repeating the last frame (431 for 20
            frames). With an explicit value exactly that many frames are returned.
        prompt: [B, Tp, K] codes to continue from (forced, not sampled): a window that overlaps the
            previous one starts from its last codes so that the joined stream has no seam.
        prompt_frames: how many leading frames of ``prompt`` each clip uses (default all Tp).
        progress: called as progress(done, total) after each step.
        should_stop: polled between steps; True stops early (``cancelled`` in the result).
        stop_clip: polled per clip between steps; True drops that clip from the batch at once (it is
            listed in ``stopped``), so that a cancelled clip does not hold up or cost the others.
        step_observer: called with each step's logits (see :data:`StepObserver`).
        static_steps: decode with fixed tensor shapes, replayed as a CUDA graph on a GPU (default: on
            CUDA only; on a CPU the dynamic form is faster).
        batch_invariant: run each clip as its own decoder batch, so that its codes are bit for bit those
            it gets alone (with its own ``generator`` and the same F). Costs the batching gain of the
            decoder's matrix products; the default batches every clip into one decoder pass.
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

    head_runs: dict[tuple[frozenset[int], ...], _HeadRuns] = {}

    def heads_for(sets: list[frozenset[int]]) -> _HeadRuns:
        key = tuple(sets)
        if key not in head_runs:
            head_runs[key] = _HeadRuns(model, sets)
        return head_runs[key]

    static = device.type == "cuda" if static_steps is None else static_steps
    groups = [[i] for i in range(b)] if batch_invariant else [list(range(b))]
    was_training = model.training
    model.eval()
    try:
        lanes = [
            _Lane(
                model,
                g,
                clip[g[0] : g[-1] + 1],
                None if energy_map is None else energy_map[g[0] : g[-1] + 1],
                None if direction is None else direction[g[0] : g[-1] + 1],
                [counts[i] for i in g],
                guidance,
                live[g[0] : g[-1] + 1],
                forced[g[0] : g[-1] + 1],
                forced_ids[g[0] : g[-1] + 1],
                [steps_per_clip[i] for i in g],
                heads_for,
                static,
            )
            for g in groups
        ]
        out = torch.full((b, total_steps, k), pad, dtype=torch.long, device=device)
        for lane in lanes:
            out[lane.index, : lane.prefill] = lane.forced_ids[:, : lane.prefill]
        cancelled = False
        stopped: set[int] = set()
        for step in range(min(lane.prefill for lane in lanes), total_steps):
            if should_stop is not None and should_stop():
                cancelled = True
                break
            if stop_clip is not None:
                lanes = _without_stopped(lanes, stop_clip, stopped)
                if not lanes:
                    break
            for lane in lanes:
                if not lane.active(step):
                    continue
                rows, per_variant = lane.logits(step)  # [n], [V, b, n, C]
                guided = guidance.combine(per_variant)  # [b, n, C]
                if step_observer is not None:
                    step_observer(step, list(lane.clips), rows, per_variant, guided)
                if isinstance(generator, Sequence):  # one stream per clip
                    chosen = torch.stack(
                        [choose_codes(guided[j], sampling, generator[c]) for j, c in enumerate(lane.clips)]
                    )
                else:
                    chosen = choose_codes(guided, sampling, generator)  # [b, n]
                out[lane.index, step] = lane.feed(rows, chosen, step)
            if progress is not None:
                progress(step + 1, total_steps)
    finally:
        model.train(was_training)

    result = _collect(model, out, frames, counts, explicit is None, cancelled)
    result.stopped = frozenset(stopped)
    return result


def _without_stopped(lanes: list[_Lane], stop_clip: Callable[[int], bool], stopped: set[int]) -> list[_Lane]:
    """The lanes without the clips ``stop_clip`` names now (added to ``stopped``); empty lanes go."""
    kept: list[_Lane] = []
    for lane in lanes:
        keep = [j for j, c in enumerate(lane.clips) if not stop_clip(c)]
        stopped.update(c for j, c in enumerate(lane.clips) if j not in keep)
        if keep and len(keep) < len(lane.clips):
            lane.drop(keep)
        if keep:
            kept.append(lane)
    return kept


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
