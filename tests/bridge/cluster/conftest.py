"""Ray tests share one Ray instance per module, whose driver keeps its threads and gRPC sockets for the
module's life: the bridge's per-test leak check (tests/bridge/conftest.py) would count them as leaks,
so it is switched off here. The Ray instances themselves are shut down by each module's fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def verify_no_leaks() -> Iterator[None]:
    yield
