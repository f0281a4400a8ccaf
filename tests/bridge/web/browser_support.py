"""A headless Chromium for the web page's tests: what is missing, the driver, polling the page.

The browser and its driver come from the system (Debian: ``apt-get install chromium chromium-driver``) and
selenium from pip; the driver is given by path, so Selenium Manager never downloads anything.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

VIEWPORT = (1280, 800)
_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")


def _find(env: str, names: tuple[str, ...]) -> str | None:
    given = os.environ.get(env)
    if given:
        return given if Path(given).is_file() else None
    return next((path for path in map(shutil.which, names) if path), None)


def browser_path() -> str | None:
    return _find("VISAGE_TEST_CHROMIUM", _BROWSER_NAMES)


def driver_path() -> str | None:
    return _find("VISAGE_TEST_CHROMEDRIVER", ("chromedriver",))


def missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    for env in ("VISAGE_TEST_CHROMIUM", "VISAGE_TEST_CHROMEDRIVER"):
        given = os.environ.get(env)
        if given and not Path(given).is_file():
            return f"{env}={given} is not a file"
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install selenium, or the project's [test] extra)"
    if browser_path() is None:
        return "no Chromium found (apt-get install chromium chromium-driver, or set VISAGE_TEST_CHROMIUM)"
    if driver_path() is None:
        return "no chromedriver found (apt-get install chromium-driver, or set VISAGE_TEST_CHROMEDRIVER)"
    return None


@contextmanager
def chromium(*, dark: bool = False) -> Iterator[Any]:
    """A headless Chromium with a 1280x800 viewport whose media may play without a click."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(browser_path())
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI containers run as root, where Chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--autoplay-policy=no-user-gesture-required",
        "--hide-scrollbars",
        f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(driver_path())), options=options)
    try:
        # The window's size includes no browser frame in headless mode, but fix the page's viewport exactly.
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": VIEWPORT[0], "height": VIEWPORT[1], "deviceScaleFactor": 1, "mobile": False},
        )
        scheme = "dark" if dark else "light"
        driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
        )
        yield driver
    finally:
        driver.quit()


def wait_until(
    check: Callable[[], Any], timeout_s: float = 20.0, what: str = "the page did not get there"
) -> Any:
    """Poll ``check`` until it returns something true and return that; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (within {timeout_s:.0f} s)")
        time.sleep(0.05)


def js(driver: Any, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


def js_async(driver: Any, script: str, *args: Any) -> Any:
    """Run ``script`` with a callback as its last argument (``done``) and return what it passes."""
    return driver.execute_async_script(f"const done = arguments[arguments.length - 1];\n{script}", *args)


@contextmanager
def static_site(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on a free loopback port (another origin than the daemon's); yields its base URL."""
    handler = partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass
