"""Ray tests share one Ray instance per module, whose driver keeps its threads and gRPC sockets for the
module's life: the bridge's per-test leak check (tests/bridge/conftest.py) would count them as leaks,
so it is switched off here. The Ray instances themselves are shut down by each module's fixture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def verify_no_leaks() -> Iterator[None]:
    yield


@pytest.fixture(scope="module")
def tiny_bundle_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A user cache holding the tiny-random bundle, named in VISAGE_CACHE_DIR for the module.

    Ray's workers (and nodes started from this process) inherit the variable, so they load the bundle
    made here instead of each building one.
    """
    from visage.model.inference.tiny_random_bundle import tiny_random_folder

    cache = tmp_path_factory.mktemp("ray-cache")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VISAGE_CACHE_DIR", str(cache))
        tiny_random_folder()
        yield cache
