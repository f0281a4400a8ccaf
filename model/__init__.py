"""ViSAGe model core: the network, its checkpoints, generation, the video-to-AmbiX pipeline and delivery.

The public names load lazily, so that ``visage --help`` and light tools do not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Visage": "network.visage",
    "VisageConfig": "network.config",
    "SequenceConfig": "network.sequence",
    "CodePattern": "network.code_pattern",
    "get_pattern": "network.code_pattern",
    "Guidance": "network.generation",
    "CameraDirection": "features.direction",
    "DirectionCurve": "features.direction",
    "VideoToAmbisonics": "inference.pipeline",
    "GenerationRequest": "inference.pipeline",
    "load_pretrained": "network.checkpoint",
    "write_ambix": "files.audio_io",
    "read_ambix": "files.audio_io",
    "write_binaural_preview": "delivery.binaural_preview",
    "render_sound_map": "delivery.sound_map_render",
    "mux_spatial_audio": "delivery.spatial_mux",
}

__all__ = [
    "CameraDirection",
    "CodePattern",
    "DirectionCurve",
    "GenerationRequest",
    "Guidance",
    "SequenceConfig",
    "VideoToAmbisonics",
    "Visage",
    "VisageConfig",
    "get_pattern",
    "load_pretrained",
    "mux_spatial_audio",
    "read_ambix",
    "render_sound_map",
    "write_ambix",
    "write_binaural_preview",
]

if TYPE_CHECKING:  # pragma: no cover
    from visage.model.delivery.binaural_preview import write_binaural_preview
    from visage.model.delivery.sound_map_render import render_sound_map
    from visage.model.delivery.spatial_mux import mux_spatial_audio
    from visage.model.features.direction import CameraDirection, DirectionCurve
    from visage.model.files.audio_io import read_ambix, write_ambix
    from visage.model.inference.pipeline import GenerationRequest, VideoToAmbisonics
    from visage.model.network.checkpoint import load_pretrained
    from visage.model.network.code_pattern import CodePattern, get_pattern
    from visage.model.network.config import VisageConfig
    from visage.model.network.generation import Guidance
    from visage.model.network.sequence import SequenceConfig
    from visage.model.network.visage import Visage


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'visage.model' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
