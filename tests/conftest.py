"""Shared fixtures: where the golden parity files are, offline mode, and the markers' skip rules."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from visage.model.inference.pipeline import VideoToAmbisonics

# Tests never reach the network: transformers / huggingface_hub otherwise retry for ~50 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The project's reference material: ``$VISAGE_SHARED_DIR`` or ``../shared`` next to the checkout."""
    return Path(os.environ.get("VISAGE_SHARED_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """Golden tensors from the official code (read-only: never edit or regenerate them)."""
    path = shared_dir() / "parity"
    if not path.is_dir():
        pytest.skip(f"parity vectors not found at {path} (set VISAGE_SHARED_DIR)")
    return path


@pytest.fixture(scope="session")
def media_dir() -> Path:
    """Real video files made by others (read-only)."""
    path = shared_dir() / "media"
    if not path.is_dir():
        pytest.skip(f"shared media not found at {path} (set VISAGE_SHARED_DIR)")
    return path


@pytest.fixture(scope="session")
def otio_samples_dir() -> Path:
    """Real editorial files made by others (read-only)."""
    path = shared_dir() / "otio_samples"
    if not path.is_dir():
        pytest.skip(f"OTIO samples not found at {path} (set VISAGE_SHARED_DIR)")
    return path


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VideoToAmbisonics]:
    """The offline tiny-random pipeline (its output is noise), loaded once for the whole session.

    It runs on one intra-op thread from then on: the tiny models gain nothing from more, and on a busy
    two-core machine oversubscribed threads made generation 30x slower.
    """
    import torch  # here, not at the top: tests/blender runs in a bpy environment without torch

    from visage.model.inference.pipeline import VideoToAmbisonics

    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VISAGE_CACHE_DIR", str(tmp_path_factory.mktemp("visage-cache")))
        yield VideoToAmbisonics.load("tiny-random", device="cpu")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_weights = os.environ.get("VISAGE_TEST_WEIGHTS") == "1"
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_gpu = False
    for item in items:
        if "weights" in item.keywords and not run_weights:
            item.add_marker(pytest.mark.skip(reason="needs the released weights: set VISAGE_TEST_WEIGHTS=1"))
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))
