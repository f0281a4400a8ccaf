"""Every bridge test runs with the leak check and shortened protocol timings (tests/bridge_fixtures.py)."""

from bridge_fixtures import quick_timing, verify_no_leaks  # noqa: F401  (autouse fixtures for this folder)
