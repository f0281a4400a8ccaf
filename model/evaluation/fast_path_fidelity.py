"""How far the fast decoder (``network/fast_decoder.py``) is from the exact model on the same weights.

Why three views: a logit error says how much each step's scores move, but not whether a choice
changes; free-running greedy codes say whether choices change, but one changed code changes every later
step's history, so after it the two runs are no longer comparable step for step. So both models are
also run teacher-forced on the exact model's greedy codes (the same history for both) and their guided
choices compared there.

Dimension letters: B clips, S pattern steps, K code rows, C classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from visage.model.network.generation import Guidance, generate
from visage.model.network.visage import Visage


@dataclass(frozen=True)
class Fidelity:
    """The fast model against the exact one (greedy, joint guidance), over the live cells of S steps.

    Attributes:
        steps: pattern steps compared (861 for a 5-s clip).
        cond_logit_error: max |fast - exact| of the conditional logits / their std (teacher-forced).
        guided_logit_error: the same for the guided logits, on which the choices are made.
        teacher_forced_agreement: share of cells whose guided argmax is the exact one (teacher-forced).
        greedy_agreement: share of cells whose free-running greedy code is the exact run's.
        first_divergence: first step at which the free-running codes differ (None: never).
    """

    steps: int
    cond_logit_error: float
    guided_logit_error: float
    teacher_forced_agreement: float
    greedy_agreement: float
    first_divergence: int | None

    def text(self) -> str:
        """One line for benchmark output."""
        first = "never" if self.first_divergence is None else f"at step {self.first_divergence}"
        return (
            f"logits max|d|/std cond {self.cond_logit_error:.4f} guided {self.guided_logit_error:.4f}; "
            f"teacher-forced argmax agree {100 * self.teacher_forced_agreement:.2f}%; "
            f"greedy codes agree {100 * self.greedy_agreement:.2f}% over {self.steps} steps "
            f"(first differ {first})"
        )


def greedy_steps(
    model: Visage,
    clip: torch.Tensor,
    energy_map: torch.Tensor | None,
    direction: torch.Tensor | None,
    *,
    num_frames: int,
    guidance_scale: float,
) -> torch.Tensor:
    """Free-running greedy pattern steps [B, S, K] (S = 2 * num_frames + 1), joint guidance."""
    return generate(
        model,
        clip,
        energy_map,
        direction,
        guidance=Guidance("joint", guidance_scale),
        do_sample=False,
        num_frames=num_frames,
    ).steps


@torch.inference_mode()
def teacher_forced_logits(
    model: Visage,
    clip: torch.Tensor,
    energy_map: torch.Tensor | None,
    direction: torch.Tensor | None,
    steps: torch.Tensor,
    guidance_scale: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Conditional and guided logits [B, S, K, C] (fp32) for the pattern ``steps`` [B, S, K] as history."""
    nulls = torch.ones(clip.shape[0], dtype=torch.bool, device=clip.device)
    inputs = steps[:, :-1]  # step j is predicted from steps 0..j-1 (BOS first)
    cond = model(clip, energy_map, direction, inputs).logits.float()
    uncond = model(clip, energy_map, direction, inputs, null_video=nulls, null_direction=nulls).logits.float()
    return cond, Guidance("joint", guidance_scale).combine(torch.stack([cond, uncond]))


def measure_fidelity(
    exact: Visage,
    fast: Visage,
    clip: torch.Tensor,
    energy_map: torch.Tensor | None,
    direction: torch.Tensor | None,
    *,
    exact_steps: torch.Tensor,
    fast_steps: torch.Tensor,
    guidance_scale: float,
) -> Fidelity:
    """Compare ``fast`` with ``exact`` given both free-running greedy runs (:func:`greedy_steps`)."""
    pad = exact.config.dac_pad_token_id
    live = exact_steps != pad  # [B, S, K]
    cond_e, guided_e = teacher_forced_logits(exact, clip, energy_map, direction, exact_steps, guidance_scale)
    cond_f, guided_f = teacher_forced_logits(fast, clip, energy_map, direction, exact_steps, guidance_scale)

    def relative_error(fast_logits: torch.Tensor, exact_logits: torch.Tensor) -> float:
        e, f = exact_logits[live].double(), fast_logits[live].double()  # [cells, C]
        return ((f - e).abs().max() / e.std()).item()

    agree_tf = guided_f.argmax(-1)[live] == guided_e.argmax(-1)[live]
    differs = ((fast_steps != exact_steps) & live).any(dim=2).any(dim=0)  # [S]
    first = int(differs.nonzero()[0, 0]) if bool(differs.any()) else None
    return Fidelity(
        steps=exact_steps.shape[1],
        cond_logit_error=relative_error(cond_f, cond_e),
        guided_logit_error=relative_error(guided_f, guided_e),
        teacher_forced_agreement=agree_tf.double().mean().item(),
        greedy_agreement=(fast_steps == exact_steps)[live].double().mean().item(),
        first_divergence=first,
    )
