"""The web page's HTTP API on a real daemon (fake engine, loopback, free port): sessions, jobs from submit
to done through the event stream, cancel, the OSC validation with the body's field, path rules, uploads,
Range requests, and every guard (CSRF, Origin, Host, token).

Expectations come from the API contract (README, "Web page"), the OSC protocol's error codes and the files
themselves (the bytes uploaded, the WAV's header), not from the server's code.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import wave
from pathlib import Path
from urllib.parse import quote

import pytest
from bridge_fixtures import fake_settings, fast_engine, wait_for
from conftest import WEB_TOKEN, WebDaemon
from web_client import EventStream, PageSession, Reply, request

import visage.model.files.result_files as rf
from visage.bridge.cli import add_serve_arguments
from visage.bridge.daemon import Daemon
from visage.bridge.state_dir import read_endpoint
from visage.bridge.web.event_hub import MAX_STREAMS
from visage.bridge.web.request_guard import allowed_hosts, check_host
from visage.bridge.web.web_errors import WebError


def _media(path: Path | str) -> str:
    return f"/api/media?path={quote(str(path))}"


def _job_body(web: WebDaemon, **fields: object) -> dict[str, object]:
    return {
        "media": str(web.media),
        "start_s": 0.0,
        "end_s": 1.0,
        "yaw_deg": 30.0,
        "pitch_deg": -10.0,
        **fields,
    }


def _states(stream: EventStream, job_id: str) -> list[str]:
    """The states the stream reports for one job, up to its terminal one."""
    seen: list[str] = []
    while not seen or seen[-1] not in ("done", "error", "cancelled"):
        name, data = stream.next_event()
        if name == "job" and data["id"] == job_id and (not seen or seen[-1] != data["state"]):
            seen.append(data["state"])
    return seen


def test_the_session_sets_a_strict_cookie_and_describes_the_daemon(web_daemon: WebDaemon) -> None:
    reply = request(web_daemon.url, "GET", "/api/session")
    assert reply.status == 200
    cookie = reply.headers["Set-Cookie"]
    attributes = {part.strip().split("=")[0].lower(): part for part in cookie.split(";")}
    port = web_daemon.url.rsplit(":", 1)[1]
    assert cookie.startswith(f"visage_session_{port}=") and "httponly" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=strict"
    session = reply.json()
    assert session["token_required"] is False
    assert session["allowed_dirs"] == [str(web_daemon.allowed_dir)]
    assert session["upload_limit_bytes"] == 4 << 30
    assert session["model"] == "fake-1"
    assert session["defaults"] == {"guidance_scale": 2.5, "guidance_mode": "joint", "sample_rate": 48000}
    assert session["convention"].startswith("AmbiX (ACN W,Y,Z,X; SN3D)")
    assert len(session["csrf"]) >= 32
    # The same cookie keeps its CSRF token; another browser gets another one.
    again = request(web_daemon.url, "GET", "/api/session", headers={"Cookie": cookie.split(";")[0]})
    assert again.json()["csrf"] == session["csrf"]
    assert request(web_daemon.url, "GET", "/api/session").json()["csrf"] != session["csrf"]


def test_two_daemons_on_one_host_name_their_session_cookies_apart(tmp_path: Path) -> None:
    """A browser sends a host's cookies to every port of it (RFC 6265, 8.5): with one name, the page of
    one daemon would replace the session of another's open page (its media and event stream then refused
    with a token)."""
    names = []
    for folder in ("one", "two"):
        settings = fake_settings(tmp_path / folder, web_port=0, token=WEB_TOKEN)
        with Daemon(settings, fast_engine()) as daemon:
            assert daemon.web_url is not None
            page = PageSession(daemon.web_url.rstrip("/"), token=WEB_TOKEN).open()
            names.append(page.cookie.split("=")[0])
    assert names[0] != names[1]


def test_a_job_goes_from_submit_to_done_on_the_event_stream(web_daemon: WebDaemon) -> None:
    page = PageSession(web_daemon.url).open()
    with EventStream(web_daemon.url, page.cookie) as stream:
        assert stream.response.status == 200
        assert stream.response.headers["Content-Type"].startswith("text/event-stream")
        reply = page.post_json("/api/jobs", _job_body(web_daemon, seed=5))
        assert reply.status == 202, reply.body
        job_id = reply.json()["job_id"]
        states = _states(stream, job_id)
    assert states[0] == "accepted" and states[-1] == "done"
    assert states == sorted(states, key=["accepted", "queued", "running", "done"].index)
    job = page.job(job_id)
    assert (job["source"], job["state"], job["progress"], job["error"], job["group"]) == (
        "web",
        "done",
        1.0,
        None,
        None,
    )
    assert (job["yaw_deg"], job["pitch_deg"], job["start_s"], job["end_s"], job["seed"]) == (
        30.0,
        -10.0,
        0.0,
        1.0,
        5,
    )
    assert job["media"] == str(web_daemon.media) and job["cache_hit"] is False
    assert job["files"]["wav"] == f"/api/jobs/{job_id}/files/wav"
    wav = page.get(job["files"]["wav"])
    assert wav.status == 200 and wav.headers["Content-Type"] == "audio/wav"
    path = Path(job["output"])
    assert wav.body == path.read_bytes()
    with wave.open(str(path)) as reader:
        assert reader.getnchannels() == 4  # AmbiX W, Y, Z, X
    sidecar = page.get(job["files"]["sidecar"] + "?download=1")
    assert json.loads(sidecar.body)  # the JSON sidecar
    assert sidecar.headers["Content-Disposition"].startswith("attachment")
    preview = page.get(job["files"]["preview"])  # the daemon writes one unless asked not to
    assert preview.status == 200 and preview.body == rf.preview_path(path).read_bytes()
    assert page.get(f"/api/jobs/{job_id}/files/elsewhere").status == 404
    # The same request again is answered from the result cache, as over OSC.
    again = page.post_json("/api/jobs", _job_body(web_daemon, seed=5)).json()["job_id"]
    wait_for(lambda: page.job(again)["state"] == "done")
    assert page.job(again)["cache_hit"] is True


def test_a_result_replaced_by_a_link_elsewhere_is_not_served(web_daemon: WebDaemon, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"  # outside every folder the daemon may use
    secret.write_text("not for the page")
    page = PageSession(web_daemon.url).open()
    job_id = page.post_json("/api/jobs", _job_body(web_daemon)).json()["job_id"]
    wait_for(lambda: page.job(job_id)["state"] == "done")
    job = page.job(job_id)
    preview = rf.preview_path(Path(job["output"]))
    assert page.get(job["files"]["preview"]).status == 200
    preview.unlink()
    preview.symlink_to(secret)
    reply = page.get(f"/api/jobs/{job_id}/files/preview")
    assert reply.status == 403 and reply.error()["code"] == "path_not_allowed"
    assert b"not for the page" not in reply.body
    assert page.get(job["files"]["wav"]).status == 200  # the job's other files are its own still


def test_a_waiting_job_is_cancelled(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    media = allowed / "clip.mp4"
    media.write_bytes(b"\x00" * 64)
    settings = fake_settings(tmp_path, allow_dirs=(allowed,), web_port=0, max_batch=1)
    with Daemon(settings, fast_engine(delay_s=30.0, steps=300)) as daemon:
        assert daemon.web_url is not None
        url = daemon.web_url.rstrip("/")
        page = PageSession(url).open()
        body = {"media": str(media), "end_s": 1.0}
        first = page.post_json("/api/jobs", body).json()["job_id"]
        second = page.post_json("/api/jobs", {**body, "seed": 1}).json()["job_id"]
        wait_for(lambda: page.job(first)["state"] == "running")
        reply = page.post(f"/api/jobs/{second}/cancel")
        assert reply.status == 200 and reply.json() == {"id": second, "state": "cancelled"}
        job = page.job(second)
        assert job["error"]["code"] == "cancelled" and job["error"]["message"]
        running = page.post(f"/api/jobs/{first}/cancel")  # stops between decoder steps
        assert running.status == 200 and running.json()["id"] == first
        wait_for(lambda: page.job(first)["state"] == "cancelled", timeout_s=10.0)
        assert page.post("/api/jobs/no-such-job/cancel").error()["code"] == "unknown_job"
        refused = page.post(f"/api/jobs/{second}/soundmap")  # no result to draw
        assert refused.status == 409 and refused.error()["code"] == "not_ready"


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"yaw_deg": 400.0}, "bad_direction", "yaw_deg"),
        ({"pitch_deg": -91.0}, "bad_direction", "pitch_deg"),
        ({"start_s": -1.0}, "bad_range", "start_s"),
        ({"start_s": 2.0, "end_s": 1.0}, "bad_range", "end_s"),
        ({"media": "relative/clip.mp4"}, "bad_path", "media"),
        ({"media": ""}, "bad_path", "media"),
        ({"seed": -1}, "bad_options", "seed"),
        ({"guidance_scale": 51.0}, "bad_options", "guidance_scale"),
        ({"guidance_mode": "loud"}, "bad_options", "guidance_mode"),
        ({"yaw_deg": "left"}, "bad_type", "yaw_deg"),
        ({"preview": "yes"}, "bad_type", "preview"),
        ({"seed": 1.5}, "bad_type", "seed"),
        ({"colour": "blue"}, "bad_options", "colour"),
        ({"output": "relative.wav"}, "bad_path", "output"),
        ({"curve": "relative.json"}, "bad_path", "curve"),
    ],
)
def test_validation_refuses_with_the_osc_code_and_the_field(
    web_daemon: WebDaemon, fields: dict[str, object], code: str, field: str
) -> None:
    page = PageSession(web_daemon.url).open()
    reply = page.post_json("/api/jobs", _job_body(web_daemon, **fields))
    assert reply.status == 400
    error = reply.error()
    assert (error["code"], error["field"]) == (code, field)
    assert page.get("/api/jobs").json()["jobs"] == []


def test_an_existing_output_is_a_conflict(web_daemon: WebDaemon) -> None:
    page = PageSession(web_daemon.url).open()
    taken = web_daemon.allowed_dir / "taken.wav"
    taken.write_bytes(b"a user's file")
    reply = page.post_json("/api/jobs", _job_body(web_daemon, output=str(taken)))
    assert (
        reply.status == 409
        and reply.error()["code"] == "output_exists"
        and reply.error()["field"] == "output"
    )
    assert taken.read_bytes() == b"a user's file"


def test_output_refusals_speak_of_what_the_page_offers(web_daemon: WebDaemon) -> None:
    """The page has one output field (a .wav file or a folder) and no overwrite option."""
    page = PageSession(web_daemon.url).open()
    taken = web_daemon.allowed_dir / "taken.wav"
    taken.write_bytes(b"a user's file")
    exists = page.post_json("/api/jobs", _job_body(web_daemon, output=str(taken))).error()
    assert exists["code"] == "output_exists" and str(taken) in exists["message"]
    assert "overwrite" not in exists["message"] and "another" in exists["message"], exists
    mp3 = str(web_daemon.allowed_dir / "out.mp3")
    not_wav = page.post_json("/api/jobs", _job_body(web_daemon, output=mp3)).error()
    assert (not_wav["code"], not_wav["field"]) == ("bad_output", "output")
    assert not_wav["message"].startswith(f"output {mp3!r}") and ".wav" in not_wav["message"], not_wav
    outside = page.post_json("/api/jobs", _job_body(web_daemon, output="/etc")).error()
    assert outside["code"] == "path_not_allowed" and outside["message"].startswith("output '/etc'"), outside


def test_paths_outside_the_allowed_folders_are_refused(web_daemon: WebDaemon, tmp_path: Path) -> None:
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"\x00" * 100)
    page = PageSession(web_daemon.url).open()
    reply = page.post_json("/api/jobs", _job_body(web_daemon, media=str(outside)))
    assert reply.status == 403 and (reply.error()["code"], reply.error()["field"]) == (
        "path_not_allowed",
        "media",
    )
    escape = f"{web_daemon.allowed_dir}/../outside.mp4"  # resolved before the check
    assert page.get(_media(escape)).error()["code"] == "path_not_allowed"
    assert page.get(_media(outside)).status == 403
    curve = page.post_json("/api/jobs", _job_body(web_daemon, curve=str(outside)))
    assert curve.status == 403 and curve.error()["field"] == "curve"
    assert page.get(_media(web_daemon.allowed_dir / "missing.mp4")).status == 404


def test_media_answers_range_requests(web_daemon: WebDaemon) -> None:
    page = PageSession(web_daemon.url).open()
    data = web_daemon.media.read_bytes()
    path = _media(web_daemon.media)
    whole = page.get(path)
    assert whole.status == 200 and whole.body == data and whole.headers["Content-Type"] == "video/mp4"
    part = page.get(path, Range="bytes=100-299")
    assert part.status == 206 and part.body == data[100:300]
    assert part.headers["Content-Range"] == f"bytes 100-299/{len(data)}"
    tail = page.get(path, Range="bytes=-10")
    assert tail.status == 206 and tail.body == data[-10:]


@pytest.mark.parametrize("name", ["page.html", "drawing.svg", "notes.xhtml"])
def test_a_document_in_an_allowed_folder_is_never_served_as_a_page(web_daemon: WebDaemon, name: str) -> None:
    """An HTML or SVG file from the user's folders (a browser's downloads, say) would run its scripts as the
    daemon's own page, with its session; media routes serve only audio and video as what they are."""
    document = web_daemon.allowed_dir / name
    document.write_text("<html><script>fetch('/api/session')</script></html>")
    page = PageSession(web_daemon.url).open()
    reply = page.get(_media(document))
    assert reply.status == 200
    assert reply.headers["Content-Type"].split(";")[0] == "application/octet-stream"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in reply.headers["Content-Security-Policy"]
    assert page.get(_media(web_daemon.media)).headers["Content-Type"] == "video/mp4"


def test_uploads_land_in_the_state_folder_under_a_safe_name(web_daemon: WebDaemon) -> None:
    page = PageSession(web_daemon.url).open()
    data = bytes(range(256)) * 1000
    reply = page.post("/api/uploads?name=..%2F..%2F.evil%20clip.mp4", data)
    assert reply.status == 201, reply.body
    saved = Path(reply.json()["path"])
    uploads = web_daemon.daemon.settings.state_dir / "uploads"
    assert saved.parent.parent == uploads and saved.name == "evil clip.mp4"
    assert saved.read_bytes() == data and reply.json()["size"] == len(data)
    # An uploaded file is media like any other: shown, and generated for.
    assert page.get(_media(saved)).body == data
    job = page.post_json("/api/jobs", {"media": str(saved), "end_s": 0.5})
    assert job.status == 202, job.body


def test_a_long_name_in_a_wide_script_is_shortened_to_what_file_systems_take(web_daemon: WebDaemon) -> None:
    page = PageSession(web_daemon.url).open()
    name = "音" * 200 + ".mp4"  # 600 UTF-8 bytes; ext4, APFS and NTFS names hold at most 255
    reply = page.post(f"/api/uploads?name={quote(name)}", b"video bytes")
    assert reply.status == 201, reply.body
    saved = Path(reply.json()["path"])
    assert saved.read_bytes() == b"video bytes"
    assert saved.name.endswith(".mp4") and set(saved.stem) == {"音"}
    assert len(saved.name.encode()) <= 255


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path, web_port=0, web_upload_limit=1000)
    with Daemon(settings, fast_engine()) as daemon:
        assert daemon.web_url is not None
        url = daemon.web_url.rstrip("/")
        page = PageSession(url).open()
        assert page.session["upload_limit_bytes"] == 1000
        reply = page.post("/api/uploads?name=big.mp4", b"\x01" * 1001)
        assert reply.status == 413 and reply.error()["code"] == "too_large"
        assert page.post("/api/uploads?name=fits.mp4", b"\x01" * 1000).status == 201
        # A body cut short: nothing of it stays.
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5.0) as sock:
            head = (
                f"POST /api/uploads?name=cut.mp4 HTTP/1.1\r\nHost: {host}:{port}\r\nOrigin: {url}\r\n"
                f"Cookie: {page.cookie}\r\nX-Visage-CSRF: {page.csrf}\r\nContent-Length: 900\r\n\r\n"
            )
            sock.sendall(head.encode() + b"\x02" * 300)
        uploads = settings.state_dir / "uploads"
        wait_for(lambda: [p.name for p in uploads.rglob("*") if p.is_file()] == ["fits.mp4"])


def test_an_upload_larger_than_the_free_disk_is_refused_at_once(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path, web_port=0, web_upload_limit=1 << 62)
    with Daemon(settings, fast_engine()) as daemon:
        assert daemon.web_url is not None
        url = daemon.web_url.rstrip("/")
        page = PageSession(url).open()
        declared = 1 << 55  # 32 PiB: more than any test machine's disk
        host, port = url.removeprefix("http://").split(":")
        head = (
            f"POST /api/uploads?name=huge.mp4 HTTP/1.1\r\nHost: {host}:{port}\r\nOrigin: {url}\r\n"
            f"Cookie: {page.cookie}\r\nX-Visage-CSRF: {page.csrf}\r\nContent-Length: {declared}\r\n\r\n"
        )
        with socket.create_connection((host, int(port)), timeout=10.0) as sock:
            sock.sendall(head.encode())  # and no body: the disk's answer comes first
            answer = http.client.HTTPResponse(sock)
            answer.begin()
            reply = Reply(answer.status, answer.headers, answer.read())
        assert reply.status == 413 and reply.error()["code"] == "too_large"
        assert "free" in reply.error()["message"] and str(declared) in reply.error()["message"]
        assert list((settings.state_dir / "uploads").iterdir()) == []


def test_a_direction_curve_is_checked_and_stored(web_daemon: WebDaemon) -> None:
    page = PageSession(web_daemon.url).open()
    curve = {"time": [0.0, 0.5, 1.0], "yaw": [0.0, 45.0, 90.0], "pitch": [0.0, 5.0, 10.0]}
    reply = page.post("/api/curves", json.dumps(curve).encode())
    assert reply.status == 201, reply.body
    saved = Path(reply.json()["path"])
    assert saved.parent.parent == web_daemon.daemon.settings.state_dir / "uploads"
    assert json.loads(saved.read_text()) == curve
    csv = page.post("/api/curves", b"time,yaw,pitch\n0,10,0\n1,20,0\n")
    assert csv.status == 201 and json.loads(Path(csv.json()["path"]).read_text())["yaw"] == [10.0, 20.0]
    bad = page.post("/api/curves", b'{"time": [1, 0], "yaw": [0, 0], "pitch": [0, 0]}')
    assert bad.status == 400 and "increase" in bad.error()["message"]
    job = page.post_json("/api/jobs", _job_body(web_daemon, curve=str(saved)))
    assert job.status == 202, job.body
    assert page.job(job.json()["job_id"])["curve"] == str(saved)  # the page says it is no fixed direction
    fixed = page.post_json("/api/jobs", _job_body(web_daemon, seed=1)).json()["job_id"]
    assert page.job(fixed)["curve"] is None


@pytest.mark.parametrize("route", ["/api/jobs", "/api/curves"])
def test_a_body_declared_over_the_limit_is_refused_unread(web_daemon: WebDaemon, route: str) -> None:
    page = PageSession(web_daemon.url).open()
    host, port = web_daemon.url.removeprefix("http://").split(":")
    head = (
        f"POST {route} HTTP/1.1\r\nHost: {host}:{port}\r\nOrigin: {web_daemon.url}\r\n"
        f"Cookie: {page.cookie}\r\nX-Visage-CSRF: {page.csrf}\r\nContent-Length: {1 << 40}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10.0) as sock:
        sock.sendall(head.encode())  # and no body: the answer must not wait for a terabyte
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        reply = Reply(answer.status, answer.headers, answer.read())
    assert reply.status == 413 and reply.error()["code"] == "too_large"
    assert str(1 << 40) in reply.error()["message"]


def test_event_streams_are_bounded(web_daemon: WebDaemon) -> None:
    page = PageSession(web_daemon.url).open()
    streams = []
    try:
        for _ in range(MAX_STREAMS):
            streams.append(EventStream(web_daemon.url, page.cookie))
            assert streams[-1].response.status == 200
        extra = page.get("/api/events")
        assert extra.status == 503 and extra.error()["code"] == "busy"
        assert str(MAX_STREAMS) in extra.error()["message"]
        assert page.get("/api/jobs").status == 200  # the rest of the API still answers
    finally:
        for stream in streams:
            stream.close()


def test_state_changing_requests_need_the_csrf_token(web_daemon: WebDaemon) -> None:
    page = PageSession(web_daemon.url).open()
    body = json.dumps(_job_body(web_daemon)).encode()
    headers = page.headers()
    del headers["X-Visage-CSRF"]
    missing = request(web_daemon.url, "POST", "/api/jobs", body, headers)
    assert missing.status == 403 and missing.error()["code"] == "csrf"
    wrong = request(web_daemon.url, "POST", "/api/jobs", body, page.headers(**{"X-Visage-CSRF": "guess"}))
    assert wrong.status == 403 and wrong.error()["code"] == "csrf"
    other = PageSession(web_daemon.url).open()  # another session's token does not fit this cookie
    crossed = request(
        web_daemon.url, "POST", "/api/jobs", body, page.headers(**{"X-Visage-CSRF": other.csrf})
    )
    assert crossed.status == 403 and crossed.error()["code"] == "csrf"
    assert page.get("/api/jobs").json()["jobs"] == []


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:1", None, "null"])
def test_a_post_from_another_origin_is_refused(web_daemon: WebDaemon, origin: str | None) -> None:
    page = PageSession(web_daemon.url).open()
    headers = page.headers()
    if origin is None:
        del headers["Origin"]
    else:
        headers["Origin"] = origin
    reply = request(web_daemon.url, "POST", "/api/jobs", json.dumps(_job_body(web_daemon)).encode(), headers)
    assert reply.status == 403 and reply.error()["code"] == "forbidden_origin"
    assert page.get("/api/jobs").json()["jobs"] == []


def test_a_foreign_host_header_is_refused(web_daemon: WebDaemon) -> None:
    port = web_daemon.url.rsplit(":", 1)[1]
    page = PageSession(web_daemon.url).open()
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1:1"):
        get = request(web_daemon.url, "GET", "/api/jobs", headers={"Host": host, "Cookie": page.cookie})
        assert get.status == 403 and get.error()["code"] == "forbidden_host"
        headers = page.headers(Host=host, Origin=f"http://{host}")
        post = request(
            web_daemon.url, "POST", "/api/jobs", json.dumps(_job_body(web_daemon)).encode(), headers
        )
        assert post.status == 403 and post.error()["code"] == "forbidden_host"
    # The names of loopback itself are the daemon's.
    local = f"localhost:{port}"
    reply = request(web_daemon.url, "GET", "/api/jobs", headers={"Host": local, "Cookie": page.cookie})
    assert reply.status == 200


def test_a_token_daemon_wants_it_once_then_trusts_the_cookie_for_gets(
    web_daemon_with_token: WebDaemon,
) -> None:
    web = web_daemon_with_token
    assert request(web.url, "GET", "/api/session").error()["code"] == "unauthorized"
    wrong = request(web.url, "GET", "/api/session", headers={"X-Visage-Token": "x" * 30})
    assert wrong.status == 401
    assert request(web.url, "GET", "/api/jobs").status == 401
    page = PageSession(web.url, token=web.token).open()
    assert page.session["token_required"] is True
    assert page.get("/api/jobs").status == 200  # the cookie alone: EventSource, <video> sources
    with EventStream(web.url, page.cookie) as stream:
        assert stream.response.status == 200
    headers = page.headers()
    del headers["X-Visage-Token"]
    body = json.dumps(_job_body(web)).encode()
    refused = request(web.url, "POST", "/api/jobs", body, headers)
    assert refused.status == 401 and refused.error()["code"] == "unauthorized"
    assert page.post_json("/api/jobs", _job_body(web)).status == 202
    # A cookie made without the token (none was required then) would not do: there is no such cookie.
    forged = f"{page.cookie.split('=')[0]}=forged"
    assert request(web.url, "GET", "/api/jobs", headers={"Cookie": forged}).status == 401


def test_the_page_files_are_served_without_traversal(web_daemon: WebDaemon) -> None:
    index = request(web_daemon.url, "GET", "/")
    assert index.status == 200 and index.headers["Content-Type"].startswith("text/html")
    assert index.headers["Cache-Control"] == "no-cache"
    assert b"<html" in index.body.lower()
    static = Path(__file__).resolve().parents[3] / "bridge" / "web" / "static"
    for name in sorted(p.name for p in static.glob("*.js"))[:1]:
        script = request(web_daemon.url, "GET", f"/static/{name}")
        assert script.status == 200 and script.body == (static / name).read_bytes()
        assert script.headers["Content-Type"].startswith("text/javascript")
    for path in ("/static/..%2F__init__.py", "/static/../api.py", "/static/.hidden", "/static/%2e%2e"):
        assert request(web_daemon.url, "GET", path).status == 404, path


def test_the_bound_url_is_in_daemon_json(web_daemon: WebDaemon) -> None:
    info = read_endpoint(web_daemon.daemon.settings.endpoint_path)
    assert info is not None and info.web_url == web_daemon.url + "/"


def test_serve_has_the_page_on_by_default_and_no_web_turns_it_off(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    default = parser.parse_args([])
    assert (default.web_port, default.no_web, default.web_upload_limit) == (17732, False, 4 << 30)
    chosen = parser.parse_args(["--web-port", "0", "--web-upload-limit", "1000", "--no-web"])
    assert (chosen.web_port, chosen.no_web, chosen.web_upload_limit) == (0, True, 1000)
    with Daemon(fake_settings(tmp_path), fast_engine()) as daemon:  # web_port None: no page, no URL
        assert daemon.web_url is None
        info = read_endpoint(daemon.settings.endpoint_path)
        assert info is not None and info.web_url is None


def test_another_pages_browser_requests_cannot_read_through_the_api(web_daemon: WebDaemon) -> None:
    page = PageSession(web_daemon.url).open()
    media = _media(web_daemon.media)
    for site in ("cross-site", "same-site"):  # same-site: a page on another port of this machine
        reply = page.get(media, **{"Sec-Fetch-Site": site})
        assert reply.status == 403 and reply.error()["code"] == "forbidden_origin"
    for site in ("same-origin", "none"):  # the page itself; the user typing the URL
        assert page.get(media, **{"Sec-Fetch-Site": site}).status == 200


def test_a_taken_web_port_stops_the_start_and_leaves_nothing_running(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        daemon = Daemon(fake_settings(tmp_path, web_port=taken.getsockname()[1]), fast_engine())
        with pytest.raises(OSError):
            daemon.start()
    assert not (tmp_path / "state" / "daemon.json").exists()


@pytest.mark.parametrize(
    ("bound", "port", "accepted", "refused"),
    [
        (
            "127.0.0.1",
            8123,
            ["127.0.0.1:8123", "LOCALHOST:8123"],
            ["127.0.0.1", "127.0.0.1:8124", "evil:8123"],
        ),
        ("::1", 8123, ["[::1]:8123", "localhost:8123"], ["::1:8123", "[::1]"]),
        ("127.0.0.1", 80, ["127.0.0.1", "localhost:80"], ["evil"]),
    ],
)
def test_host_headers_name_the_bound_address(
    bound: str, port: int, accepted: list[str], refused: list[str]
) -> None:
    allowed = allowed_hosts(bound, port)
    for host in accepted:
        check_host(host, allowed)
    for host in refused:
        with pytest.raises(WebError, match="forbidden_host"):
            check_host(host, allowed)
    check_host("anything:1", allowed_hosts("0.0.0.0", port))  # a wildcard bind: the token guards it
