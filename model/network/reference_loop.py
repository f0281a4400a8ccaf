"""The official generation loop's structure, re-enacted on this model, as a baseline.

``generate_cfg`` in the official code runs the conditional and the unconditional decoder one after the
other at every step, evaluates each live head separately and samples head by head (ascending) with one
``torch.multinomial`` call each. This module does the same with this project's modules (on the
official kernels: plain ``F.linear``, see :mod:`few_rows_linear`), so that benchmarks can compare the
batched loop of :mod:`generation` against it in one process, and so that a test can check sampling
against the official random stream. It is slower by design; do not use it to
generate audio.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .few_rows_linear import plain_linear
from .visage import Visage


@torch.inference_mode()
@plain_linear()
def reference_generate_cfg(
    model: Visage,
    clip: torch.Tensor,
    energy_map: torch.Tensor | None,
    direction: torch.Tensor | None,
    *,
    guidance_scale: float = 2.5,
    top_k: int = 256,
    do_sample: bool = True,
    generator: torch.Generator | None = None,
    num_frames: int | None = None,
) -> torch.Tensor:
    """Codes [B, T_out, K] as the official ``generate_cfg`` makes them (joint guidance only).

    ``num_frames`` shortens the run (for benchmarks); the result is then exactly that many frames.
    """
    cfg, pattern = model.config, model.pattern
    pad = cfg.dac_pad_token_id
    b, f, _ = clip.shape
    t = cfg.sequence.generated_codec_frames(f) if num_frames is None else num_frames
    total = pattern.num_steps(t)
    live = pattern.live_mask(t)  # [S, K]
    model.eval()

    def start(null: bool):
        flags = torch.full((b,), null, dtype=torch.bool, device=clip.device)
        cond = model.conditions(clip, energy_map, direction, null_video=flags, null_direction=flags)
        states, mask = model.encode_conditions(cond)
        cache = model.decoder.new_cache(states, mask, total)
        return cache, model.decoder(model.decoder.embed(None, prepend_bos=True, batch_size=b), cache=cache)[
            :, -1
        ]

    cond_cache, h_cond = start(False)
    uncond_cache, h_uncond = start(True)
    rows = []
    for step in range(total):
        row = torch.full((b, pattern.num_rows), pad, dtype=torch.long, device=clip.device)
        for head in torch.nonzero(live[step]).flatten().tolist():
            w, bias = model.heads.weight[head], model.heads.bias[head]
            c = F.linear(h_cond, w, bias)
            u = F.linear(h_uncond, w, bias)
            g = c + (c - u) * guidance_scale
            if do_sample:
                kth = torch.topk(g, top_k, dim=-1).values[:, -1:]
                probs = F.softmax(g.masked_fill(g < kth, float("-inf")), dim=-1)
                row[:, head] = torch.multinomial(probs, 1, generator=generator)[:, 0]
            else:
                row[:, head] = g.argmax(dim=-1)
        rows.append(row)
        if step + 1 < total:
            emb = model.decoder.embed(row[:, None], prepend_bos=False)
            h_cond = model.decoder(emb, cache=cond_cache)[:, -1]
            h_uncond = model.decoder(emb, cache=uncond_cache)[:, -1]
    codes = pattern.revert(torch.stack(rows, dim=1), t)  # [B, T, K]
    n_out = cfg.sequence.output_codec_frames(f) if num_frames is None else t
    return torch.cat([codes, codes[:, -1:].expand(b, n_out - t, -1)], dim=1)
