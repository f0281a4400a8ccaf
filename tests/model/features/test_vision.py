"""CLIP features through the real loading path, with a tiny random model and nothing downloaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPVisionModelWithProjection

from visage.model.features.vision import (
    CLIP_MEAN,
    CLIP_STD,
    DEFAULT_CLIP_MODEL,
    ClipVisionEncoder,
    ClipWeightsError,
    build_tiny_random_clip,
    preprocess_frames,
)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_random_clip(tmp_path_factory.mktemp("clip") / "tiny", seed=0)


@pytest.fixture(scope="module")
def encoder(tiny_clip: Path) -> ClipVisionEncoder:
    return ClipVisionEncoder.from_pretrained(tiny_clip)


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    return torch.randint(
        0, 256, (7, 224, 224, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )


def reference_forward(model: CLIPVisionModelWithProjection, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(hidden state after the last block [F, P, D], its post-layernormed projected CLS [F, E])."""
    with torch.no_grad():
        out = model(pixel_values=preprocess_frames(frames), output_hidden_states=True)
        last_block = out.hidden_states[-1]  # [F, P, D]: embeddings + one entry per block
        vision = model.vision_model
        return last_block, model.visual_projection(vision.post_layernorm(last_block[:, 0]))


def test_shapes_and_types(encoder: ClipVisionEncoder, frames: torch.Tensor) -> None:
    features = encoder(frames)
    assert features.frame_embeds.shape == (7, 512)  # the real ViSAGe input width
    assert features.patch_tokens.shape == (7, 50, 32)  # CLS + 7x7 patches, tiny width D = 32
    assert features.frame_embeds.dtype == features.patch_tokens.dtype == torch.float32
    assert encoder.image_size == 224 and encoder.device == torch.device("cpu")


def test_patch_tokens_are_the_last_block_before_post_layernorm(
    encoder: ClipVisionEncoder, frames: torch.Tensor
) -> None:
    features = encoder(frames)
    last_block, _ = reference_forward(encoder.model, frames)
    torch.testing.assert_close(features.patch_tokens, last_block)
    normed = encoder.model.vision_model.post_layernorm(last_block)
    assert not torch.allclose(features.patch_tokens, normed, atol=1e-2)


def test_frame_embeds_are_projected_post_layernorm_cls(
    encoder: ClipVisionEncoder, frames: torch.Tensor
) -> None:
    features = encoder(frames)
    _, expected = reference_forward(encoder.model, frames)
    torch.testing.assert_close(features.frame_embeds, expected)
    norms = features.frame_embeds.norm(dim=-1)
    assert not torch.allclose(norms, torch.ones_like(norms), atol=1e-2)  # not L2-normalised


def test_batching_does_not_change_features(tiny_clip: Path, frames: torch.Tensor) -> None:
    whole = ClipVisionEncoder.from_pretrained(tiny_clip, max_batch_size=64)(frames)
    batched = ClipVisionEncoder.from_pretrained(tiny_clip, max_batch_size=3)(frames)  # 3 + 3 + 1
    torch.testing.assert_close(batched.frame_embeds, whole.frame_embeds, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(batched.patch_tokens, whole.patch_tokens, rtol=1e-5, atol=1e-5)


def test_numpy_and_torch_inputs_agree(encoder: ClipVisionEncoder, frames: torch.Tensor) -> None:
    torch.testing.assert_close(encoder(frames.numpy()).frame_embeds, encoder(frames).frame_embeds)


@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float16, 2e-2), (torch.bfloat16, 1.5e-1)])
def test_half_precision(
    tiny_clip: Path, encoder: ClipVisionEncoder, frames: torch.Tensor, dtype: torch.dtype, tolerance: float
) -> None:
    half = ClipVisionEncoder.from_pretrained(tiny_clip, dtype=dtype)
    assert half.dtype == dtype
    features = half(frames)
    assert features.frame_embeds.dtype == features.patch_tokens.dtype == dtype
    reference = encoder(frames)
    torch.testing.assert_close(features.patch_tokens.float(), reference.patch_tokens, atol=tolerance, rtol=0)


def test_bad_arguments(tiny_clip: Path, encoder: ClipVisionEncoder) -> None:
    with pytest.raises(ValueError, match="dtype must be one of"):
        ClipVisionEncoder.from_pretrained(tiny_clip, dtype=torch.float64)
    with pytest.raises(ValueError, match="max_batch_size must be positive"):
        ClipVisionEncoder(encoder.model, max_batch_size=0)


def test_preprocessing_matches_clip_image_processor() -> None:
    """Our /255 + normalise equals transformers' CLIP processor on an already cropped 224x224 frame."""
    image = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    processor = CLIPImageProcessor(do_resize=False, do_center_crop=False)
    expected = processor(images=[image], return_tensors="pt")["pixel_values"]  # [1, 3, 224, 224]
    torch.testing.assert_close(preprocess_frames(torch.from_numpy(image)[None]), expected, atol=1e-6, rtol=0)
    assert tuple(processor.image_mean) == CLIP_MEAN and tuple(processor.image_std) == CLIP_STD


def test_preprocessing_constants() -> None:
    grey = torch.full((1, 224, 224, 3), 128, dtype=torch.uint8)
    channels = preprocess_frames(grey)[0, :, 0, 0]
    expected = [(128 / 255 - m) / s for m, s in zip(CLIP_MEAN, CLIP_STD, strict=True)]
    torch.testing.assert_close(channels, torch.tensor(expected))


@pytest.mark.parametrize(
    "bad",
    [
        torch.zeros((2, 224, 224, 3), dtype=torch.float32),  # not uint8
        torch.zeros((2, 256, 256, 3), dtype=torch.uint8),  # not cropped
        torch.zeros((2, 3, 224, 224), dtype=torch.uint8),  # channels first
        torch.zeros((224, 224, 3), dtype=torch.uint8),  # no frame axis
    ],
)
def test_rejects_wrong_frames(encoder: ClipVisionEncoder, bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"frames must be uint8 \[F, 224, 224, 3\]"):
        encoder(bad)


def test_rejects_no_frames(encoder: ClipVisionEncoder) -> None:
    with pytest.raises(ValueError, match="no frames"):
        encoder(torch.zeros((0, 224, 224, 3), dtype=torch.uint8))


def test_tiny_model_is_reproducible(tmp_path: Path, tiny_clip: Path, frames: torch.Tensor) -> None:
    again = ClipVisionEncoder.from_pretrained(build_tiny_random_clip(tmp_path / "again", seed=0))
    other = ClipVisionEncoder.from_pretrained(build_tiny_random_clip(tmp_path / "other", seed=1))
    reference = ClipVisionEncoder.from_pretrained(tiny_clip)(frames[:2]).frame_embeds
    torch.testing.assert_close(again(frames[:2]).frame_embeds, reference, rtol=0, atol=0)
    assert not torch.allclose(other(frames[:2]).frame_embeds, reference)


def test_loads_a_full_clip_checkpoint(tmp_path: Path, tiny_clip: Path) -> None:
    """The hub's openai/clip-vit-base-patch32 is a whole CLIPModel: the text tower must be skipped."""
    vision = CLIPVisionModelWithProjection.from_pretrained(tiny_clip)
    config = CLIPConfig(
        vision_config=vision.config.to_dict(),
        text_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
        },
        projection_dim=512,
    )
    full = CLIPModel(config)
    full.vision_model.load_state_dict(vision.vision_model.state_dict())
    full.visual_projection.load_state_dict(vision.visual_projection.state_dict())
    full.save_pretrained(tmp_path / "full")
    loaded = ClipVisionEncoder.from_pretrained(tmp_path / "full").model
    for name, tensor in vision.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, rtol=0, atol=0, msg=name)


def test_missing_weights_offline(tmp_path: Path) -> None:
    with pytest.raises(ClipWeightsError, match="visage download") as caught:
        ClipVisionEncoder.from_pretrained(cache_dir=tmp_path, local_files_only=True)
    assert DEFAULT_CLIP_MODEL in str(caught.value) and str(tmp_path) in str(caught.value)


def test_missing_weights_with_an_empty_offline_cache(tmp_path: Path) -> None:
    """The environment route: HF_HUB_OFFLINE=1 and HF_HUB_CACHE pointing at an empty folder."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path), "HF_HOME": str(tmp_path)}
    code = "from visage.model.features.vision import ClipVisionEncoder; ClipVisionEncoder.from_pretrained()"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "ClipWeightsError" in result.stderr and "visage download" in result.stderr
    assert str(tmp_path) in result.stderr


def test_missing_local_folder(tmp_path: Path) -> None:
    with pytest.raises(ClipWeightsError, match="no such folder"):
        ClipVisionEncoder.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(ClipWeightsError, match="not a CLIP model folder"):
        ClipVisionEncoder.from_pretrained(tmp_path)  # exists, but holds no config.json
