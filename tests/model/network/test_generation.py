"""Generation: guidance formulas, sampling, batching, prompts, cancellation, reproducibility."""

from __future__ import annotations

import pytest
import torch

from visage.model.network.generation import (
    DIRECTION_ONLY,
    FULL,
    UNCONDITIONAL,
    VIDEO_ONLY,
    Guidance,
    Sampling,
    choose_codes,
    contiguous_row_order,
)
from visage.model.network.reference_loop import reference_generate_cfg
from visage.model.network.tiny_random import random_conditions, tiny_random_visage

PAD = 1024


@pytest.fixture(scope="module")
def model():
    return tiny_random_visage(seed=11)


def _inputs(b: int = 2, f: int = 4, seed: int = 0):
    return random_conditions(b, f, seed=seed)


# -- pure pieces ----------------------------------------------------------------------------------------


def test_guidance_formulas() -> None:
    c, d, v, u = (torch.full((2, 3), x) for x in (1.0, 2.0, 5.0, 7.0))
    assert torch.equal(Guidance("joint", 2.5).combine(torch.stack([c, u])), c + (c - u) * 2.5)
    assert torch.allclose(Guidance("directional", 2.0).combine(torch.stack([c, d, u])), c + 2.0 * (d - u))
    assert torch.allclose(Guidance("visual", 2.0).combine(torch.stack([c, v, u])), c + 2.0 * (v - u))
    dual = Guidance("dual", 2.0, direction_scale=0.5).combine(torch.stack([c, v, d, u]))
    assert torch.allclose(dual, c + 2.0 * (v - u) + 0.5 * (d - u))
    assert torch.equal(Guidance("none").combine(c[None]), c)
    assert Guidance("joint").variants == (FULL, UNCONDITIONAL)
    assert Guidance("dual").variants == (FULL, VIDEO_ONLY, DIRECTION_ONLY, UNCONDITIONAL)
    with pytest.raises(ValueError, match="guidance mode"):
        Guidance("loud")
    with pytest.raises(ValueError, match="finite"):
        Guidance("joint", float("nan"))


def test_choose_codes_greedy_and_top_k() -> None:
    logits = torch.randn(3, 5, 1024, generator=torch.Generator().manual_seed(0))
    assert torch.equal(choose_codes(logits, Sampling(do_sample=False)), logits.argmax(-1))
    assert torch.equal(choose_codes(logits, Sampling(top_k=1)), logits.argmax(-1))
    allowed = torch.topk(logits, 4, dim=-1).indices
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        picked = choose_codes(logits, Sampling(top_k=4), g)
        assert (allowed == picked[..., None]).any(-1).all()


def test_choose_codes_is_reproducible_and_temperature_sharpens() -> None:
    logits = torch.randn(4, 1024, generator=torch.Generator().manual_seed(2))
    a = choose_codes(logits, Sampling(), torch.Generator().manual_seed(7))
    b = choose_codes(logits, Sampling(), torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    cold = choose_codes(logits, Sampling(top_k=None, temperature=1e-4), torch.Generator().manual_seed(3))
    assert torch.equal(cold, logits.argmax(-1))
    with pytest.raises(ValueError):
        Sampling(temperature=0.0)


def test_contiguous_row_order() -> None:
    w_r_s_p = frozenset([*range(1, 10), 18, 27])
    s_r = frozenset(range(36)) - w_r_s_p - {0}
    sets = [frozenset([0]), w_r_s_p, s_r | {0}, s_r]
    order = contiguous_row_order(sets, 36)
    assert order is not None and sorted(order) == list(range(36))
    pos = {r: i for i, r in enumerate(order)}
    for s in sets:
        idx = sorted(pos[r] for r in s)
        assert idx == list(range(idx[0], idx[0] + len(idx)))
    # three sets pairwise overlapping around a cycle cannot all be contiguous
    assert contiguous_row_order([frozenset({0, 1}), frozenset({1, 2}), frozenset({2, 0})], 3) is None


# -- the loop -------------------------------------------------------------------------------------------


def test_batched_loop_equals_official_structure_when_greedy(model) -> None:
    clip, energy, direction = _inputs()
    fast = model.generate(clip, energy, direction, do_sample=False)
    slow = reference_generate_cfg(model, clip, energy, direction, do_sample=False)
    assert torch.equal(fast, slow)
    assert fast.shape == (2, 87, 36)  # 4 frames -> 86 generated + 1 repeated


def test_static_shape_steps_equal_the_dynamic_ones(model) -> None:
    # the form replayed as a CUDA graph on a GPU, run eagerly here
    clip, energy, direction = _inputs(b=2, seed=8)
    seen = {}
    for static in (False, True):
        logits = []
        result = model.generate_full(
            clip,
            energy,
            direction,
            do_sample=False,
            frame_counts=[4, 3],
            static_steps=static,
            step_observer=lambda s, c, r, v, g, out=logits: out.append(g),
        )
        seen[static] = (result.codes, torch.cat([g.flatten() for g in logits]))
    assert torch.equal(seen[True][0], seen[False][0])
    assert (seen[True][1] - seen[False][1]).abs().max() < 1e-4


def test_sampling_is_reproducible_with_a_generator(model) -> None:
    clip, energy, direction = _inputs()
    a = model.generate(clip, energy, direction, generator=torch.Generator().manual_seed(5))
    b = model.generate(clip, energy, direction, generator=torch.Generator().manual_seed(5))
    c = model.generate(clip, energy, direction, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_per_clip_generators_make_results_independent_of_the_batch(model) -> None:
    clip, energy, direction = _inputs(b=2, seed=4)
    pair = model.generate(
        clip,
        energy,
        direction,
        num_frames=8,
        generator=[torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)],
    )
    alone = model.generate(
        clip[1:], energy[1:], direction[1:], num_frames=8, generator=[torch.Generator().manual_seed(2)]
    )
    assert torch.equal(pair[1:], alone)
    with pytest.raises(ValueError, match="generators"):
        model.generate(clip, energy, direction, num_frames=8, generator=[torch.Generator()])


def test_clips_of_different_lengths_generate_together(model) -> None:
    clip, energy, direction = _inputs(b=2, f=4, seed=1)
    result = model.generate_full(clip, energy, direction, do_sample=False, frame_counts=[4, 2])
    assert result.lengths.tolist() == [87, 44]  # ceil(int(n/4*44100)/512)
    alone = model.generate(clip[1:, :2], energy[1:, :2], direction[1:], do_sample=False)
    first = model.generate(clip[:1], energy[:1], direction[:1], do_sample=False)
    assert torch.equal(result.codes[1, :44], alone[0])
    assert (result.codes[1, 44:] == PAD).all()
    assert torch.equal(result.codes[0], first[0])


def test_prompt_is_kept_and_continuation_matches_an_unbroken_run(model) -> None:
    clip, energy, direction = _inputs(b=1, f=4, seed=2)
    whole = model.generate_full(clip, energy, direction, do_sample=False, num_frames=30)
    prompt = whole.codes[:, :12]
    cont = model.generate_full(clip, energy, direction, do_sample=False, num_frames=30, prompt=prompt)
    assert torch.equal(cont.codes, whole.codes)
    # an arbitrary prompt is copied verbatim and the rest is generated
    other = torch.randint(0, 1024, (1, 12, 36), generator=torch.Generator().manual_seed(0))
    forced = model.generate_full(clip, energy, direction, do_sample=False, num_frames=30, prompt=other)
    assert torch.equal(forced.codes[:, :12], other)
    assert not torch.equal(forced.codes[:, 12:], whole.codes[:, 12:])


def test_progress_and_cancellation(model) -> None:
    clip, energy, direction = _inputs(b=1)
    calls = []
    model.generate_full(clip, energy, direction, num_frames=5, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 11) for i in range(1, 12)]
    stop_after = iter(range(100))
    result = model.generate_full(
        clip, energy, direction, num_frames=5, should_stop=lambda: next(stop_after) >= 3
    )
    assert result.cancelled and (result.steps[:, 3:] == PAD).all()


def test_guidance_modes_are_consistent(model) -> None:
    clip, energy, direction = _inputs(b=1, seed=3)

    def run(**kw):
        return model.generate(clip, energy, direction, do_sample=False, num_frames=20, **kw)

    none = run(mode="none")
    assert torch.equal(run(mode="visual", guidance_scale=0.0), none)
    assert torch.equal(run(mode="joint", guidance_scale=0.0), none)
    assert torch.equal(
        run(mode="dual", guidance_scale=1.5, direction_scale=0.0), run(mode="visual", guidance_scale=1.5)
    )
    assert torch.equal(
        run(mode="dual", guidance_scale=0.0, direction_scale=1.5), run(mode="directional", guidance_scale=1.5)
    )
    assert not torch.equal(run(mode="joint", guidance_scale=3.0), none)


def test_other_patterns_generate(model) -> None:
    from visage.model.network.code_pattern import get_pattern

    clip, energy, direction = _inputs(b=1)
    for name in ("delay", "residual", "spatial"):
        model.pattern = get_pattern(name)
        try:
            codes = model.generate(clip, energy, direction, num_frames=6, do_sample=False)
        finally:
            model.pattern = get_pattern("visage")
        assert codes.shape == (1, 6, 36) and (codes < 1024).all()


def test_too_long_is_refused(model) -> None:
    clip, energy, direction = _inputs(b=1)
    with pytest.raises(ValueError, match="windows"):
        model.generate(clip, energy, direction, num_frames=431)
