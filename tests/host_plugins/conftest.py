"""Fixtures for the host tests: an editor Python that finds a ``zeroconf`` it cannot import.

Issue 13 item 16: a REAPER or Resolve Python 3.10 pointed at an environment installed for 3.11 finds its
``zeroconf`` (``importlib.util.find_spec`` succeeds) but importing it fails. The fixture reproduces that
with a package that raises ImportError when imported, placed first on ``sys.path``, and with no local
daemon's endpoint file, so that "auto" discovery would browse ZeroConf.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from bridge_fixtures import quick_timing, verify_no_leaks  # noqa: F401  (autouse for this folder)

from visage.host_plugins.common import host_client

# What zeroconf 0.154 (Python >= 3.11) raises when a 3.10 interpreter imports its pure-Python fallback.
ZEROCONF_IMPORT_ERROR = "cannot import name 'Self' from 'typing'"


class BrokenZeroconf(NamedTuple):
    state_dir: Path  # the (empty) folder where "auto" looks for a local daemon's endpoint file
    error: str  # what importing zeroconf raises


@pytest.fixture
def broken_zeroconf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BrokenZeroconf:
    """A ``zeroconf`` that is found but does not import, and no local daemon's endpoint file."""
    package = tmp_path / "other-python-site" / "zeroconf"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f"raise ImportError({ZEROCONF_IMPORT_ERROR!r})\n")
    for name in [n for n in sys.modules if n == "zeroconf" or n.startswith("zeroconf.")]:
        monkeypatch.delitem(sys.modules, name)  # restored after the test
    monkeypatch.syspath_prepend(str(package.parent))
    state = tmp_path / "no-daemon-state"
    state.mkdir()
    monkeypatch.setattr(host_client, "default_state_dir", lambda: state)
    return BrokenZeroconf(state, ZEROCONF_IMPORT_ERROR)
