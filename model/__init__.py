"""ViSAGe model core: the network, its checkpoints, generation and the video-to-AmbiX pipeline.

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
]

if TYPE_CHECKING:  # pragma: no cover
    from .checkpoint import load_pretrained
    from .code_pattern import CodePattern, get_pattern
    from .config import VisageConfig
    from .direction import CameraDirection, DirectionCurve
    from .generation import Guidance
    from .pipeline import GenerationRequest, VideoToAmbisonics
    from .sequence import SequenceConfig
    from .visage import Visage


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'visage.model' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
