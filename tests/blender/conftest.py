"""Blender tests: run only where ``import bpy`` works (the separate numpy<2 environment, see README).

The main environment has no bpy: the test modules here skip themselves with ``pytest.importorskip``
(a skip raised while a conftest is imported would abort ``pytest tests/blender`` instead), and this
conftest imports bpy only inside fixtures. Blender's user folders are pointed at a temporary directory
*before* bpy is first imported, so installing the extension never touches ~/.config.
A daemon for the tests runs in a subprocess of the main environment's Python (``$VISAGE_MAIN_PYTHON``,
default ``<repo>/.venv/bin/python``), with the fake engine: no torch here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

if importlib.util.find_spec("bpy") is not None and "BLENDER_USER_RESOURCES" not in os.environ:
    os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="visage-blender-user-")

REPO = Path(__file__).resolve().parents[2]
EXTENSION_MODULE = "bl_ext.user_default.visage_ambisonics"
DAEMON_START_TIMEOUT_S = 120.0  # the tiny-random model is built on first start


def load_install_module():  # type: ignore[no-untyped-def]
    """``host_plugins/install.py`` loaded by path (it imports nothing from the project)."""
    spec = importlib.util.spec_from_file_location("visage_host_install", REPO / "host_plugins" / "install.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The extension built exactly as `visage hosts install blender` builds it (wheel repacked offline)."""
    install = load_install_module()
    out = tmp_path_factory.mktemp("extension")
    wheel = install.wheel_from_environment(out / "wheels")
    return install.build_blender_extension(out, wheel=wheel)


def main_python() -> str:
    python = os.environ.get("VISAGE_MAIN_PYTHON") or str(REPO / ".venv" / "bin" / "python")
    if not Path(python).is_file():
        pytest.fail(f"no Python with visage installed at {python} (set VISAGE_MAIN_PYTHON)")
    return python


class DaemonProcess:
    """`visage serve --model ...` in a subprocess of the main environment (offline, its own caches)."""

    def __init__(self, root: Path, model: str) -> None:
        self.state = root / "state"
        self.allowed = root / "allowed"
        self.allowed.mkdir(parents=True, exist_ok=True)
        command = [
            main_python(),
            "-m",
            "visage.bridge.cli",
            "serve",
            "--port",
            "0",
            "--tcp-port",
            "0",
            "--no-zeroconf",
            "--no-web",  # the page's fixed port would clash between the session's daemons
            "--state-dir",
            str(self.state),
            "--allow-dir",
            str(self.allowed),
            "--model",
            model,
            "--log-level",
            "WARNING",
        ]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "VISAGE_CACHE_DIR": str(root / "cache")}
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
        deadline = time.monotonic() + DAEMON_START_TIMEOUT_S
        endpoint = self.state / "daemon.json"
        while not endpoint.is_file():
            if self.process.poll() is not None or time.monotonic() > deadline:
                if self.process.poll() is None:
                    self.process.kill()
                errors = self.process.communicate(timeout=15)[1]  # read before stop() closes the pipe
                self.stop()
                pytest.fail(f"daemon did not start: {errors}")
            time.sleep(0.05)
        self.port = json.loads(endpoint.read_text())["udp_port"]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stderr:
            self.process.stderr.close()


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    running = DaemonProcess(tmp_path_factory.mktemp("daemon"), "fake:delay=0.2,steps=4,seconds=10")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def model_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """A daemon running the real pipeline on the offline tiny-random models (noise, real files)."""
    running = DaemonProcess(tmp_path_factory.mktemp("model-daemon"), "tiny-random")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def installed_extension(extension_zip: Path) -> Iterator[str]:
    """Install the built zip into Blender's user repository and enable it (once per session)."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    result = bpy.ops.extensions.package_install_files(
        filepath=str(extension_zip), repo="user_default", enable_on_install=True
    )
    assert result == {"FINISHED"}
    assert EXTENSION_MODULE in bpy.context.preferences.addons
    yield EXTENSION_MODULE
    import addon_utils

    addon_utils.disable(EXTENSION_MODULE)
    shutil.rmtree(os.environ["BLENDER_USER_RESOURCES"], ignore_errors=True)


@pytest.fixture(autouse=True)
def no_timer_left_behind() -> Iterator[None]:
    """A timer still registered at exit hangs module-mode Blender: every test must leave none."""
    yield
    import bpy

    jobs = sys.modules.get(f"{EXTENSION_MODULE}.jobs")
    if jobs is not None:
        registered = bpy.app.timers.is_registered(jobs.poll_jobs)
        jobs.shutdown()
        assert not registered, "a test left the ViSAGe timer registered"
