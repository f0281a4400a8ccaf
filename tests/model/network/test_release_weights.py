"""Checks that need the released weights (network on first use) or a CUDA GPU; skipped otherwise.

Run them with ``VISAGE_TEST_WEIGHTS=1 python -m pytest -m weights`` (after ``visage download``) and
``python -m pytest -m gpu`` on a machine with a GPU.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from visage.model.audio.ambisonics import peak_direction, sphere_energy_map, spherical_grid
from visage.model.features.direction import CameraDirection
from visage.model.inference.pipeline import GenerationRequest, VideoToAmbisonics
from visage.model.network.checkpoint import load_pretrained, to_official_state_dict
from visage.model.network.config import VisageConfig
from visage.model.network.tiny_random import tiny_random_visage


@pytest.mark.weights
def test_released_checkpoint_is_the_documented_architecture() -> None:
    model = load_pretrained()  # jaeyeonkim99/visage through the hub cache
    state = to_official_state_dict(model)
    assert len(state) == 539 and sum(t.numel() for t in state.values()) == 358_626_868
    ours = model.config.to_dict()
    released = VisageConfig.preset("released").to_dict()
    for key in ("d_model", "encoder_layers", "decoder_layers", "max_source_length", "max_target_length"):
        assert ours[key] == released[key]


@pytest.mark.weights
@pytest.mark.slow
def test_generated_sound_follows_the_camera(tmp_path: Path) -> None:
    """The sound of what the camera sees lands where the camera looks (AmbiX yaw +90 = left)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
    from make_example_clip import main as make_clip

    clip = tmp_path / "clip.mp4"
    make_clip([str(clip)])
    pipeline = VideoToAmbisonics.load()
    grid = spherical_grid(2.0)
    peaks = {}
    for yaw in (90.0, -90.0):
        (out,) = pipeline.generate(
            [GenerationRequest(clip, 0.0, 5.0, CameraDirection(yaw, 0.0), seed=0, sample_rate=44100)]
        )
        energy = sphere_energy_map(out.audio, grid.azimuths, grid.elevations)
        peaks[yaw] = math.degrees(peak_direction(energy, grid).azimuth)
    assert peaks[90.0] > 20 and peaks[-90.0] < -20, peaks


@pytest.mark.gpu
def test_cuda_graph_steps_match_eager_steps() -> None:
    model = tiny_random_visage(seed=5).cuda()
    g = torch.Generator().manual_seed(0)
    clip = (0.5 * torch.randn(2, 8, 512, generator=g)).cuda()
    energy = torch.softmax(torch.randn(2, 8, 49, generator=g), -1).cuda()
    direction = torch.nn.functional.normalize(torch.randn(2, 3, generator=g), dim=-1).cuda()
    graph = model.generate(clip, energy, direction, do_sample=False, static_steps=True)
    eager = model.generate(clip, energy, direction, do_sample=False, static_steps=False)
    assert torch.equal(graph, eager)


@pytest.mark.gpu
def test_bf16_generation_runs_on_gpu() -> None:
    model = tiny_random_visage(seed=5).cuda().to(torch.bfloat16)
    clip = torch.zeros(1, 20, 512, device="cuda", dtype=torch.bfloat16)
    codes = model.generate(clip, None, torch.tensor([[0.0, 0.0, 1.0]], device="cuda", dtype=torch.bfloat16))
    assert codes.shape == (1, 431, 36) and bool((codes < 1024).all())
    assert np.isfinite(codes.float().cpu().numpy()).all()
