"""The web page in a real headless Chromium against a fake-engine daemon: what a new user does, end to end.

Expectations come from what the user did (the values typed and dragged), from the AmbiX convention as the
README states it (yaw positive = left, pitch positive = up) and from the WAV format, not from the page's code.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import re
import socket
import struct
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser_support import VIEWPORT, chromium, js, js_async, missing, static_site, wait_until

_why_not = missing()
if _why_not:
    pytest.skip(f"browser tests skipped: {_why_not}", allow_module_level=True)

from bridge_fixtures import address_of, fake_settings, fast_engine, write_media  # noqa: E402
from media_factory import make_test_video  # noqa: E402
from PIL import Image  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

from visage.bridge import engine as engine_api  # noqa: E402
from visage.bridge.client import DaemonAddress, JobFailed, VisageClient  # noqa: E402
from visage.bridge.daemon import Daemon  # noqa: E402
from visage.bridge.fake_engine import FakeEngine, FakeSettings  # noqa: E402

VIDEO_S = 2.0
# Slow enough to watch: the queue shows several progress steps, and a second job waits long enough to cancel.
RESTART_TOKEN = "restart-test-token-0123456789"
SLOW_ENGINE = {"delay_s": 1.5, "steps": 6, "seconds": 1.0}


@dataclass(frozen=True)
class PageDaemon:
    url: str  # no trailing slash
    allowed_dir: Path
    clip: Path  # a real 2-s H.264 video in allowed_dir
    osc: DaemonAddress  # the same daemon's OSC side, as an editor reaches it


@pytest.fixture
def page_daemon(tmp_path: Path) -> Iterator[PageDaemon]:
    """A fake-engine daemon with its web page, slow enough to watch, and a real video it may read."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    clip = make_test_video(allowed / "clip.mp4", duration=VIDEO_S, size=(160, 120)).path
    settings = fake_settings(tmp_path, allow_dirs=(allowed,), web_port=0)
    with Daemon(settings, fast_engine(**SLOW_ENGINE)) as daemon:
        assert daemon.web_url is not None
        yield PageDaemon(daemon.web_url.rstrip("/"), allowed, Path(clip), address_of(daemon))


def element(driver: Any, css: str) -> Any:
    return driver.find_element(By.CSS_SELECTOR, css)


def open_page(driver: Any, url: str) -> None:
    driver.get(url)
    wait_until(lambda: element(driver, "#app").is_displayed(), what="the page did not open")
    wait_until(lambda: element(driver, "#live-status").text == "live", what="no live updates")


def daemon_jobs(driver: Any) -> list[dict[str, Any]]:
    """The daemon's JobViews as the page's session sees them."""
    text = js_async(driver, "fetch('/api/jobs').then(r => r.text()).then(done);")
    return json.loads(text)["jobs"]


def open_video(driver: Any, path: Path) -> None:
    field = element(driver, "#media-path")
    field.clear()
    field.send_keys(str(path), Keys.ENTER)
    wait_until(
        lambda: js(driver, "return document.getElementById('media-preview').readyState >= 1"),
        what="the preview did not load the video",
    )


def submit(driver: Any) -> str:
    """Click "Generate" and return the new job's id (the row the page adds to the queue)."""
    before = {
        row.get_attribute("data-job-id") for row in driver.find_elements(By.CSS_SELECTOR, "[data-job-id]")
    }
    element(driver, "#submit").click()

    def new_row() -> str | None:
        ids = {
            row.get_attribute("data-job-id") for row in driver.find_elements(By.CSS_SELECTOR, "[data-job-id]")
        }
        return next(iter(ids - before), None)

    return wait_until(new_row, what=f"no new job in the queue ({element(driver, '#form-error').text})")


def job_row(driver: Any, job_id: str) -> Any:
    return element(driver, f'[data-job-id="{job_id}"]')


def wait_state(driver: Any, job_id: str, state: str, timeout_s: float = 30.0) -> None:
    def reached() -> bool:
        rows = driver.find_elements(By.CSS_SELECTOR, f'[data-job-id="{job_id}"]')
        row_state = rows[0].get_attribute("data-state") if rows else None  # the row may not be there yet
        assert row_state == state or row_state not in ("done", "error", "cancelled"), (
            f"job ended {row_state}: {rows[0].text}"
        )
        return row_state == state

    wait_until(reached, timeout_s, what=f"job {job_id} did not reach {state}")


def wav_header(data: bytes) -> tuple[int, int]:
    """(channels, sample rate) from a RIFF/WAVE file's fmt chunk (the WAV format, read independently)."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", data[:12]
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        if chunk == b"fmt ":
            channels, rate = struct.unpack("<HI", data[offset + 10 : offset + 16])
            return channels, rate
        offset += 8 + size + (size & 1)
    raise AssertionError("no fmt chunk")


def fetch_in_page(driver: Any, url: str) -> dict[str, Any]:
    """Status, Content-Disposition and the first bytes of ``url``, fetched with the page's session."""
    return js_async(
        driver,
        """fetch(arguments[0]).then(async r => {
             const bytes = Array.from(new Uint8Array(await r.arrayBuffer()).slice(0, 256));
             done({status: r.status, disposition: r.headers.get('content-disposition'), bytes});
           });""",
        url,
    )


# ---------------------------------------------------------------------------------------------- tests


def test_a_new_user_generates_hears_and_downloads(page_daemon: PageDaemon) -> None:
    with chromium() as driver:
        open_page(driver, page_daemon.url)
        assert str(page_daemon.allowed_dir) in element(driver, "#allowed-dirs").text

        open_video(driver, page_daemon.clip)
        wait_until(lambda: "2 s" in element(driver, "#media-info").text, what="no duration shown")
        # Scrub the preview, then set in and out from it.
        for time_s, button in ((0.5, "#set-in"), (1.5, "#set-out")):
            js_async(
                driver,
                """const v = document.getElementById('media-preview');
                   v.addEventListener('seeked', () => done(), {once: true}); v.currentTime = arguments[0];""",
                time_s,
            )
            element(driver, button).click()
        assert float(element(driver, "#start-s").get_attribute("value")) == pytest.approx(0.5, abs=0.05)
        assert float(element(driver, "#end-s").get_attribute("value")) == pytest.approx(1.5, abs=0.05)

        # Drag to the right-hand edge of the top view: the camera looks right, which is yaw -90 in AmbiX.
        dial = element(driver, "#yaw-dial")
        js(driver, "arguments[0].scrollIntoView({block: 'center'})", dial)  # pointer actions do not scroll
        ActionChains(driver).move_to_element_with_offset(
            dial, dial.size["width"] // 2 - 25, 0
        ).click().perform()
        assert float(element(driver, "#yaw-deg").get_attribute("value")) == pytest.approx(-90, abs=2)
        # Home faces the front; left arrow turns left (yaw up), up arrow tilts up (pitch up).
        dial.send_keys(Keys.HOME, *[Keys.ARROW_LEFT] * 6)
        element(driver, "#pitch-dial").send_keys(Keys.ARROW_UP, Keys.ARROW_UP)
        assert element(driver, "#yaw-deg").get_attribute("value") == "30"
        assert element(driver, "#pitch-deg").get_attribute("value") == "10"
        assert "left" in element(driver, "#direction-words").text

        element(driver, "#advanced summary").click()
        element(driver, "#seed").send_keys("7")

        # Record every progress value the queue shows, however fast the updates come.
        js(
            driver,
            """window.seenProgress = [];
               new MutationObserver(records => records.forEach(r => {
                 if (r.target.classList.contains('job-progress'))
                   window.seenProgress.push(Number(r.target.value));
               })).observe(document.getElementById('queue'),
                           {subtree: true, attributes: true, attributeFilter: ['value']});""",
        )
        job_id = submit(driver)
        wait_state(driver, job_id, "done")
        seen = js(driver, "return window.seenProgress")
        assert any(0 < value < 1 for value in seen), f"no progress shown between 0 and 1: {seen}"

        job = next(j for j in daemon_jobs(driver) if j["id"] == job_id)
        assert (job["yaw_deg"], job["pitch_deg"], job["seed"]) == (30, 10, 7)
        assert (job["start_s"], job["end_s"]) == (pytest.approx(0.5, abs=0.05), pytest.approx(1.5, abs=0.05))
        assert job["source"] == "web"

        # The result panel shows this job; its preview plays in the page.
        wait_until(lambda: element(driver, "#result-body").is_displayed(), what="no result panel")
        assert job["files"]["preview"], "the daemon wrote no binaural preview"
        source = js(driver, "return document.getElementById('preview-audio').src")
        assert source.endswith(job["files"]["preview"]), source  # the page plays the preview itself
        started = js_async(
            driver,
            "document.getElementById('preview-audio').play()"
            ".then(() => done('playing'), e => done(String(e)));",
        )
        assert started == "playing", started
        wait_until(
            lambda: js(
                driver, "const a = document.getElementById('preview-audio'); return a.currentTime > 0"
            ),
            what="the audio does not advance",
        )

        # Downloads: attachments with the files' real content.
        for link, channels in (("#download-wav", 4), ("#download-sidecar", None)):
            href = element(driver, link).get_attribute("href")
            assert "download=1" in href
            got = fetch_in_page(driver, href)
            assert got["status"] == 200 and "attachment" in (got["disposition"] or ""), got
            if channels:
                assert wav_header(bytes(got["bytes"]))[0] == channels
            else:
                assert bytes(got["bytes"]).lstrip().startswith(b"{")

        # The output path goes to the clipboard; where there is none, it is selected for Ctrl+C.
        assert element(driver, "#output-path").get_attribute("value") == job["output"]
        driver.execute_cdp_cmd(
            "Browser.grantPermissions",
            {"origin": page_daemon.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
        )
        element(driver, "#copy-path").click()
        wait_until(
            lambda: element(driver, "#copy-info").text == "Path copied.", what="the path was not copied"
        )
        assert (
            js_async(driver, "navigator.clipboard.readText().then(done, e => done(String(e)));")
            == job["output"]
        )
        js(driver, "Object.defineProperty(navigator, 'clipboard', {value: undefined})")
        element(driver, "#copy-path").click()
        wait_until(
            lambda: "Ctrl+C" in element(driver, "#copy-info").text, what="no fallback without a clipboard"
        )
        selected = js(
            driver,
            "const f = document.activeElement;return [f.id, f.value.slice(f.selectionStart, f.selectionEnd)]",
        )
        assert selected == ["output-path", job["output"]]

        # The sound map video renders and shows beside the picture.
        element(driver, "#render-soundmap").click()
        wait_until(
            lambda: (
                element(driver, "#soundmap-figure").is_displayed()
                or "could not" in element(driver, "#soundmap-info").text
            ),
            timeout_s=60,
            what="the sound map did not finish",
        )
        assert element(driver, "#soundmap-figure").is_displayed(), element(driver, "#soundmap-info").text
        wait_until(
            lambda: js(driver, "return document.getElementById('soundmap-video').readyState >= 1"),
            what="the sound map video does not load",
        )


def test_an_uploaded_video_is_used_and_a_second_job_can_be_cancelled(
    page_daemon: PageDaemon, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "desktop" / "holiday.mp4"  # a file the daemon may not read where it is
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(page_daemon.clip.read_bytes())
    with chromium() as driver:
        open_page(driver, page_daemon.url)
        element(driver, "#upload-input").send_keys(str(elsewhere))
        wait_until(
            lambda: "Uploaded" in element(driver, "#upload-text").text, what="the upload did not finish"
        )
        assert js(driver, "return document.getElementById('upload-progress').value") == 1
        uploaded = Path(element(driver, "#media-path").get_attribute("value"))
        assert uploaded.name.endswith(".mp4") and uploaded.read_bytes() == elsewhere.read_bytes()
        wait_until(lambda: "2 s" in element(driver, "#media-info").text, what="the upload was not opened")

        # A file dropped on the box is uploaded the same way (a drop event carrying the same bytes).
        js_async(
            driver,
            """fetch(arguments[0]).then(r => r.blob()).then(blob => {
                 const files = new DataTransfer();
                 files.items.add(new File([blob], 'dropped.mp4', {type: 'video/mp4'}));
                 const zone = document.getElementById('drop-zone');
                 zone.dispatchEvent(
                   new DragEvent('drop', {dataTransfer: files, bubbles: true, cancelable: true}));
                 done();
               });""",
            f"/api/media?path={urllib.parse.quote(str(uploaded))}",
        )
        wait_until(
            lambda: "Uploaded dropped.mp4" in element(driver, "#upload-text").text, what="no upload on drop"
        )
        dropped = Path(element(driver, "#media-path").get_attribute("value"))
        assert dropped != uploaded and dropped.read_bytes() == elsewhere.read_bytes()

        first = submit(driver)
        second = submit(driver)
        job_row(driver, second).find_element(By.CSS_SELECTOR, ".job-cancel").click()
        wait_state(driver, second, "cancelled")
        row = job_row(driver, second)
        assert row.find_element(By.CSS_SELECTOR, ".job-state").text == "cancelled"
        assert not row.find_element(By.CSS_SELECTOR, ".job-cancel").is_displayed()
        states = {j["id"]: j["state"] for j in daemon_jobs(driver)}
        assert states[second] == "cancelled" and states[first] != "cancelled"


def test_form_mistakes_are_named_before_anything_is_sent(tmp_path: Path) -> None:
    """Text that is no number is not taken as an empty field (start 0, end of the video), a negative seed
    is refused, the last job's "Queued." does not stay beside a new problem, and a small upload limit is
    said in bytes a person reads (1000 bytes is 1 kB, not "0 MB")."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    clip = make_test_video(allowed / "clip.mp4", duration=VIDEO_S, size=(160, 120)).path
    settings = fake_settings(tmp_path, allow_dirs=(allowed,), web_port=0, web_upload_limit=1000)
    with Daemon(settings, fast_engine()) as daemon, chromium() as driver:
        open_page(driver, str(daemon.web_url))
        open_video(driver, Path(clip))
        submit(driver)
        assert element(driver, "#submit-info").text.startswith("Queued")
        sent = len(daemon_jobs(driver))

        def refused(field: str, text: str) -> str:
            element(driver, field).clear()
            element(driver, field).send_keys(text)
            element(driver, "#submit").click()
            wait_until(lambda: element(driver, "#form-error").text, what=f"{text!r} in {field} was sent")
            assert element(driver, "#submit-info").text == ""
            assert element(driver, field).get_attribute("aria-invalid") == "true"
            message = element(driver, "#form-error").text
            element(driver, field).clear()
            return message

        assert refused("#start-s", "1e").startswith("The start is not a number")
        assert refused("#end-s", "--1").startswith("The end is not a number")
        assert refused("#start-s", "1,234.5").startswith("The start is not a number")  # not 1234.5
        element(driver, "#advanced summary").click()
        assert "0 or more" in refused("#seed", "-5")
        assert len(daemon_jobs(driver)) == sent

        element(driver, "#upload-input").send_keys(str(clip))
        wait_until(lambda: element(driver, "#upload-text").text, what="nothing said about the upload")
        said = element(driver, "#upload-text").text
        shown = re.search(r"is ([0-9.]+) kB", said)
        assert "up to 1 kB" in said and shown is not None, said
        assert float(shown[1]) == pytest.approx(os.path.getsize(clip) / 1000, abs=0.5), said


def test_a_comma_is_a_decimal_mark_in_every_number_field(tmp_path: Path) -> None:
    """Many editors type "1,5" for one and a half; a browser's number field reads it as 15 (Chromium,
    English locale), so the page reads its fields itself: the job gets 1.5 s, not 15 s."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    clip = make_test_video(allowed / "clip.mp4", duration=VIDEO_S, size=(160, 120)).path
    settings = fake_settings(tmp_path, allow_dirs=(allowed,), web_port=0)
    with Daemon(settings, fast_engine()) as daemon, chromium() as driver:
        open_page(driver, str(daemon.web_url))
        open_video(driver, Path(clip))
        wait_until(lambda: "2 s" in element(driver, "#media-info").text, what="no duration shown")
        element(driver, "#advanced summary").click()
        for field, text in (
            ("#start-s", "0,5"),
            ("#end-s", "1,5"),
            ("#yaw-deg", "-12,5"),
            ("#pitch-deg", "7,5"),
        ):
            element(driver, field).clear()
            element(driver, field).send_keys(text)
        element(driver, "#guidance-scale").clear()
        element(driver, "#guidance-scale").send_keys("3,5")
        job_id = submit(driver)
        job = next(j for j in daemon_jobs(driver) if j["id"] == job_id)
        assert (job["start_s"], job["end_s"], job["yaw_deg"], job["pitch_deg"]) == (0.5, 1.5, -12.5, 7.5)
        assert daemon.queue.get(job_id).spec.guidance == 3.5


def test_a_moving_camera_without_preview_is_described_as_it_was_asked(
    page_daemon: PageDaemon, tmp_path: Path
) -> None:
    """A job that follows a direction curve is not said to look to the front at 0° / 0°, and one run
    without a headphone preview offers no headphones."""
    curve = tmp_path / "pan.csv"
    curve.write_text("time,yaw,pitch\n0,0,0\n1,90,0\n")
    with chromium() as driver:
        open_page(driver, page_daemon.url)
        open_video(driver, page_daemon.clip)
        element(driver, "#curve-file").send_keys(str(curve))
        wait_until(lambda: "Using the curve" in element(driver, "#curve-info").text, what="curve refused")
        element(driver, "#advanced summary").click()
        element(driver, "#preview").click()  # no headphone preview
        job_id = submit(driver)
        wait_state(driver, job_id, "done")
        summary = element(driver, "#result-summary").text
        assert "direction curve" in summary and "yaw" not in summary, summary
        meta = job_row(driver, job_id).find_element(By.CSS_SELECTOR, ".job-meta").text
        assert "direction curve" in meta and "yaw" not in meta, meta
        assert element(driver, "#preview-missing").is_displayed()
        assert not element(driver, "#result-audio .headphones").is_displayed()
        assert "audio player" not in element(driver, "#result-picture-caption").text


class FailingSeedEngine(FakeEngine):
    """A fake engine that fails the jobs of one seed as a real engine reports a failure."""

    SEED = 13
    FAILURE = ("engine_error", "the decoder ran out of memory")

    def run_batch(self, specs: Any, progress: Any, cancelled: Any) -> list[Any]:
        outcomes = super().run_batch(specs, progress, cancelled)
        failed = engine_api.JobFailed(*self.FAILURE)
        return [failed if s.seed == self.SEED else o for s, o in zip(specs, outcomes, strict=True)]


def test_a_failed_job_says_why_in_the_result_panel(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    media = write_media(allowed)
    settings = fake_settings(tmp_path, allow_dirs=(allowed,), web_port=0)
    engine = FailingSeedEngine(FakeSettings(delay_s=0.05, steps=2, seconds=0.05))
    with Daemon(settings, engine) as daemon, chromium() as driver:
        open_page(driver, str(daemon.web_url))
        element(driver, "#media-path").send_keys(str(media))
        element(driver, "#advanced summary").click()
        element(driver, "#seed").send_keys(str(FailingSeedEngine.SEED))
        job_id = submit(driver)
        wait_state(driver, job_id, "error")
        code, message = FailingSeedEngine.FAILURE
        wait_until(lambda: element(driver, "#result-error").is_displayed(), what="the panel hid the error")
        assert element(driver, "#result-error").text == f"{code}: {message}"
        assert not element(driver, "#download-wav").is_displayed()


def test_a_result_moved_away_is_said_to_be_gone(page_daemon: PageDaemon) -> None:
    """A finished job whose WAV the user moved: the panel says so instead of offering a dead download."""
    with chromium() as driver:
        open_page(driver, page_daemon.url)
        open_video(driver, page_daemon.clip)
        job_id = submit(driver)
        wait_state(driver, job_id, "done")
        output = Path(element(driver, "#output-path").get_attribute("value"))
        output.rename(output.with_name("moved.wav"))
        driver.refresh()
        open_page(driver, page_daemon.url)
        js(driver, "window.pageErrors = []; addEventListener('error', e => pageErrors.push(e.message));")
        job_row(driver, job_id).find_element(By.CSS_SELECTOR, ".job-open").click()
        wait_until(lambda: element(driver, "#result-missing").is_displayed(), what="the panel did not say")
        assert js(driver, "return window.pageErrors") == []
        assert str(output) == element(driver, "#output-path").get_attribute("value")
        assert not element(driver, "#download-wav").is_displayed()
        assert not element(driver, "#render-soundmap").is_displayed()


def test_a_path_pasted_with_quotes_or_as_a_file_url_opens(page_daemon: PageDaemon) -> None:
    """What file managers and shells copy: a path in quotes (Windows' "Copy as path") or a file:// URL."""
    clip = page_daemon.clip
    with chromium() as driver:
        open_page(driver, page_daemon.url)
        for pasted in (f"'{clip}'", f'"{clip}"', f"file://{urllib.parse.quote(str(clip))}"):
            field = element(driver, "#media-path")
            field.clear()
            field.send_keys(f"{clip.parent}/missing.mp4", Keys.ENTER)  # another path: the clip opens anew
            wait_until(lambda: "does not exist" in element(driver, "#media-info").text, what="not refused")
            field.clear()
            field.send_keys(pasted, Keys.ENTER)
            wait_until(lambda: "2 s" in element(driver, "#media-info").text, what=f"{pasted} did not open")
            assert field.get_attribute("value") == str(clip)


def test_jobs_from_an_editor_show_with_their_errors_and_cache_hits(page_daemon: PageDaemon) -> None:
    with chromium() as driver, VisageClient(page_daemon.osc) as editor:
        open_page(driver, page_daemon.url)
        fresh = editor.submit(
            page_daemon.clip, yaw=-40, pitch=5, end=1.0, seed=3, output_dir=page_daemon.allowed_dir
        )
        wait_state(driver, fresh, "done")
        again = editor.submit(
            page_daemon.clip, yaw=-40, pitch=5, end=1.0, seed=3, output_dir=page_daemon.allowed_dir
        )
        failing = editor.submit(
            page_daemon.clip, yaw=0, pitch=0, end=1.0, extra={"fake_fail": "out_of_memory"}
        )
        with pytest.raises(JobFailed):
            editor.wait(failing, timeout_s=30)
        wait_state(driver, again, "done")
        wait_state(driver, failing, "error")

        cache = [job_row(driver, job).find_element(By.CSS_SELECTOR, ".job-cache") for job in (fresh, again)]
        assert [badge.is_displayed() for badge in cache] == [False, True]
        error = job_row(driver, failing).find_element(By.CSS_SELECTOR, ".job-error")
        assert error.is_displayed() and error.text.startswith("out_of_memory: ")
        assert job_row(driver, failing).find_element(By.CSS_SELECTOR, ".job-state").text == "failed"
        assert "yaw -40°, pitch 5°" in job_row(driver, fresh).text and "osc" in job_row(driver, fresh).text
        order = [
            row.get_attribute("data-job-id") for row in driver.find_elements(By.CSS_SELECTOR, "[data-job-id]")
        ]
        assert order == [failing, again, fresh]  # newest first

        # A fill run's shots are one line: their count, not a row each.
        run = {"group": "fill:edit:1", "group_label": "fill edit.otio", "group_total": 3}
        shots = [editor.submit(page_daemon.clip, yaw=10.0 * i, pitch=0, end=0.5, extra=run) for i in range(3)]
        group_row = wait_until(
            lambda: driver.find_elements(By.CSS_SELECTOR, '[data-group-id="fill:edit:1"]'), what="no run line"
        )[0]
        wait_until(lambda: "3 of 3 shots done" in group_row.text, 30, f"the run line says {group_row.text!r}")
        assert "fill edit.otio" in group_row.text
        rows = {
            row.get_attribute("data-job-id") for row in driver.find_elements(By.CSS_SELECTOR, "[data-job-id]")
        }
        assert rows == {failing, again, fresh} and not rows & set(shots)


def test_a_token_protected_daemon_asks_for_its_token_once(web_daemon_with_token: Any, tmp_path: Path) -> None:
    daemon = web_daemon_with_token
    with chromium() as driver:
        driver.get(daemon.url)
        wait_until(lambda: element(driver, "#token-panel").is_displayed(), what="no token prompt")
        assert not element(driver, "#app").is_displayed()
        element(driver, "#token").send_keys("not the token", Keys.ENTER)
        wait_until(lambda: element(driver, "#token-error").text, what="a wrong token was not reported")
        assert element(driver, "#token-panel").is_displayed()

        element(driver, "#token").send_keys(daemon.token, Keys.ENTER)
        wait_until(lambda: element(driver, "#app").is_displayed(), what="the right token was not accepted")
        wait_until(
            lambda: element(driver, "#live-status").text == "live", what="no live updates with the token"
        )
        # A POST with the token goes through: a direction curve is stored.
        curve = tmp_path / "pan.json"
        curve.write_text(json.dumps({"time": [0, 1], "yaw": [0, 40], "pitch": [0, 0]}))
        element(driver, "#curve-file").send_keys(str(curve))
        wait_until(
            lambda: "Using the curve" in element(driver, "#curve-info").text,
            what=f"curve refused: {element(driver, '#curve-info').text}",
        )
        assert element(driver, "#yaw-dial").get_attribute("aria-disabled") == "true"

        driver.refresh()  # the tab keeps the token: no second prompt
        wait_until(lambda: element(driver, "#app").is_displayed(), what="the token was asked again")
        assert not element(driver, "#token-panel").is_displayed()


def test_the_page_carries_on_after_a_daemon_restart(tmp_path: Path) -> None:
    """A restarted daemon has forgotten the page's session: the page gets a new one with the token it kept
    (no second prompt), and its next POST goes through with the new CSRF value."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    media = write_media(allowed)
    with socket.socket() as probe:  # a port for both daemons: the page knows only its address
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = fake_settings(tmp_path, allow_dirs=(allowed,), web_port=port, token=RESTART_TOKEN)
    with chromium() as driver:
        with Daemon(settings, fast_engine()) as daemon:
            driver.get(str(daemon.web_url))
            element(driver, "#token").send_keys(RESTART_TOKEN, Keys.ENTER)
            wait_until(lambda: element(driver, "#live-status").text == "live", what="no live updates")
        wait_until(lambda: element(driver, "#live-status").text != "live", what="the page missed the stop")
        wait_until(
            lambda: "not answering" in element(driver, "#daemon-info").text,
            what="the page's header did not say that the daemon is gone",
        )
        element(driver, "#media-path").send_keys(str(media))
        element(driver, "#submit").click()  # a job sent meanwhile: refused, with what to check
        wait_until(
            lambda: "visage serve" in element(driver, "#form-error").text,
            what="the refusal did not say what to check",
        )
        element(driver, "#media-path").clear()
        with Daemon(settings, fast_engine()):
            wait_until(lambda: element(driver, "#live-status").text == "live", 30, "no reconnection")
            assert not element(driver, "#token-panel").is_displayed()
            assert element(driver, "#daemon-info").text.startswith("Model fake-1")
            element(driver, "#media-path").send_keys(str(media))
            job_id = submit(driver)
            wait_state(driver, job_id, "done")


def test_a_post_from_another_local_origin_is_refused(page_daemon: PageDaemon, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>elsewhere</title><p>another local page</p>")
    body = {"media": str(page_daemon.clip), "start_s": 0, "end_s": 1, "yaw_deg": 0, "pitch_deg": 0}
    with chromium() as driver, static_site(site) as other_origin:
        open_page(driver, page_daemon.url)  # the user has the page open: its session cookie exists
        driver.get(other_origin + "/index.html")
        outcome = js_async(
            driver,
            """const [url, body] = arguments;
               const json = fetch(url + '/api/jobs', {method: 'POST', credentials: 'include',
                   headers: {'Content-Type': 'application/json', 'X-Visage-CSRF': 'guess'},
                   body: JSON.stringify(body)}).then(r => 'answered ' + r.status, e => 'failed: ' + e);
               // A "simple" request needs no preflight: it reaches the daemon, which must refuse it.
               const simple = fetch(url + '/api/jobs', {
                   method: 'POST', mode: 'no-cors', credentials: 'include',
                   headers: {'Content-Type': 'text/plain'}, body: JSON.stringify(body)})
                   .then(r => 'sent ' + r.type, e => 'failed: ' + e);
               Promise.all([json, simple]).then(done);""",
            page_daemon.url.rstrip("/"),
            body,
        )
        assert outcome[0].startswith("failed"), outcome  # the preflight is refused: nothing is sent
        assert outcome[1] == "sent opaque", outcome  # sent, and refused by the daemon (checked below)
        driver.get(page_daemon.url)
        wait_until(lambda: element(driver, "#live-status").text == "live", what="the page did not reopen")
        assert daemon_jobs(driver) == [], "a job was created from another origin"
    with urllib.request.urlopen(page_daemon.url.rstrip("/") + "/api/jobs") as reply:  # and not by any route
        assert json.load(reply)["jobs"] == []


def test_the_direction_dials_follow_the_ambix_convention(page_daemon: PageDaemon) -> None:
    """Points drawn at a known direction (front up, left left on the top view; front right, up up on the side
    view) map back to that direction; typed yaws are sent wrapped into [-180, 180), as the daemon keeps
    them."""
    rng = random.Random(17)
    yaws = [rng.uniform(-179.5, 179.5) for _ in range(40)] + [0.0, 90.0, -90.0]
    pitches = [rng.uniform(-89.5, 89.5) for _ in range(40)] + [0.0, 90.0, -90.0]
    top = [(-math.sin(math.radians(y)) * 50, -math.cos(math.radians(y)) * 50) for y in yaws]
    side = [(math.cos(math.radians(p)) * 50, -math.sin(math.radians(p)) * 50) for p in pitches]
    typed = [rng.uniform(-360, 360) for _ in range(40)] + [-360.0, -180.0, 180.0, 360.0, 540.0]
    with chromium() as driver:
        open_page(driver, page_daemon.url)
        got = js_async(
            driver,
            """Promise.all([import('/static/direction_dial.js'), import('/static/format.js')])
               .then(([d, f]) => done({
                 yaw: arguments[0].map(([x, y]) => d.yawAt(x, y)),
                 pitch: arguments[1].map(([x, y]) => d.pitchAt(x, y)),
                 wrapped: arguments[2].map(f.wrapYaw)}));""",
            top,
            side,
            typed,
        )
    assert got["yaw"] == pytest.approx(yaws, abs=1e-6)
    assert got["pitch"] == pytest.approx(pitches, abs=1e-6)
    assert got["wrapped"] == pytest.approx([(y + 180.0) % 360.0 - 180.0 for y in typed], abs=1e-9)


def test_the_page_is_labelled_and_its_screenshot_shows_the_controls(page_daemon: PageDaemon) -> None:
    with chromium() as driver:
        open_page(driver, page_daemon.url)
        open_video(driver, page_daemon.clip)
        unlabelled = js(
            driver,
            """return [...document.querySelectorAll('input, select, canvas[role=slider]')]
                 .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
                 .map(e => e.id || e.outerHTML);""",
        )
        assert unlabelled == []

        dial = element(driver, "#yaw-dial")
        dial.send_keys(Keys.HOME, *[Keys.ARROW_LEFT] * 6)  # yaw 30: left of the front
        assert js(driver, "return getComputedStyle(document.activeElement).outlineStyle") != "none"
        # On the top view (front up, left left) the camera's marker is up and to the left of the centre.
        picture = Image.open(io.BytesIO(dial.screenshot_as_png)).convert("RGB")
        accent = tuple(
            int(
                js(
                    driver, "return getComputedStyle(arguments[0]).getPropertyValue('--accent')", dial
                ).strip()[i : i + 2],
                16,
            )
            for i in (1, 3, 5)
        )
        w, h = picture.size
        radius = min(w, h) / 2 - 22
        marker = (w / 2 - radius * math.sin(math.radians(30)), h / 2 - radius * math.cos(math.radians(30)))
        mirrored = (w - marker[0], marker[1])

        def near_accent(point: tuple[float, float]) -> bool:
            pixel = picture.getpixel((round(point[0]), round(point[1])))
            return sum(abs(a - b) for a, b in zip(pixel, accent, strict=True)) < 60

        assert near_accent(marker) and not near_accent(mirrored)

        job_id = submit(driver)
        wait_state(driver, job_id, "done")
        js(driver, "window.scrollTo(0, 0)")
        for css in (
            "#media-path",
            "#media-preview",
            "#yaw-dial",
            "#pitch-dial",
            "#submit",
            "#queue",
            f'[data-job-id="{job_id}"]',
            "#result-body",
            "#download-wav",
        ):
            found = element(driver, css)
            assert found.is_displayed() and found.size["width"] > 0 and found.size["height"] > 0, css
        shot = Image.open(io.BytesIO(driver.get_screenshot_as_png()))
        assert shot.size == VIEWPORT
        colours = shot.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 50, "the screenshot is nearly blank"
