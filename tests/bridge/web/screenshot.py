"""Remake docs/web-page.png: the web page at 1280x800 in headless Chromium, in use against a fake daemon.

    python tests/bridge/web/screenshot.py [-o docs/web-page.png] [--dark]

A fake-engine daemon (no model, no network) gets a synthetic video, a job submitted through the page
like a user would (range, direction, sound map), a cache hit from OSC, a `visage fill`-like run of shots
sent as one group, and a second page job caught while it runs. Needs Chromium, chromedriver and selenium
as the browser tests do (tests/bridge/web/browser_support.py).
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from browser_support import VIEWPORT, chromium, js, missing, wait_until
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from visage.bridge.client import DaemonAddress, VisageClient
from visage.bridge.daemon import Daemon
from visage.bridge.fake_engine import FakeEngine, FakeSettings
from visage.bridge.settings import BridgeSettings

REPO_ROOT = Path(__file__).resolve().parents[3]
SCENE_S = 6.0
SCENE_SIZE = (640, 360)
FILL_SHOTS = 24


def write_scene(path: Path) -> Path:
    """A calm synthetic scene (no third-party footage): sky, hills, and a bright ball flying left to right."""
    width, height = SCENE_SIZE
    y, x = np.mgrid[0:height, 0:width]
    sky = np.stack([110 + 90 * y / height, 160 + 60 * y / height, 235 - 20 * y / height], axis=-1)
    hills = height * (0.68 + 0.06 * np.sin(x / width * 2 * np.pi * 1.5))
    ground = np.stack([70 + 0 * x, 130 - 30 * (y - hills) / height, 80 + 0 * x], axis=-1)
    background = np.where((y > hills)[..., None], ground, sky).astype(np.uint8)
    fps = 25
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(SCENE_S * fps)):
            u = i / (SCENE_S * fps)
            cx, cy = width * (0.1 + 0.8 * u), height * (0.35 - 0.12 * math.sin(math.pi * u))
            frame = background.copy()
            ball = (x - cx) ** 2 + (y - cy) ** 2 < 18**2
            frame[ball] = (250, 200, 60)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def element(driver: Any, css: str) -> Any:
    return driver.find_element(By.CSS_SELECTOR, css)


def submit_from_page(driver: Any, start: float, end: float, yaw_keys: int, pitch_keys: int) -> str:
    """Fill the range and direction as a user would and return the new job's id. The direction is set with
    the arrow keys on the dials (5 degrees a press): ``yaw_keys`` presses of left (right when negative),
    ``pitch_keys`` of up."""
    for field, value in (("#start-s", start), ("#end-s", end)):
        box = element(driver, field)
        box.clear()
        box.send_keys(str(value))
    turn = [Keys.ARROW_LEFT if yaw_keys > 0 else Keys.ARROW_RIGHT] * abs(yaw_keys)
    element(driver, "#yaw-dial").send_keys(Keys.HOME, *turn)
    element(driver, "#pitch-dial").send_keys(*[Keys.ARROW_UP] * pitch_keys)
    before = job_ids(driver)
    element(driver, "#submit").click()

    def new_job() -> str | None:
        return next(iter(job_ids(driver) - before), None)

    return str(wait_until(new_job, what="the page did not queue the job"))


def job_ids(driver: Any) -> set[str]:
    return set(js(driver, "return [...document.querySelectorAll('[data-job-id]')].map(e => e.dataset.jobId)"))


def state_of(driver: Any, job_id: str) -> str:
    return str(
        js(driver, "return document.querySelector(`[data-job-id='${arguments[0]}']`).dataset.state", job_id)
    )


def make(output: Path, dark: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="visage-demo-") as temp:
        root = Path(temp)
        videos = root / "Videos"
        videos.mkdir()
        clip = write_scene(videos / "meadow.mp4")
        settings = BridgeSettings(
            udp_port=0,
            tcp_port=None,
            state_dir=root / "state",
            allow_dirs=(videos,),
            model="fake",
            zeroconf=False,
            max_batch=4,
            web_port=0,
        )
        engine = FakeEngine(FakeSettings(delay_s=2.0, steps=20, seconds=3.0))
        with Daemon(settings, engine) as daemon, chromium(dark=dark) as driver:
            assert daemon.web_url is not None
            driver.get(daemon.web_url)
            wait_until(
                lambda: element(driver, "#live-status").text == "live", what="the page did not connect"
            )
            path = element(driver, "#media-path")
            path.send_keys(str(clip), Keys.ENTER)
            wait_until(lambda: js(driver, "return document.getElementById('media-preview').readyState >= 2"))

            first = submit_from_page(driver, 1.0, 4.0, yaw_keys=6, pitch_keys=2)
            wait_until(lambda: state_of(driver, first) == "done", 30, "the first job did not finish")
            element(driver, "#render-soundmap").click()
            wait_until(
                lambda: js(driver, "return document.getElementById('soundmap-video').readyState >= 2"),
                60,
                "no sound map",
            )

            host, port = daemon.udp_address
            with VisageClient(DaemonAddress(host, port, None, "explicit")) as client:
                # The same clip, range and direction from an editor: answered from the cache.
                again = client.submit(clip, yaw=30, pitch=10, start=1.0, end=4.0, output_dir=videos)
                client.wait(again, timeout_s=30)
                group = {
                    "group": "fill:meadow-edit:1",
                    "group_label": "fill meadow_edit.otio",
                    "group_total": FILL_SHOTS,
                }

                def send_shots(shots: range) -> None:
                    for shot in shots:
                        start = (shot % 5) * 1.0
                        client.submit(
                            clip,
                            yaw=-20.0 + shot,
                            pitch=0.0,
                            start=start,
                            end=start + 1.0,
                            output_dir=videos,
                            extra=group,
                        )

                send_shots(range(8))
                second = submit_from_page(driver, 0.0, 6.0, yaw_keys=-9, pitch_keys=0)
                send_shots(range(8, FILL_SHOTS))
                wait_until(
                    lambda: (
                        state_of(driver, second) == "running"
                        and js(
                            driver,
                            f"return document.querySelector(`[data-job-id='{second}'] .job-progress`).value",
                        )
                        > 0.3
                    ),
                    60,
                    "the second job did not run",
                )
                # The result panel shows the first job again, as "Show" in the queue does.
                element(driver, f"[data-job-id='{first}'] .job-open").click()
                js(driver, "document.activeElement.blur(); window.scrollTo({top: 0, behavior: 'instant'})")
                wait_until(
                    lambda: js(driver, "return window.scrollY === 0"), what="the page did not scroll up"
                )
                png = driver.get_screenshot_as_png()
    picture = Image.open(io.BytesIO(png))
    assert picture.size == VIEWPORT, picture.size
    output.parent.mkdir(parents=True, exist_ok=True)
    picture.convert("RGB").save(output, optimize=True)
    print(f"{output} ({output.stat().st_size // 1024} KB, {picture.size[0]}x{picture.size[1]})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", type=Path, default=REPO_ROOT / "docs" / "web-page.png")
    parser.add_argument("--dark", action="store_true", help="the dark colour scheme")
    args = parser.parse_args(argv)
    why_not = missing()
    if why_not:
        print(f"cannot take the screenshot: {why_not}", file=sys.stderr)
        return 2
    return make(args.output, args.dark)


if __name__ == "__main__":
    sys.exit(main())
