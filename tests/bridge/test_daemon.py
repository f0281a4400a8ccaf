"""The daemon on loopback with the fake engine: concurrency, crash recovery, security, bad input.

In-process daemons for most tests; a subprocess (``python -m visage.bridge.cli serve``) where a real
SIGKILL/SIGTERM is the point.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_fixtures import address_of, fake_settings, fast_engine, write_media
from pythonosc.osc_message_builder import OscMessageBuilder

from visage.bridge import const
from visage.bridge.cli import add_serve_arguments, add_submit_arguments, run_serve, run_submit
from visage.bridge.client import DaemonAddress, JobFailed, VisageClient, find_daemon
from visage.bridge.daemon import Daemon
from visage.bridge.errors import ErrorCode
from visage.bridge.fake_engine import FakeEngine, FakeSettings
from visage.bridge.framing import SlipDecoder, encode_frame
from visage.bridge.osc_protocol import (
    Accepted,
    Done,
    Error,
    Generate,
    GenerateOptions,
    Ping,
    Pong,
    Progress,
    Reply,
    Status,
    decode_reply,
    encode_reply,
    encode_request,
)
from visage.bridge.security import SettingsError
from visage.bridge.settings import BridgeSettings
from visage.bridge.state_dir import StateDirBusy
from visage.model.files.output_files import PART_SUFFIX

REPO = Path(__file__).resolve().parents[2]
TOKEN = "t0ken-for-tests-0123456789"

# ------------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture
def media(tmp_path: Path) -> Path:
    return write_media(tmp_path)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with Daemon(fake_settings(tmp_path), fast_engine()) as running:
        yield running


@pytest.fixture
def client(daemon: Daemon) -> Iterator[VisageClient]:
    with VisageClient(address_of(daemon)) as c:
        yield c


class RawUdp:
    """A bare UDP peer: sends bytes, reads replies; no retries, so every reply is counted."""

    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    def receive(self, timeout_s: float = 5.0) -> Reply:
        self.sock.settimeout(timeout_s)
        return decode_reply(self.sock.recv(65535))

    def silent(self, timeout_s: float = 0.3) -> bool:
        """True if nothing arrives for ``timeout_s``."""
        self.sock.settimeout(timeout_s)
        try:
            self.sock.recv(65535)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def raw_udp(target: tuple[str, int], host: str = "127.0.0.1") -> Iterator[RawUdp]:
    peer = RawUdp(target, host)
    try:
        yield peer
    finally:
        peer.close()


def message(address: str, *args: object) -> bytes:
    builder = OscMessageBuilder(address)
    for value in args:
        builder.add_arg(value)
    return builder.build().dgram


def generate_request(job_id: str, media: Path, output: Path | None = None, **options: object) -> bytes:
    opts = GenerateOptions(output=None if output is None else str(output), extra=options)
    return encode_request(Generate(job_id, str(media), 0.0, 0.1, 30.0, 0.0, opts, 0))


def assert_complete_wav(path: Path) -> None:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (4, 2)
        frames = w.getnframes()
        assert frames > 0 and len(w.readframes(frames)) == frames * 8


# ------------------------------------------------------------------------------------------------
# basics


def test_ping_over_udp_and_tcp(daemon: Daemon) -> None:
    for transport in ("udp", "tcp"):
        with VisageClient(address_of(daemon), transport=transport) as c:
            assert c.ping() == Pong(const.PROTOCOL_VERSION, "fake-1", "cpu", 0, 0)


def test_endpoint_file_describes_the_running_daemon(daemon: Daemon) -> None:
    info = json.loads(daemon.settings.endpoint_path.read_text())
    assert info["pid"] == os.getpid() and info["udp_port"] == daemon.udp_address[1]
    assert info["tcp_port"] == daemon.tcp_address[1]  # type: ignore[index]
    assert (info["model_id"], info["auth"], info["protocol_version"]) == (
        "fake-1",
        "none",
        const.PROTOCOL_VERSION,
    )


def test_generate_progress_done_and_cache(client: VisageClient, media: Path, tmp_path: Path) -> None:
    seen: list[Progress] = []
    first = client.generate(
        media, yaw=30.0, pitch=10.0, end=0.5, output=tmp_path / "a.wav", progress=seen.append
    )
    assert first.output == str(tmp_path / "a.wav") and not first.cached
    assert_complete_wav(Path(first.output))
    assert seen and seen[0].stage == "running" and all(0 <= p.fraction <= 1 for p in seen)
    again = client.generate(media, yaw=30.0, pitch=10.0, end=0.5, output=tmp_path / "b.wav")
    assert again.cached and Path(again.output).read_bytes() == Path(first.output).read_bytes()
    default = client.generate(media, yaw=30.0, pitch=10.0, end=0.5, use_cache=False)
    assert Path(default.output).parent == client_state_outputs(tmp_path)
    assert_complete_wav(Path(default.output))


def test_an_existing_output_is_only_replaced_when_asked(
    client: VisageClient, media: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "mine.wav"
    mine.write_bytes(b"the user's own mix")
    with pytest.raises(JobFailed) as refused:
        client.generate(media, yaw=0.0, pitch=0.0, end=0.5, output=mine)
    assert refused.value.code == ErrorCode.OUTPUT_EXISTS.value and "overwrite" in str(refused.value)
    assert mine.read_bytes() == b"the user's own mix"
    done = client.generate(media, yaw=0.0, pitch=0.0, end=0.5, output=mine, overwrite=True)
    assert_complete_wav(Path(done.output))


def client_state_outputs(tmp_path: Path) -> Path:
    return tmp_path / "state" / const.OUTPUTS_DIR_NAME


def test_tcp_client_round_trip(daemon: Daemon, media: Path) -> None:
    with VisageClient(address_of(daemon), transport="tcp") as c:
        done = c.generate(media, yaw=-45.0, pitch=0.0, end=0.2)
    assert_complete_wav(Path(done.output))


def test_reply_port_sends_replies_to_another_socket(daemon: Daemon, media: Path) -> None:
    with raw_udp(daemon.udp_address) as sender, raw_udp(daemon.udp_address) as listener:
        opts = GenerateOptions()
        sender.send(encode_request(Generate("rp1", str(media), 0.0, 0.1, 0.0, 0.0, opts, listener.port)))
        replies = [listener.receive()]
        while not isinstance(replies[-1], (Done, Error)):
            replies.append(listener.receive())
        assert isinstance(replies[0], Accepted) and isinstance(replies[-1], Done)
        sender.sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sender.sock.recv(65535)  # nothing went to the sender


def test_udp_retry_of_the_same_request_is_idempotent(daemon: Daemon, media: Path) -> None:
    with raw_udp(daemon.udp_address) as peer:
        data = generate_request("retry-1", media)
        peer.send(data)
        peer.send(data)
        replies = [peer.receive()]
        while sum(isinstance(r, Done) for r in replies) < 1:
            replies.append(peer.receive())
        peer.send(encode_request(Status("retry-1", 0)))
        assert isinstance(peer.receive(), Done)
    assert daemon.queue is not None and daemon.queue.counts() == (0, 0)
    assert sum(isinstance(r, Accepted) for r in replies) >= 1


def test_cancel_and_status_over_the_wire(tmp_path: Path, media: Path) -> None:
    slow = FakeEngine(FakeSettings(delay_s=5.0, steps=50, seconds=0.05))
    with Daemon(fake_settings(tmp_path, max_batch=1), slow) as d, VisageClient(address_of(d)) as c:
        running = c.submit(media, yaw=0.0, pitch=0.0, end=0.1)
        waiting = c.submit(media, yaw=1.0, pitch=0.0, end=0.1)
        while not (isinstance(r := c.status(running), Progress) and r.stage == "decoding"):
            time.sleep(0.02)
        assert isinstance(c.status(waiting), Accepted)
        cancelled = c.cancel(waiting)
        assert cancelled == Error(waiting, "cancelled", "cancelled by request")
        c.cancel(running)
        for job_id in (running, waiting):
            with pytest.raises(JobFailed) as info:
                c.wait(job_id, timeout_s=5.0)
            assert info.value.code == "cancelled"
        with pytest.raises(JobFailed) as unknown:
            c.wait("no-such-job", timeout_s=5.0)
        assert unknown.value.code == ErrorCode.UNKNOWN_JOB.value


# ------------------------------------------------------------------------------------------------
# concurrency: several clients, many jobs, exactly one terminal event each


def test_many_clients_concurrently_get_exactly_one_outcome_per_job(tmp_path: Path, media: Path) -> None:
    engine = FakeEngine(FakeSettings(delay_s=0.05, steps=2, seconds=0.05))
    out = tmp_path / "out"
    out.mkdir()
    jobs_per_client = 12
    terminal: dict[str, list[Reply]] = {}
    lock = threading.Lock()
    failures: list[BaseException] = []

    def raw_client(index: int, d: Daemon) -> None:
        ids = [f"raw{index}-{n}" for n in range(jobs_per_client)]
        with raw_udp(d.udp_address) as peer:
            for n, job_id in enumerate(ids):
                fail = {"fake_fail": "engine_error"} if n % 5 == 4 else {}
                peer.send(generate_request(job_id, media, out / f"{job_id}.wav", **fail))
            pending = set(ids)
            while pending:
                reply = peer.receive(timeout_s=10.0)
                if isinstance(reply, (Done, Error)):
                    with lock:
                        terminal.setdefault(reply.job_id, []).append(reply)
                    pending.discard(reply.job_id)
            peer.sock.settimeout(0.3)  # and nothing more arrives for them
            with pytest.raises(TimeoutError):
                peer.sock.recv(65535)

    def api_client(index: int, d: Daemon) -> None:
        with VisageClient(address_of(d), transport="tcp" if index % 2 else "udp") as c:
            ids = [
                c.submit(media, yaw=float(n), pitch=0.0, end=0.1, output=out / f"api{index}-{n}.wav")
                for n in range(jobs_per_client)
            ]
            for job_id in ids:
                done = c.wait(job_id, timeout_s=20.0)
                with lock:
                    terminal.setdefault(job_id, []).append(done)

    def run(target, index: int, d: Daemon) -> None:  # type: ignore[no-untyped-def]
        try:
            target(index, d)
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    with Daemon(fake_settings(tmp_path, max_batch=4), engine) as d:
        threads = [
            threading.Thread(target=run, args=(raw_client if i < 3 else api_client, i, d)) for i in range(5)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not failures, failures
    assert len(terminal) == 5 * jobs_per_client
    for job_id, replies in terminal.items():
        assert len(replies) == 1, (job_id, replies)
        (reply,) = replies
        if isinstance(reply, Done):
            assert_complete_wav(Path(reply.output))
        else:
            assert job_id.startswith("raw") and int(job_id.rsplit("-", 1)[1]) % 5 == 4
            assert reply.code == "engine_error"
    assert max(engine.batch_sizes) <= 4 and sum(engine.batch_sizes) <= 5 * jobs_per_client
    assert not list(out.glob("*" + PART_SUFFIX))


# ------------------------------------------------------------------------------------------------
# crash recovery: SIGKILL with queued and running jobs, restart, everything completes


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_subprocess(
    state: Path, allow: Path, port: int, model: str, log: Path, module: str = "visage.bridge.cli"
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        module,
        "serve",
        "--port",
        str(port),
        "--no-tcp",
        "--state-dir",
        str(state),
        "--allow-dir",
        str(allow),
        "--model",
        model,
        "--no-zeroconf",
        "--max-batch",
        "2",
    ]
    with open(log, "ab") as sink:
        process = subprocess.Popen(command, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20.0
    endpoint = state / const.ENDPOINT_FILE_NAME
    while True:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(endpoint.read_text())["pid"] == process.pid:
                return process
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise AssertionError(f"daemon did not start:\n{log.read_text()}")
        time.sleep(0.02)


def test_serve_through_the_visage_command_logs_each_line_once(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    process = _serve_subprocess(
        tmp_path / "state", tmp_path, _free_udp_port(), "fake", log, module="visage.model.cli"
    )
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0
    console = log.read_text()
    assert console.count("visage.bridge.daemon: serving fake") == 1, console
    assert console.count("visage.bridge.daemon: stopped") == 1, console


def test_sigkill_with_queued_and_running_jobs_then_restart(tmp_path: Path, media: Path) -> None:
    state, out, log = tmp_path / "state", tmp_path / "out", tmp_path / "daemon.log"
    out.mkdir()
    port = _free_udp_port()
    first = _serve_subprocess(state, tmp_path, port, "fake:delay=30,steps=300,seconds=0.2", log)
    try:
        with VisageClient(("127.0.0.1", port)) as c:
            ids = [
                c.submit(media, yaw=float(n), pitch=0.0, end=0.2, output=out / f"k{n}.wav") for n in range(5)
            ]
            while not (isinstance(r := c.status(ids[0]), Progress) and r.stage == "decoding"):
                time.sleep(0.02)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            assert first.returncode == -signal.SIGKILL
            assert not any(p.exists() for p in out.glob("k*.wav"))  # nothing half-written is visible
            stale = out / f".k0.wav.deadbeef0000{PART_SUFFIX}"  # as if killed mid-write
            stale.write_bytes(b"RIFF partial")

            second = _serve_subprocess(state, tmp_path, port, "fake:delay=0.1,steps=2,seconds=0.2", log)
            try:
                results = [c.wait(job_id, timeout_s=20.0) for job_id in ids]
            finally:
                second.send_signal(signal.SIGTERM)
                assert second.wait(20) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    for n, done in enumerate(results):
        assert done.output == str(out / f"k{n}.wav")
        assert_complete_wav(Path(done.output))
    assert not list(out.glob("*" + PART_SUFFIX))
    assert not (state / const.ENDPOINT_FILE_NAME).exists()  # removed on the clean SIGTERM exit
    text = log.read_text()
    assert "5 jobs resumed" in text and "stopped" in text


def test_graceful_stop_requeues_the_running_batch_and_the_next_daemon_finishes_it(
    tmp_path: Path, media: Path
) -> None:
    slow = FakeEngine(FakeSettings(delay_s=30.0, steps=300, seconds=0.05))
    settings_ = fake_settings(tmp_path)
    with VisageClient(("127.0.0.1", 1)) as c:  # address set below, once the port is known
        d = Daemon(settings_, slow).start()
        try:
            c.address = address_of(d)
            ids = [c.submit(media, yaw=float(n), pitch=0.0, end=0.1) for n in range(3)]
            while not (isinstance(r := c.status(ids[0]), Progress) and r.stage == "decoding"):
                time.sleep(0.02)
        finally:
            d.stop(graceful_s=0.05)  # what SIGINT/SIGTERM do, with a short grace period
        with Daemon(fake_settings(tmp_path, udp_port=0), fast_engine()) as again:
            c.address = address_of(again)
            for job_id in ids:
                assert_complete_wav(Path(c.wait(job_id, timeout_s=10.0).output))


def test_a_failed_start_cleans_up(tmp_path: Path) -> None:
    with Daemon(fake_settings(tmp_path / "a"), fast_engine()) as first:
        taken = first.udp_address[1]
        with pytest.raises(OSError):
            Daemon(fake_settings(tmp_path / "b", udp_port=taken), fast_engine()).start()
        assert not (tmp_path / "b" / "state" / const.ENDPOINT_FILE_NAME).exists()
        # the state folder is not left locked
        Daemon(fake_settings(tmp_path / "b"), fast_engine()).start().stop()


# ------------------------------------------------------------------------------------------------
# security


def test_paths_outside_allowed_dirs_and_bad_paths_are_refused(tmp_path: Path, media: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "v.mp4").write_bytes(b"x")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    inside_media = write_media(allowed)
    (allowed / "link.mp4").symlink_to(outside / "v.mp4")
    cases = [
        (dict(media=outside / "v.mp4"), ErrorCode.PATH_NOT_ALLOWED),
        (dict(media=allowed / "link.mp4"), ErrorCode.PATH_NOT_ALLOWED),  # symlink escaping the folder
        (dict(media=allowed / ".." / f"{tmp_path.name}-outside" / "v.mp4"), ErrorCode.PATH_NOT_ALLOWED),
        (dict(output=outside / "o.wav"), ErrorCode.PATH_NOT_ALLOWED),
        (dict(output_dir=outside), ErrorCode.PATH_NOT_ALLOWED),
        (dict(direction_curve=outside / "v.mp4"), ErrorCode.PATH_NOT_ALLOWED),
        (dict(media=allowed / "missing.mp4"), ErrorCode.MEDIA_NOT_FOUND),
        (dict(output=allowed / "o.mp3"), ErrorCode.BAD_OUTPUT),
        (dict(output=allowed / "no-such-folder" / "o.wav"), ErrorCode.BAD_OUTPUT),
        (
            dict(
                output=inside_media.with_suffix(".wav"),
                media=inside_media.rename(inside_media.with_suffix(".wav")),
            ),
            ErrorCode.BAD_OUTPUT,
        ),
    ]
    with (
        Daemon(fake_settings(tmp_path, allow_dirs=(allowed,)), fast_engine()) as d,
        VisageClient(address_of(d)) as c,
    ):
        for kwargs, code in cases:
            media_path = kwargs.pop("media", allowed / "media" / "clip.wav")
            with pytest.raises(JobFailed) as info:
                c.submit(media_path, yaw=0.0, pitch=0.0, **kwargs)
            assert info.value.code == code.value, (kwargs, info.value)
        with raw_udp(d.udp_address) as peer:  # relative paths never reach the file system
            peer.send(encode_request(Generate("rel", "clip.mp4", 0.0, None, 0.0, 0.0, GenerateOptions(), 0)))
            reply = peer.receive()
            assert isinstance(reply, Error) and (reply.job_id, reply.code) == (
                "rel",
                ErrorCode.BAD_PATH.value,
            )
        assert d.queue is not None and d.queue.counts() == (0, 0)


def test_off_loopback_bind_requires_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SettingsError, match="--token"):
        fake_settings(tmp_path, host="0.0.0.0")
    with pytest.raises(SettingsError, match="at least"):
        fake_settings(tmp_path, host="0.0.0.0", token="short")
    assert fake_settings(tmp_path, host="0.0.0.0", token=TOKEN).token == TOKEN  # accepted with a token

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args(["--host", "0.0.0.0", "--state-dir", str(tmp_path / "s"), "--model", "fake"])
    monkeypatch.delenv("VISAGE_TOKEN", raising=False)
    assert run_serve(args) == 2
    assert "--token" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # refused before touching anything


def test_token_is_required_on_every_request(tmp_path: Path, media: Path) -> None:
    with Daemon(fake_settings(tmp_path, token=TOKEN), fast_engine()) as d:
        with VisageClient(address_of(d), token="") as anonymous:
            with pytest.raises(JobFailed) as info:
                anonymous.ping()
            assert info.value.code == ErrorCode.UNAUTHORIZED.value
            with pytest.raises(JobFailed) as info:
                anonymous.submit(media, yaw=0.0, pitch=0.0)
            assert info.value.code == ErrorCode.UNAUTHORIZED.value
        with VisageClient(address_of(d), token=TOKEN + "x") as wrong, pytest.raises(JobFailed):
            wrong.ping()
        with raw_udp(d.udp_address) as peer:  # an invalid request without token: unauthorized, not details
            peer.send(message("/visage/generate", "j", "/etc/passwd", 0.0, 1.0, 0.0, 99.0, "{}", 0))
            reply = peer.receive()
            assert isinstance(reply, Error) and reply.code == ErrorCode.UNAUTHORIZED.value
        with VisageClient(address_of(d), token=TOKEN) as good:
            assert good.ping().model_id == "fake-1"
            assert_complete_wav(Path(good.generate(media, yaw=0.0, pitch=0.0, end=0.1).output))


def test_one_daemon_per_state_dir(daemon: Daemon, client: VisageClient) -> None:
    with pytest.raises(StateDirBusy):
        Daemon(daemon.settings, fast_engine()).start()
    assert client.ping().model_id == "fake-1"


# ------------------------------------------------------------------------------------------------
# bad input: every bad message gets an error reply and the daemon keeps serving

BAD_DATAGRAMS = [
    ("garbage", b"\x00\x01\x02\x03garbage", ErrorCode.MALFORMED),
    ("oversized", message("/visage/ping", 1, 0, "x" * 9000), ErrorCode.TOO_LARGE),
    ("unknown address", message("/visage/launch", 1), ErrorCode.UNKNOWN_ADDRESS),
    ("wrong type", message("/visage/ping", "one", 0), ErrorCode.BAD_TYPE),
    ("wrong arity", message("/visage/status"), ErrorCode.BAD_ARITY),
    (
        "bad direction",
        message("/visage/generate", "j", "/m.mp4", 0.0, 1.0, 0.0, 99.0, "{}", 0),
        ErrorCode.BAD_DIRECTION,
    ),
    (
        "bad range",
        message("/visage/generate", "j", "/m.mp4", 2.0, 1.0, 0.0, 0.0, "{}", 0),
        ErrorCode.BAD_RANGE,
    ),
    ("unknown job", message("/visage/status", "nobody", 0), ErrorCode.UNKNOWN_JOB),
]


@pytest.mark.parametrize(("data", "code"), [c[1:] for c in BAD_DATAGRAMS], ids=[c[0] for c in BAD_DATAGRAMS])
def test_bad_udp_datagrams_get_error_replies(daemon: Daemon, data: bytes, code: ErrorCode) -> None:
    with raw_udp(daemon.udp_address) as peer:
        peer.send(data)
        reply = peer.receive()
        assert isinstance(reply, Error) and reply.code == code.value, reply
        peer.send(encode_request(Ping()))
        assert isinstance(peer.receive(), Pong)


def test_bad_tcp_frames_get_error_replies_on_the_same_connection(daemon: Daemon) -> None:
    assert daemon.tcp_address is not None
    with socket.create_connection(daemon.tcp_address, timeout=5.0) as sock:
        decoder = SlipDecoder(1 << 20)
        frames: list[bytes] = []

        def next_reply() -> Reply:
            while not frames:
                frames.extend(f for f in decoder.feed(sock.recv(4096)) if isinstance(f, bytes))
            return decode_reply(frames.pop(0))

        sock.sendall(encode_frame(b"not osc at all"))
        assert next_reply().code == ErrorCode.MALFORMED.value  # type: ignore[union-attr]
        sock.sendall(b"\xc0" + b"x" * (const.MAX_TCP_FRAME_BYTES + 10) + b"\xc0")
        assert next_reply().code == ErrorCode.TOO_LARGE.value  # type: ignore[union-attr]
        sock.sendall(b"\xc0ab\xdbq\xc0")
        assert next_reply().code == ErrorCode.MALFORMED.value  # type: ignore[union-attr]
        sock.sendall(encode_frame(message("/visage/nope")))
        assert next_reply().code == ErrorCode.UNKNOWN_ADDRESS.value  # type: ignore[union-attr]
        big_ok = encode_frame(encode_request(Ping(1, 0, "")))
        sock.sendall(big_ok[:5])  # a frame split across writes
        time.sleep(0.05)
        sock.sendall(big_ok[5:])
        assert isinstance(next_reply(), Pong)


# ------------------------------------------------------------------------------------------------
# the submit command


def test_run_submit_prints_the_output_path(
    daemon: Daemon, media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_submit_arguments(parser)
    port = daemon.udp_address[1]
    out = tmp_path / "submitted.wav"
    argv = [
        str(media),
        "--yaw",
        "15",
        "--pitch",
        "5",
        "--end",
        "0.3",
        "-o",
        str(out),
        "--daemon",
        f"127.0.0.1:{port}",
    ]
    assert run_submit(parser.parse_args(argv)) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert_complete_wav(out)
    front = tmp_path / "front.wav"  # yaw and pitch default to the front, as for `visage generate`
    assert (
        run_submit(parser.parse_args([str(media), "--end", "0.3", "-o", str(front), "--daemon", argv[-1]]))
        == 0
    )
    assert json.loads(Path(str(front) + ".json").read_text())["yaw"] == 0.0  # OUT.wav -> OUT.wav.json
    capsys.readouterr()
    bad = [str(tmp_path / "missing.mp4"), "-o", str(out), "--daemon", f"127.0.0.1:{port}"]
    assert run_submit(parser.parse_args(bad)) == 1
    assert "media_not_found" in capsys.readouterr().err


def test_settings_defaults_are_safe(tmp_path: Path) -> None:
    settings_ = BridgeSettings(state_dir=tmp_path)
    assert (
        settings_.host == "127.0.0.1" and settings_.token is None and settings_.allow_dirs == (Path.home(),)
    )
    assert DaemonAddress("h", 1).source == ""


# ------------------------------------------------------------------------------------------------
# nothing loops: replies are never answered, a daemon never replies to itself, refusals are rate-limited


def _quiet_window(caplog: pytest.LogCaptureFixture, seconds: float = 0.5) -> tuple[int, float]:
    """(log records, process CPU seconds) over ``seconds`` in which nobody sends the daemon anything."""
    time.sleep(0.1)  # let answers already on their way land
    caplog.clear()
    cpu = time.process_time()
    time.sleep(seconds)
    return len(caplog.records), time.process_time() - cpu


QUIET_CPU_S = 0.15  # a reply loop burns most of a core; an idle daemon's pollers a few ms per 0.5 s


@pytest.mark.parametrize("token", [None, TOKEN], ids=["open", "token"])
def test_a_request_naming_the_daemons_own_port_is_refused_and_nothing_loops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, token: str | None
) -> None:
    caplog.set_level(logging.INFO)
    with Daemon(fake_settings(tmp_path, token=token), fast_engine()) as d, raw_udp(d.udp_address) as peer:
        assert d.tcp_address is not None
        for port in (d.udp_address[1], d.tcp_address[1]):
            peer.send(encode_request(Ping(1, port, token or "")))
            reply = peer.receive()  # to the sender: never to the daemon itself
            assert isinstance(reply, Error) and reply.code == ErrorCode.BAD_VALUE.value, reply
            assert str(port) in reply.message
        # a request that fails to decode keeps its reply_port for the error: not when it is ours
        bad_pitch = ["j", "/m.mp4", 0.0, 1.0, 0.0, 99.0, "{}", d.udp_address[1], *([token] if token else [])]
        peer.send(message("/visage/generate", *bad_pitch))
        reply = peer.receive()
        assert isinstance(reply, Error) and reply.code == ErrorCode.BAD_DIRECTION.value, reply
        records, cpu = _quiet_window(caplog)
        assert records == 0 and cpu < QUIET_CPU_S, (records, cpu, caplog.text[-2000:])
        peer.send(encode_request(Ping(1, 0, token or "")))
        assert isinstance(peer.receive(), Pong)


def test_replies_sent_to_the_daemon_are_never_answered(daemon: Daemon) -> None:
    replies: list[Reply] = [
        Pong(1, "fake-1", "cpu", 0, 0),
        Accepted("j", 0),
        Progress("j", 0.5, "decoding"),
        Done("j", "/o/x.wav", "/o/x.wav.json", False),
        Error("j", "unknown_address", "unknown address '/visage/pong'"),
    ]
    with raw_udp(daemon.udp_address) as peer:
        for reply in replies:
            peer.send(encode_reply(reply))
        assert peer.silent()
        peer.send(encode_request(Ping()))
        assert isinstance(peer.receive(), Pong)


def test_two_daemons_pointed_at_each_other_stay_quiet(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with (
        Daemon(fake_settings(tmp_path / "a"), fast_engine()) as a,
        Daemon(fake_settings(tmp_path / "b"), fast_engine()) as b,
        raw_udp(a.udp_address) as peer,
    ):
        for first, second in ((a, b), (b, a)):
            peer.target = first.udp_address
            other = second.udp_address[1]
            peer.send(encode_request(Ping(1, other)))  # first's pong goes to second
            peer.send(message("/visage/status", "nobody", other))  # first's unknown_job error goes to second
            peer.send(message("/visage/generate", "j", "/m.mp4", 0.0, 1.0, 0.0, 99.0, "{}", other))
        records, cpu = _quiet_window(caplog)
        assert records == 0 and cpu < QUIET_CPU_S, (records, cpu, caplog.text[-2000:])
        assert peer.silent(0.05)  # nothing was sent back to the peer itself
        for running in (a, b):
            peer.target = running.udp_address
            peer.send(encode_request(Ping()))
            assert isinstance(peer.receive(), Pong)


def test_refusals_are_rate_limited_per_sender_host(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    burst, rate = 5, 2.0
    monkeypatch.setattr(const, "REFUSAL_BURST", burst)
    monkeypatch.setattr(const, "REFUSALS_PER_S", rate)
    caplog.set_level(logging.INFO)
    with Daemon(fake_settings(tmp_path), fast_engine()) as d, raw_udp(d.udp_address) as noisy:
        started = time.monotonic()
        for _ in range(200):
            noisy.send(b"not osc")
        answered = 0
        while not noisy.silent(0.3):
            answered += 1
        elapsed = time.monotonic() - started
        assert burst <= answered <= burst + rate * elapsed + 1, (answered, elapsed)
        refusals = [r for r in caplog.records if r.name == "visage.bridge.endpoint"]
        assert len(refusals) <= answered + 1, caplog.text  # + one "too many refused requests" line
        noisy.send(encode_request(Ping()))  # answers that are not refusals are not limited
        assert isinstance(noisy.receive(), Pong)
        try:
            other = RawUdp(d.udp_address, host="127.0.0.2")  # another host on the loopback network
        except OSError:
            pytest.skip("127.0.0.2 cannot be bound here")
        try:
            other.send(b"not osc")
            reply = other.receive()
            assert isinstance(reply, Error) and reply.code == ErrorCode.MALFORMED.value
        finally:
            other.close()


# ------------------------------------------------------------------------------------------------
# the endpoint file belongs to the daemon that wrote it


def test_a_refused_second_daemon_leaves_the_first_ones_endpoint_file(
    daemon: Daemon, client: VisageClient, tmp_path: Path
) -> None:
    endpoint = daemon.settings.endpoint_path
    before = endpoint.read_bytes()
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    state = str(daemon.settings.state_dir)
    argv = ["--port", "0", "--tcp-port", "0", "--state-dir", state, "--model", "fake", "--no-zeroconf"]
    assert run_serve(parser.parse_args([*argv, "--allow-dir", str(tmp_path)])) == 2  # busy state folder
    assert endpoint.read_bytes() == before
    found = find_daemon("auto", state_dir=daemon.settings.state_dir, zeroconf=False)
    assert (found.host, found.port) == daemon.udp_address
    assert client.ping().model_id == "fake-1"


# ------------------------------------------------------------------------------------------------
# the TCP client: an explicit address, and a daemon restart while it waits


def test_run_submit_over_tcp_with_an_explicit_address(
    daemon: Daemon, media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_submit_arguments(parser)
    assert daemon.tcp_address is not None
    out = tmp_path / "over-tcp.wav"
    argv = [
        str(media),
        "--end",
        "0.2",
        "-o",
        str(out),
        "--tcp",
        "--daemon",
        f"127.0.0.1:{daemon.tcp_address[1]}",
    ]
    assert run_submit(parser.parse_args(argv)) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip() == str(out)
    assert_complete_wav(out)


def test_a_tcp_client_waits_through_a_daemon_restart(tmp_path: Path, media: Path) -> None:
    slow = FakeEngine(FakeSettings(delay_s=30.0, steps=300, seconds=0.05))
    first = Daemon(fake_settings(tmp_path), slow).start()
    restarted: list[Daemon] = []
    try:
        assert first.tcp_address is not None
        tcp_port = first.tcp_address[1]

        def restart() -> None:
            first.stop(graceful_s=0.05)  # the running job goes back to the queue
            restarted.append(Daemon(fake_settings(tmp_path, tcp_port=tcp_port), fast_engine()).start())

        with VisageClient(address_of(first), transport="tcp") as c:
            job_id = c.submit(media, yaw=0.0, pitch=0.0, end=0.1)
            while not (isinstance(r := c.status(job_id), Progress) and r.stage == "decoding"):
                time.sleep(0.02)
            restarter = threading.Thread(target=restart)
            restarter.start()
            try:
                done = c.wait(job_id, timeout_s=20.0)
            finally:
                restarter.join(20.0)
    finally:
        first.stop(graceful_s=0.05)
        for again in restarted:
            again.stop()
    assert restarted and done.output and not done.cached
    assert_complete_wav(Path(done.output))


# ------------------------------------------------------------------------------------------------
# paths that cannot be encoded are refused at validation; a bad job never fails its batch


def test_unencodable_paths_are_refused_and_the_rest_of_the_batch_completes(
    tmp_path: Path, media: Path
) -> None:
    engine = FakeEngine(FakeSettings(delay_s=0.4, steps=4, seconds=0.05))
    out = tmp_path / "out"
    out.mkdir()
    surrogate = "\ud800"
    with Daemon(fake_settings(tmp_path, max_batch=8), engine) as d, raw_udp(d.udp_address) as peer:
        # a first job with another batch key keeps the engine busy while the others queue up together
        peer.send(
            encode_request(
                Generate(
                    "busy",
                    str(media),
                    0.0,
                    0.1,
                    0.0,
                    0.0,
                    GenerateOptions(sample_rate=44_100, output=str(out / "busy.wav")),
                    0,
                )
            )
        )
        jobs = {
            "ok-1": GenerateOptions(output=str(out / "ok-1.wav")),
            "bad-output": GenerateOptions(output=str(out / f"x{surrogate}.wav")),
            "bad-curve": GenerateOptions(
                output=str(out / "c.wav"), direction_curve=str(out / f"{surrogate}.json")
            ),
            "bad-dir": GenerateOptions(output_dir=str(out / surrogate)),
            "ok-2": GenerateOptions(output=str(out / "ok-2.wav")),
        }
        while not isinstance(peer.receive(), Progress):
            pass  # busy is running
        for yaw, (job_id, options) in enumerate(jobs.items()):  # different yaws: no cache hits
            peer.send(encode_request(Generate(job_id, str(media), 0.0, 0.1, float(yaw), 0.0, options, 0)))
        outcome: dict[str, Reply] = {}
        while len(outcome) < len(jobs) + 1:
            reply = peer.receive(timeout_s=10.0)
            if isinstance(reply, (Done, Error)):
                outcome[reply.job_id] = reply
    for job_id in ("bad-output", "bad-curve", "bad-dir"):
        reply = outcome[job_id]
        assert isinstance(reply, Error) and reply.code == ErrorCode.BAD_PATH.value, reply
    for job_id in ("busy", "ok-1", "ok-2"):
        assert isinstance(outcome[job_id], Done), outcome[job_id]
        assert_complete_wav(out / f"{job_id}.wav")
    assert engine.batch_sizes == [1, 2]  # the two good jobs shared one batch


def test_the_client_refuses_a_path_it_cannot_send(client: VisageClient, media: Path, tmp_path: Path) -> None:
    undecodable = os.fsdecode(b"/tmp/clip-\xff.mp4")  # a POSIX file name that is not UTF-8 (surrogateescape)
    for kwargs in ({"media": undecodable}, {"media": media, "output": tmp_path / "\udcff.wav"}):
        source = kwargs.pop("media")
        with pytest.raises(JobFailed) as info:
            client.submit(source, yaw=0.0, pitch=0.0, **kwargs)  # type: ignore[arg-type]
        assert info.value.code == ErrorCode.BAD_PATH.value and "UTF-8" in info.value.message


# ------------------------------------------------------------------------------------------------
# an output folder that is read-only or full is refused at submission; failure at write time still ends
# the job with an error


@contextlib.contextmanager
def limited_folder(folder: Path, kind: str, size: str = "2m") -> Iterator[Path]:
    """``folder`` made read-only (``kind="read_only"``) or a tiny file system of ``size`` (``"small"``).

    Non-root: chmod (read-only only). Root ignores modes, so a tmpfs is mounted; skipped where that fails.
    """
    folder.mkdir(parents=True)
    if kind == "read_only" and os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    options = f"size={size}" + (",ro" if kind == "read_only" else "")
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, check=False
        ).returncode
        == 0
    )
    if not mounted:
        pytest.skip(f"cannot make a {kind} folder here (needs root and tmpfs)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> None:
    """Write into ``folder`` until its file system is full."""
    with open(folder / "filler", "wb") as sink:
        with contextlib.suppress(OSError):
            while True:
                sink.write(bytes(64 << 10))
                sink.flush()


def test_a_read_only_output_folder_is_refused_at_submission(
    client: VisageClient, media: Path, tmp_path: Path
) -> None:
    with limited_folder(tmp_path / "ro", "read_only") as folder:
        for kwargs in ({"output": folder / "x.wav"}, {"output_dir": folder}):
            with pytest.raises(JobFailed) as info:
                client.submit(media, yaw=0.0, pitch=0.0, end=0.1, **kwargs)  # type: ignore[arg-type]
            assert info.value.code == ErrorCode.BAD_OUTPUT.value and str(folder) in info.value.message
        assert not list(folder.iterdir())


def test_a_full_output_folder_is_refused_at_submission(
    client: VisageClient, media: Path, tmp_path: Path
) -> None:
    with limited_folder(tmp_path / "full", "small") as folder:
        fill(folder)
        with pytest.raises(JobFailed) as info:
            client.submit(media, yaw=0.0, pitch=0.0, end=0.1, output=folder / "x.wav")
        assert info.value.code == ErrorCode.BAD_OUTPUT.value and "free" in info.value.message
        assert sorted(p.name for p in folder.iterdir()) == ["filler"]


def test_a_folder_that_fills_up_after_submission_fails_the_job_not_the_daemon(
    tmp_path: Path, media: Path
) -> None:
    slow = FakeEngine(FakeSettings(delay_s=0.5, steps=5, seconds=0.05))
    with (
        limited_folder(tmp_path / "disk", "small") as folder,
        Daemon(fake_settings(tmp_path), slow) as d,
        VisageClient(address_of(d)) as c,
    ):
        job_id = c.submit(media, yaw=0.0, pitch=0.0, end=0.1, output=folder / "x.wav")  # room enough now
        fill(folder)
        with pytest.raises(JobFailed) as info:
            c.wait(job_id, timeout_s=10.0)
        assert info.value.code == ErrorCode.ENGINE_ERROR.value, info.value
        assert sorted(p.name for p in folder.iterdir()) == ["filler"]  # no partial result left behind
        assert c.ping().model_id == "fake-1"


# ------------------------------------------------------------------------------------------------
# no file a job writes may be one of its inputs


def test_no_file_a_job_writes_may_be_one_of_its_inputs(
    client: VisageClient, media: Path, tmp_path: Path
) -> None:
    out = tmp_path / "x.wav"
    # What a job writes, spelled as the issue and the hosts' README spell it: OUT.wav, OUT.wav.json,
    # OUT.binaural.wav, OUT.binaural.wav.json, and hidden temporaries .NAME.<random>.visage-part.
    written = ["x.wav.json", "x.binaural.wav", "x.binaural.wav.json", "x.wav"]  # the case first
    temporaries = [f".{name}.0123456789ab.visage-part" for name in written]
    for name in written + temporaries:
        victim = tmp_path / name
        victim.write_bytes(b"the user's own file")
        for role in ("direction_curve", "media"):
            kwargs = {"media": victim} if role == "media" else {"media": media, "direction_curve": victim}
            source = kwargs.pop("media")
            with pytest.raises(JobFailed) as info:
                client.submit(source, yaw=0.0, pitch=0.0, end=0.1, output=out, overwrite=True, **kwargs)
            assert info.value.code == ErrorCode.BAD_OUTPUT.value, (name, role, info.value)
            assert str(victim) in info.value.message
        assert victim.read_bytes() == b"the user's own file"
        victim.unlink()
    # without a preview, its names are free
    preview = tmp_path / "x.binaural.wav"
    preview.write_bytes(b"a clip that happens to have this name")
    done = client.generate(
        preview, yaw=0.0, pitch=0.0, end=0.1, output=out, extra={"binaural_preview": False}
    )
    assert done.output == str(out) and preview.read_bytes() == b"a clip that happens to have this name"
