"""A clip's generation does not depend on the clips that share its batch (``batch_invariant=True``).

The oracle is the clip generated alone: its guided logits at every step and its codes must be equal, bit
for bit, inside batches of 2 and 5 clips of other lengths, prompts and positions. Logits are compared,
not only codes, because a one-ulp logit difference rarely changes a sampled code in a short test run,
yet over a real clip it does (the hardening issue measured 0.07 of sample difference in a batch).
"""

from __future__ import annotations

import pytest
import torch

from visage.model.network.generation import generate
from visage.model.network.tiny_random import random_conditions, tiny_random_visage

F = 6  # CLIP frames every clip is padded to, as the pipeline pads to the model's window
FRAMES_OUT = {2: 9, 3: 12, 4: 16, 5: 20, 6: 24}  # code frames generated per clip length (short runs)


@pytest.fixture(scope="module")
def model():
    return tiny_random_visage(seed=23)


def _clip(seed: int, frames: int, prompt_frames: int) -> dict:
    clip, energy, direction = random_conditions(1, F, seed=seed)
    clip[:, frames:] = 0
    energy[:, frames:] = 0
    prompt = torch.randint(0, 1024, (1, prompt_frames, 36), generator=torch.Generator().manual_seed(seed))
    return {
        "clip": clip,
        "energy": energy,
        "direction": direction,
        "frames": frames,
        "prompt": prompt,
        "seed": seed,
    }


CLIPS = [_clip(1, 6, 0), _clip(2, 3, 4), _clip(3, 5, 7), _clip(4, 2, 0), _clip(5, 4, 2)]  # frames, prompt


def _run(model, clips: list[dict], *, batch_invariant: bool = True, **kwargs):
    """Generate ``clips`` as one batch; returns the result and each clip's guided logits per step."""
    logits: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(clips))}

    def observe(step, lane, rows, per_variant, guided) -> None:
        for j, c in enumerate(lane):
            order = torch.argsort(rows)
            logits[c].append(torch.cat([rows[order].float(), guided[j, order].flatten()]))

    max_prompt = max(c["prompt"].shape[1] for c in clips)
    prompt = torch.zeros(len(clips), max(max_prompt, 1), 36, dtype=torch.long)
    for i, c in enumerate(clips):
        prompt[i, : c["prompt"].shape[1]] = c["prompt"][0]
    result = generate(
        model,
        torch.cat([c["clip"] for c in clips]),
        torch.cat([c["energy"] for c in clips]),
        torch.cat([c["direction"] for c in clips]),
        generator=[torch.Generator().manual_seed(c["seed"]) for c in clips],
        frame_counts=[c["frames"] for c in clips],
        prompt=prompt,
        prompt_frames=[c["prompt"].shape[1] for c in clips],
        step_observer=observe,
        batch_invariant=batch_invariant,
        num_frames=[FRAMES_OUT[c["frames"]] for c in clips],
        temperature=1.5,
        **kwargs,
    )
    return result, logits


@pytest.mark.parametrize("batch", [[0, 1], [3, 1, 4, 0, 2]])
def test_a_clip_in_a_batch_equals_the_clip_alone_bit_for_bit(model, batch: list[int]) -> None:
    together, together_logits = _run(model, [CLIPS[i] for i in batch])
    for position, i in enumerate(batch):
        alone, alone_logits = _run(model, [CLIPS[i]])
        n = int(alone.lengths[0])
        assert int(together.lengths[position]) == n
        assert torch.equal(together.codes[position, :n], alone.codes[0, :n]), f"clip {i} at {position}"
        steps = together_logits[position]
        assert len(steps) == len(alone_logits[0])
        assert all(torch.equal(a, b) for a, b in zip(steps, alone_logits[0], strict=True)), f"clip {i} logits"


@pytest.mark.parametrize("batch_invariant", [False, True])
def test_a_stopped_clip_leaves_the_batch_and_the_others_finish(model, batch_invariant: bool) -> None:
    clips = [CLIPS[0], CLIPS[2], CLIPS[4]]
    calls = {"n": 0}

    def stop_clip(c: int) -> bool:
        calls["n"] += 1
        return c == 1 and calls["n"] > 30  # clip 1 is cancelled some steps in

    result, _ = _run(model, clips, batch_invariant=batch_invariant, stop_clip=stop_clip)
    assert result.stopped == frozenset({1}) and not result.cancelled
    reference, _ = _run(model, clips, batch_invariant=batch_invariant)
    for i in (0, 2):
        n = int(reference.lengths[i])
        if batch_invariant:
            assert torch.equal(result.codes[i, :n], reference.codes[i, :n])
        assert (result.codes[i, :n] != 1024).all()
    assert (result.codes[1] == 1024).any()  # clip 1 was left unfinished
