"""ViSAGe model core: the network, its checkpoints, generation, the video-to-AmbiX pipeline and delivery.

The public names load lazily, so that ``visage --help`` and light tools do not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Visage": "visage",
    "VisageConfig": "config",
    "SequenceConfig": "sequence",
    "CodePattern": "code_pattern",
    "get_pattern": "code_pattern",
    "Guidance": "generation",
    "CameraDirection": "direction",
    "DirectionCurve": "direction",
    "VideoToAmbisonics": "pipeline",
    "GenerationRequest": "pipeline",
    "load_pretrained": "checkpoint",
    "write_ambix": "audio_io",
    "read_ambix": "audio_io",
    "write_binaural_preview": "binaural_preview",
    "render_sound_map": "sound_map_render",
    "mux_spatial_audio": "spatial_mux",
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
    from .audio_io import read_ambix, write_ambix
    from .binaural_preview import write_binaural_preview
    from .checkpoint import load_pretrained
    from .code_pattern import CodePattern, get_pattern
    from .config import VisageConfig
    from .direction import CameraDirection, DirectionCurve
    from .generation import Guidance
    from .pipeline import GenerationRequest, VideoToAmbisonics
    from .sequence import SequenceConfig
    from .sound_map_render import render_sound_map
    from .spatial_mux import mux_spatial_audio
    from .visage import Visage


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'visage.model' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
