"""Fuzzing the daemon on loopback: whatever arrives, it stays responsive, quiet afterwards, and never
logs a traceback.

Generated input (hypothesis): well-formed requests with random fields (reply_port drawn from 0, the
daemon's own ports, the other daemon's port and any port; paths inside and outside the allowed folder,
relative, with NUL or unpaired surrogates; options JSON of random keys and values), replies, random
bytes, mutated valid datagrams, messages of random address and argument types, and bundles of all of
these; over UDP, SLIP-framed over TCP in random chunks, and sent from one daemon's own socket to another
so that each answers the other. After the barrage:

* a ping is answered (UDP and TCP), and every accepted job ended;
* the log is silent and the process uses almost no CPU for half a second (no reply loop runs);
* refusal log lines are within the per-host rate limit;
* no log record carries a traceback and nothing printed one on stderr.

The barrage holds ``VISAGE_FUZZ_EXAMPLES`` packets per transport (default 300, a few seconds);
``VISAGE_FUZZ_EXAMPLES=20000`` is the slow setting for a longer hunt.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bridge_fixtures import fake_settings, fast_engine, write_media
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pythonosc.osc_message_builder import OscMessageBuilder

from visage.bridge import const
from visage.bridge.daemon import Daemon
from visage.bridge.errors import ErrorCode, RequestError
from visage.bridge.framing import SlipDecoder, encode_frame
from visage.bridge.osc_protocol import (
    CANCEL,
    GENERATE,
    PING,
    STATUS,
    Accepted,
    Done,
    Error,
    GenerateOptions,
    Ping,
    Pong,
    Progress,
    decode_reply,
    encode_reply,
    encode_request,
    parse_options,
)

EXAMPLES = int(os.environ.get("VISAGE_FUZZ_EXAMPLES", "300"))
QUIET_S = 0.5  # the window in which an idle daemon must stay silent
QUIET_CPU_S = 0.15  # process CPU allowed in that window (a reply loop takes most of a core)
JOBS_END_S = 30.0  # time for the jobs the fuzzer managed to submit to finish
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
SMALL_TCP_FRAME_BYTES = 4096  # oversized frames stay cheap to send

# ------------------------------------------------------------------------------------------------
# strategies

_osc_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=24)
_surrogates = st.sampled_from(["\ud800", "\udcff", "a\udfffb", "\ud83d"])
_job_ids = st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True) | _osc_text
_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**31), 2**31 - 1),
    st.sampled_from([0.0, 0.05, 0.1, 1.0, -1.0, 90.0, 180.0, 360.0, 1e9]),
)
_JSON_KEYS = [
    "guidance",
    "seed",
    "sample_rate",
    "direction_curve",
    "output",
    "output_dir",
    "cache",
    "overwrite",
    "binaural_preview",
    "fake_fail",
]
_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    _surrogates,
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _paths(media: Path, out: Path) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(
            [str(media), str(out), "relative.mp4", "/etc/passwd", "/a\x00b", "", "/" + "x" * 1100]
        ),
        st.builds(lambda name: str(out / f"{name}.wav"), st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)),
        st.builds(lambda text: str(out / text), _osc_text | _surrogates),
    )


def _options_json(paths: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    objects = st.dictionaries(
        st.sampled_from(_JSON_KEYS) | st.text(max_size=8) | _surrogates,
        paths | _json_values,
        max_size=5,
    )
    ascii_json = objects.map(json.dumps)  # ensure_ascii: surrogates travel as \\udxxx escapes
    return st.one_of(ascii_json, st.sampled_from(["", "{", "[1]", "NaN", "[" * 2000]), _osc_text)


def _message(address: str, args: list[tuple[Any, str]]) -> bytes:
    builder = OscMessageBuilder(address)
    for value, tag in args:
        builder.add_arg(value, tag)
    return builder.build().dgram


_typed_args = st.lists(
    st.one_of(
        st.tuples(st.integers(-(2**31), 2**31 - 1), st.just("i")),
        st.tuples(st.integers(-(2**63), 2**63 - 1), st.just("h")),
        st.tuples(st.floats(width=32), st.just("f")),
        st.tuples(st.floats(), st.just("d")),
        st.tuples(_osc_text, st.just("s")),
        st.tuples(st.binary(min_size=1, max_size=16), st.just("b")),  # python-osc builds no empty blob
        st.tuples(st.booleans(), st.just("T")).map(lambda t: (t[0], "T" if t[0] else "F")),
        st.tuples(st.none(), st.just("N")),
    ),
    max_size=10,
)


def _requests(ports: list[int], media: Path, out: Path) -> st.SearchStrategy[bytes]:
    reply_port = st.sampled_from([0, *ports]) | st.integers(0, 65535) | st.integers(-5, 70000)
    token = st.lists(_osc_text, max_size=1)
    paths = _paths(media, out).filter(
        lambda p: "\x00" not in p and not any("\ud800" <= c <= "\udfff" for c in p)
    )
    number = st.builds(lambda x: (x, "d"), _numbers) | st.builds(lambda x: (x, "i"), st.integers(0, 1000))
    generate = st.builds(
        lambda job_id, path, start, end, yaw, pitch, options, port, tok: _message(
            GENERATE,
            [(job_id, "s"), (path, "s"), start, end, yaw, pitch, (options, "s"), (port, "i")]
            + [(t, "s") for t in tok],
        ),
        _job_ids,
        paths,
        number,
        number | st.just((None, "N")),
        number,
        number,
        _options_json(_paths(media, out)),
        reply_port.filter(lambda p: -(2**31) <= p < 2**31),
        token,
    )
    simple = st.builds(
        lambda address, first, port, tok: _message(address, [first, (port, "i")] + [(t, "s") for t in tok]),
        st.sampled_from([PING, STATUS, CANCEL]),
        st.builds(lambda x: (x, "s"), _job_ids) | st.builds(lambda x: (x, "i"), st.integers(-5, 5)),
        reply_port.filter(lambda p: -(2**31) <= p < 2**31),
        token,
    )
    return st.one_of(generate, simple)


_replies = st.one_of(
    st.builds(Pong, st.integers(0, 9), _osc_text, _osc_text, st.integers(0, 99), st.integers(0, 99)),
    st.builds(Accepted, _job_ids, st.integers(0, 99)),
    st.builds(Progress, _job_ids, st.floats(0, 1, width=32), _osc_text),
    st.builds(Done, _job_ids, _osc_text, _osc_text, st.booleans()),
    st.builds(Error, _job_ids, st.sampled_from([c.value for c in ErrorCode]), _osc_text),
).map(encode_reply)


def _mutated(valid: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    def mutate(data: bytes, flips: list[tuple[int, int]], cut: int) -> bytes:
        raw = bytearray(data)
        for position, value in flips:
            raw[position % len(raw)] = value
        return bytes(raw[: len(raw) - cut % len(raw)])

    return st.builds(
        mutate,
        valid,
        st.lists(st.tuples(st.integers(0, 500), st.integers(0, 255)), max_size=4),
        st.integers(0, 40),
    )


def _bundle(elements: list[bytes]) -> bytes:
    data = b"#bundle\x00" + struct.pack(">Q", 1)
    for element in elements:
        data += struct.pack(">i", len(element)) + element
    return data


def packets(ports: list[int], media: Path, out: Path) -> st.SearchStrategy[bytes]:
    """Everything a hostile or confused sender could put in one datagram or TCP frame."""
    requests = _requests(ports, media, out)
    random_messages = st.builds(
        _message,
        st.sampled_from(["/visage/", "/visage/pong/", "/x", "/"]).flatmap(
            lambda prefix: st.builds(lambda s: prefix + s, _osc_text)
        ),
        _typed_args,
    )
    single = st.one_of(
        requests,
        _replies,
        random_messages,
        _mutated(requests | _replies),
        st.binary(max_size=300),
    )
    return st.recursive(single, lambda inner: st.lists(inner, max_size=4).map(_bundle), max_leaves=6)


# ------------------------------------------------------------------------------------------------
# harness


@pytest.fixture
def media(tmp_path: Path) -> Path:
    return write_media(tmp_path)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def _drain(sock: socket.socket) -> int:
    """Read and drop whatever waits on a non-blocking socket; return how many packets."""
    count = 0
    while True:
        try:
            data = sock.recv(65535)
        except (BlockingIOError, ConnectionError):
            return count
        if not data and sock.type == socket.SOCK_STREAM:
            return count
        count += 1


def _ping_udp(address: tuple[str, int]) -> Pong:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5.0)
        sock.sendto(encode_request(Ping()), address)
        reply = decode_reply(sock.recv(65535))
    assert isinstance(reply, Pong), reply
    return reply


def _ping_tcp(address: tuple[str, int]) -> Pong:
    with socket.create_connection(address, timeout=5.0) as sock:
        sock.sendall(encode_frame(encode_request(Ping())))
        decoder = SlipDecoder(1 << 20)
        while True:
            frames = [f for f in decoder.feed(sock.recv(4096)) if isinstance(f, bytes)]
            if frames:
                reply = decode_reply(frames[0])
                assert isinstance(reply, Pong), reply
                return reply


def _wait_for_jobs(daemons: list[Daemon]) -> None:
    deadline = time.monotonic() + JOBS_END_S
    for d in daemons:
        assert d.queue is not None
        while d.queue.counts() != (0, 0):
            assert time.monotonic() < deadline, f"jobs still pending: {d.queue.counts()}"
            time.sleep(0.05)


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.exc_info or "Traceback" in record.getMessage()
    ]


def assert_calm(
    daemons: list[Daemon],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    barrage_s: float,
) -> None:
    """The checks listed in the module docstring, after a barrage that lasted ``barrage_s``."""
    _wait_for_jobs(daemons)
    assert not _tracebacks(caplog), _tracebacks(caplog)[:3]
    refusals = [
        r for r in caplog.records if r.name == "visage.bridge.endpoint" and r.levelno >= logging.WARNING
    ]
    # per daemon: the burst, the sustained rate, and one "too many"/"N were dropped" pair per episode
    limit = len(daemons) * (3 * const.REFUSAL_BURST + 3 * const.REFUSALS_PER_S * barrage_s + 4)
    assert len(refusals) <= limit, (len(refusals), limit, barrage_s)
    time.sleep(0.1)  # answers already in flight land
    caplog.clear()
    cpu = time.process_time()
    time.sleep(QUIET_S)
    cpu = time.process_time() - cpu
    assert not caplog.records and cpu < QUIET_CPU_S, (len(caplog.records), cpu, caplog.text[-2000:])
    for d in daemons:
        _ping_udp(d.udp_address)
        assert d.tcp_address is not None
        _ping_tcp(d.tcp_address)
    assert "Traceback" not in capfd.readouterr().err


@pytest.fixture
def two_daemons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Daemon, Daemon]]:
    monkeypatch.setattr(const, "MAX_TCP_FRAME_BYTES", SMALL_TCP_FRAME_BYTES)
    with (
        Daemon(fake_settings(tmp_path, state_dir=tmp_path / "state-a"), fast_engine()) as a,
        Daemon(fake_settings(tmp_path, state_dir=tmp_path / "state-b"), fast_engine()) as b,
    ):
        yield a, b


def _ports(a: Daemon, b: Daemon, *extra: int) -> list[int]:
    assert a.tcp_address is not None and b.tcp_address is not None
    return [a.udp_address[1], a.tcp_address[1], b.udp_address[1], b.tcp_address[1], *extra]


# ------------------------------------------------------------------------------------------------
# the barrages


def test_udp_barrage(
    two_daemons: tuple[Daemon, Daemon],
    media: Path,
    out: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    a, b = two_daemons
    caplog.set_level(logging.INFO)
    peer = _udp_socket()
    try:
        ports = _ports(a, b, peer.getsockname()[1])
        started = time.monotonic()

        @FUZZ_SETTINGS
        @given(packets(ports, media, out), st.sampled_from([a, b]))
        def send(data: bytes, target: Daemon) -> None:
            peer.sendto(data, target.udp_address)
            _drain(peer)

        send()
        barrage_s = time.monotonic() - started
        assert_calm([a, b], caplog, capfd, barrage_s)
        _drain(peer)
    finally:
        peer.close()


def test_daemons_answering_each_other(
    two_daemons: tuple[Daemon, Daemon],
    media: Path,
    out: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Packets sent from b's own socket to a: a's answers go to b, b's answers to them go back to a."""
    a, b = two_daemons
    caplog.set_level(logging.INFO)
    from_b = b._udp.route_to(*a.udp_address)  # type: ignore[union-attr]  # b's socket, as a spoofer would
    started = time.monotonic()

    @FUZZ_SETTINGS
    @given(packets(_ports(a, b), media, out))
    def send(data: bytes) -> None:
        from_b.send(data)

    send()
    assert_calm([a, b], caplog, capfd, time.monotonic() - started)


def test_tcp_barrage(
    two_daemons: tuple[Daemon, Daemon],
    media: Path,
    out: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    a, b = two_daemons
    assert a.tcp_address is not None
    caplog.set_level(logging.INFO)
    slip_noise = st.binary(max_size=64).map(
        lambda raw: raw.replace(b"\x01", b"\xc0").replace(b"\x02", b"\xdb")
    )
    stream_parts = st.lists(
        packets(_ports(a, b), media, out).map(encode_frame)
        | slip_noise
        | st.just(b"\xc0" + b"x" * (SMALL_TCP_FRAME_BYTES + 10) + b"\xc0"),
        min_size=1,
        max_size=4,
    )
    connections: list[socket.socket] = []
    try:
        for _ in range(3):
            sock = socket.create_connection(a.tcp_address, timeout=5.0)
            sock.setblocking(False)
            connections.append(sock)
        started = time.monotonic()

        @FUZZ_SETTINGS
        @given(stream_parts, st.integers(0, len(connections) - 1), st.lists(st.integers(0, 400), max_size=3))
        def send(parts: list[bytes], which: int, cuts: list[int]) -> None:
            stream = b"".join(parts)
            sock = connections[which]
            points = sorted({c % (len(stream) + 1) for c in cuts}) + [len(stream)]
            previous = 0
            for point in points:  # frames split across writes
                sock.setblocking(True)
                sock.sendall(stream[previous:point])
                sock.setblocking(False)
                previous = point
            _drain(sock)

        send()
        barrage_s = time.monotonic() - started
        for sock in connections:
            sock.setblocking(True)
            sock.sendall(encode_frame(encode_request(Ping())))  # each connection still works
        for sock in connections:
            decoder = SlipDecoder(1 << 20)
            sock.settimeout(5.0)
            pong = None
            while pong is None:
                for frame in decoder.feed(sock.recv(65535)):
                    if isinstance(frame, bytes) and isinstance(reply := decode_reply(frame), Pong):
                        pong = reply
        assert_calm([a, b], caplog, capfd, barrage_s)
    finally:
        for sock in connections:
            sock.close()


# ------------------------------------------------------------------------------------------------
# options JSON, without sockets: refused with a specific code, or accepted and canonical


@settings(max_examples=max(EXAMPLES, 300), deadline=None, database=None)
@given(_options_json(_paths(Path("/m/clip.mp4"), Path("/o"))))
def test_options_json_is_refused_specifically_or_round_trips(text: str) -> None:
    try:
        options = parse_options(text)
    except RequestError as error:
        assert error.code in (ErrorCode.BAD_OPTIONS, ErrorCode.BAD_PATH), error
        error.message.encode("utf-8")  # the refusal itself can be sent back
        return
    canonical = options.to_json()
    canonical.encode("utf-8")  # whatever was accepted can be stored, written and sent
    json.dumps(dict(options.extra), ensure_ascii=False).encode("utf-8")
    assert parse_options(canonical) == options
    for path in (options.output, options.output_dir, options.direction_curve):
        assert path is None or (path and "\x00" not in path)
    assert isinstance(options, GenerateOptions)
