"""CLIP ViT-B/32 features of video frames, computed as the official preprocessing did (spec §7.2, §7.3).

Dimensions: F frames, S image side (224), P tokens per frame (50 = CLS + 7x7 patches of 32 pixels),
D transformer width (768 for ViT-B/32), E projection width (512, ViSAGe's CLIP input width).

One forward pass gives both inputs ViSAGe needs: the projected CLS embedding per frame (``encode_image``
of OpenAI's package: ln_post(CLS) @ proj, *not* L2-normalised) and the full token sequence after the
last transformer block, before ln_post, from which energy_map.py builds the patchwise energy map.

The official run used OpenAI's package in fp16 on CUDA, which keeps LayerNorms in fp32; transformers'
fp16 model runs them in fp16, so fp16 features agree closely but not bit for bit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from huggingface_hub import constants as hub_constants
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"
# OpenAI CLIP's Normalize constants (the only part of its transform the official script kept).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


class ClipWeightsError(OSError):
    """CLIP weights cannot be loaded; the message says where they were looked for and how to get them."""


class ClipFeatures(NamedTuple):
    """Features of F frames from one forward pass, in the encoder's dtype and on its device.

    Attributes:
        frame_embeds: [F, E] projected CLS embedding (``image_embeds``), not L2-normalised.
        patch_tokens: [F, P, D] tokens after the last encoder block, before the post-layernorm; token 0
            is CLS, then the patches row by row.
    """

    frame_embeds: torch.Tensor
    patch_tokens: torch.Tensor


def preprocess_frames(frames: torch.Tensor, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[F, S, S, 3] uint8 RGB -> [F, 3, S, S] CLIP input: /255, then mean/std normalisation.

    The arithmetic is float32, as in the official script (``astype("float32") / 255`` and torchvision's
    Normalize); only the result is cast to ``dtype``. The frames are already resized and cropped.
    """
    x = frames.permute(0, 3, 1, 2).to(torch.float32) / 255  # [F, 3, S, S]
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).to(dtype)


class ClipVisionEncoder:
    """A CLIP vision tower with its projection, run over frames in batches.

    Args:
        model: a loaded ``CLIPVisionModelWithProjection`` (its device and dtype are used as they are).
        max_batch_size: frames per forward pass, to bound memory on long clips.
    """

    def __init__(self, model: CLIPVisionModelWithProjection, *, max_batch_size: int = 64) -> None:
        if max_batch_size <= 0:
            raise ValueError(f"max_batch_size must be positive, got {max_batch_size}")
        self.model = model.eval()
        self.max_batch_size = max_batch_size

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike[str] = DEFAULT_CLIP_MODEL,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        max_batch_size: int = 64,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool = False,
    ) -> ClipVisionEncoder:
        """Load weights from the Hugging Face hub (or its cache) or from a local folder.

        A full CLIP checkpoint such as ``openai/clip-vit-base-patch32`` works: its text tower is skipped.

        Args:
            source: hub id, or a folder written by ``save_pretrained`` (a path object, or a string
                starting with "/", "." or "~", or naming an existing folder).
            device: where the model runs.
            dtype: float32 (default, CPU or GPU); float16 or bfloat16 on a GPU.
            max_batch_size: frames per forward pass.
            cache_dir: Hugging Face cache to use instead of the default one.
            local_files_only: never contact the hub (as ``HF_HUB_OFFLINE=1`` does).

        Raises:
            ClipWeightsError: the weights are neither cached nor reachable, or the folder is not a model.
            ValueError: an unsupported dtype.
        """
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype}")
        if _is_local(source):
            folder = Path(source).expanduser()
            if not folder.is_dir():
                raise ClipWeightsError(f"{folder}: no such folder of CLIP weights")
            source = folder
        try:
            model = CLIPVisionModelWithProjection.from_pretrained(
                str(source), dtype=dtype, cache_dir=cache_dir, local_files_only=local_files_only
            )
        except OSError as exc:
            if isinstance(source, Path):
                raise ClipWeightsError(f"{source}: not a CLIP model folder ({exc})") from exc
            cache = cache_dir or hub_constants.HF_HUB_CACHE
            raise ClipWeightsError(
                f"CLIP weights {source!r} are not in the Hugging Face cache ({cache}) and the hub cannot be "
                "reached (offline, or no network). Run `visage download` on a machine with internet access "
                f"and copy its cache here, or pass a local folder. ({exc})"
            ) from exc
        model.to(device)  # type: ignore[arg-type]  # transformers' wrapped .to() confuses mypy
        return cls(model, max_batch_size=max_batch_size)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @property
    def image_size(self) -> int:
        """Side S of the square frames the model takes (224)."""
        return self.model.config.image_size

    @torch.inference_mode()
    def __call__(self, frames: torch.Tensor | np.ndarray) -> ClipFeatures:
        """Encode [F, S, S, 3] uint8 RGB frames (already resized and centre-cropped).

        Returns:
            Frame embeddings [F, E] and patch tokens [F, P, D].

        Raises:
            ValueError: not a non-empty uint8 [F, S, S, 3] array with S = ``image_size``.
        """
        frames = torch.as_tensor(frames)
        side = self.image_size
        if frames.dtype != torch.uint8 or frames.ndim != 4 or tuple(frames.shape[1:]) != (side, side, 3):
            raise ValueError(
                f"frames must be uint8 [F, {side}, {side}, 3] RGB, got {frames.dtype} {tuple(frames.shape)}"
            )
        if len(frames) == 0:
            raise ValueError("no frames to encode")
        embeds, tokens = [], []
        for batch in frames.split(self.max_batch_size):
            pixels = preprocess_frames(batch.to(self.device), dtype=self.dtype)  # [B, 3, S, S]
            out = self.model(pixel_values=pixels)
            embeds.append(out.image_embeds)  # [B, E]
            # transformers 5.24 modeling_clip.py, CLIPVisionModel.forward: last_hidden_state is the
            # encoder output as is; post_layernorm is applied to the pooled CLS only. So these are the
            # tokens after the last block and before ln_post, as spec §7.3 requires.
            tokens.append(out.last_hidden_state)  # [B, P, D]
        return ClipFeatures(frame_embeds=torch.cat(embeds), patch_tokens=torch.cat(tokens))


def build_tiny_random_clip(path: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write a tiny random CLIP vision model folder that loads like the real one.

    Same image size (224), patch size (32, so P = 50) and projection width (E = 512, so it feeds the real
    ViSAGe input) as ViT-B/32, but D = 32 and two layers. Every parameter, LayerNorms included, is drawn
    from a generator seeded with ``seed``, so tests are reproducible and a missing post-layernorm shows.

    Returns:
        The folder, for ``ClipVisionEncoder.from_pretrained``.
    """
    config = CLIPVisionConfig(
        image_size=224,
        patch_size=32,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=512,
    )
    with torch.random.fork_rng(devices=[]):  # transformers' own init draws from the global generator
        model = CLIPVisionModelWithProjection(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            noise = torch.randn(parameter.shape, generator=generator)
            is_norm = "layer_norm" in name or "layrnorm" in name or "layernorm" in name
            if is_norm and name.endswith("weight"):
                parameter.copy_(1 + 0.1 * noise)
            else:
                parameter.copy_((0.1 if is_norm else 0.02) * noise)
    folder = Path(path)
    model.save_pretrained(folder)
    return folder


def _is_local(source: str | os.PathLike[str]) -> bool:
    """A folder rather than a hub id: hub ids never start with "/", "." or "~"."""
    if not isinstance(source, str):
        return True
    return source.startswith(("/", ".", "~")) or os.path.isdir(source)
