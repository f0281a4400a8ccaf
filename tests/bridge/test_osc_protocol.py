"""The OSC protocol and SLIP framing, with no sockets: golden datagrams, round trips, specific errors,
and fuzzed input that must never raise."""

from __future__ import annotations

import logging
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from visage.bridge import const
from visage.bridge.errors import ErrorCode, RequestError
from visage.bridge.framing import SlipDecoder, encode_frame
from visage.bridge.osc_protocol import (
    GENERATE,
    Accepted,
    Cancel,
    Done,
    Error,
    Generate,
    GenerateOptions,
    Ping,
    Pong,
    Progress,
    Rejected,
    Status,
    StrayReply,
    check_path_shape,
    decode_reply,
    encode_reply,
    encode_request,
    parse_packet,
)

# ------------------------------------------------------------------------------------------------
# golden datagrams: written out byte for byte (checked by hand against the OSC 1.0 layout: strings
# NUL-terminated and padded to 4 bytes, big-endian int32/float32/float64). Never regenerate these.

GOLDEN_REQUESTS = [
    (Ping(1, 0), b"/visage/ping\x00\x00\x00\x00,ii\x00\x00\x00\x00\x01\x00\x00\x00\x00"),
    (
        Ping(1, 9001, "s3cret-token-0123"),
        b"/visage/ping\x00\x00\x00\x00,iis\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00#)s3cret-token-0123\x00\x00\x00",
    ),
    (
        Generate("job-1", "/m/a.mp4", 1.5, 6.5, 30.0, -10.0, GenerateOptions(), 0),
        b"/visage/generate\x00\x00\x00\x00,ssddffsi\x00\x00\x00job-1\x00\x00\x00/m/a.mp4\x00\x00\x00\x00"
        b"?\xf8\x00\x00\x00\x00\x00\x00@\x1a\x00\x00\x00\x00\x00\x00A\xf0\x00\x00\xc1 \x00\x00{}\x00\x00"
        b"\x00\x00\x00\x00",
    ),
    (
        Generate(
            "job-2", "/m/a.mp4", 0.0, None, -90.0, 0.0, GenerateOptions(seed=7, output="/o/x.wav"), 9001
        ),
        b"/visage/generate\x00\x00\x00\x00,ssddffsi\x00\x00\x00job-2\x00\x00\x00/m/a.mp4\x00\x00\x00\x00"
        b"\x00\x00\x00\x00\x00\x00\x00\x00\xbf\xf0\x00\x00\x00\x00\x00\x00\xc2\xb4\x00\x00\x00\x00\x00\x00"
        b'{"output":"/o/x.wav","seed":7}\x00\x00\x00\x00#)',
    ),
    (Cancel("job-1", 0), b"/visage/cancel\x00\x00,si\x00job-1\x00\x00\x00\x00\x00\x00\x00"),
    (Status("job-1", 9001), b"/visage/status\x00\x00,si\x00job-1\x00\x00\x00\x00\x00#)"),
]

GOLDEN_REPLIES = [
    (
        Pong(1, "fake-1", "cpu", 2, 1),
        b"/visage/pong\x00\x00\x00\x00,issii\x00\x00\x00\x00\x00\x01fake-1\x00\x00cpu\x00\x00\x00\x00\x02"
        b"\x00\x00\x00\x01",
    ),
    (Accepted("job-1", 3), b"/visage/accepted\x00\x00\x00\x00,si\x00job-1\x00\x00\x00\x00\x00\x00\x03"),
    (
        Progress("job-1", 0.5, "decoding"),
        b"/visage/progress\x00\x00\x00\x00,sfs\x00\x00\x00\x00job-1\x00\x00\x00?\x00\x00\x00decoding\x00\x00\x00\x00",
    ),
    (
        Done("job-1", "/o/x.wav", "/o/x.json", False),
        b"/visage/done\x00\x00\x00\x00,sssi\x00\x00\x00job-1\x00\x00\x00/o/x.wav\x00\x00\x00\x00/o/x.json"
        b"\x00\x00\x00\x00\x00\x00\x00",
    ),
    (
        Error("job-1", "bad_range", "end must be after start"),
        b"/visage/error\x00\x00\x00,sss\x00\x00\x00\x00job-1\x00\x00\x00bad_range\x00\x00\x00"
        b"end must be after start\x00",
    ),
]


@pytest.mark.parametrize(("request_", "golden"), GOLDEN_REQUESTS)
def test_golden_request_encodes_and_parses(request_, golden: bytes) -> None:
    assert encode_request(request_) == golden
    assert parse_packet(golden, const.MAX_UDP_REQUEST_BYTES) == [request_]


@pytest.mark.parametrize(("reply", "golden"), GOLDEN_REPLIES)
def test_golden_reply_encodes_and_decodes(reply, golden: bytes) -> None:
    assert encode_reply(reply) == golden
    assert decode_reply(golden) == reply


# ------------------------------------------------------------------------------------------------
# round trips

_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
_ids = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)
_paths = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=60
)


@given(
    job_id=_ids,
    media=_paths,
    start=st.floats(0, 1e5),
    length=st.one_of(st.none(), st.floats(1e-3, 1e4)),
    yaw=_f32.filter(lambda y: -180 <= y < 180),
    pitch=_f32.filter(lambda p: -90 <= p <= 90),
    seed=st.one_of(st.none(), st.integers(0, 2**63 - 1)),
    guidance=st.floats(0, const.MAX_GUIDANCE),
    port=st.integers(0, 65535),
    token=st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40),
)
def test_generate_round_trip(job_id, media, start, length, yaw, pitch, seed, guidance, port, token) -> None:
    end = None if length is None else start + length
    if end is not None and end <= start:  # float rounding at large start
        end = None
    request = Generate(
        job_id, media, start, end, yaw, pitch, GenerateOptions(guidance=guidance, seed=seed), port, token
    )
    assert parse_packet(encode_request(request), 1 << 20) == [request]


@given(
    fraction=_f32.filter(lambda f: 0 <= f <= 1), stage=st.text(max_size=30).filter(lambda s: "\x00" not in s)
)
def test_progress_round_trip(fraction: float, stage: str) -> None:
    reply = Progress("j", fraction, stage)
    assert decode_reply(encode_reply(reply)) == reply


def test_yaw_is_normalised_and_end_accepts_nil_or_negative() -> None:
    def generate(end: object, yaw: object) -> Generate:
        builder = OscMessageBuilder(GENERATE)
        for value in ("j", "/m.mp4", 0, end, yaw, 0.0, "", 0):
            builder.add_arg(value)
        (parsed,) = parse_packet(builder.build().dgram, 8192)
        assert isinstance(parsed, Generate)
        return parsed

    assert generate(None, 270.0).end is None  # nil (N)
    assert generate(-1.0, 270.0).yaw == -90.0
    assert generate(5, -180).end == 5.0  # ints are numbers too
    assert generate(5, 180.0).yaw == -180.0


def test_options_json_known_keys_and_extras() -> None:
    text = (
        '{"guidance": 3, "seed": 1, "sample_rate": 44100, "output_dir": "/o", "cache": false,'
        ' "direction_curve": "/c.json", "temperature": 0.9}'
    )
    request = Generate("j", "/m.mp4", 0.0, None, 0.0, 0.0, GenerateOptions(), 0)
    data = encode_request(request).replace(b"{}\x00\x00", _osc_string(text))
    (parsed,) = parse_packet(data, 8192)
    assert isinstance(parsed, Generate)
    assert parsed.options == GenerateOptions(
        guidance=3.0,
        seed=1,
        sample_rate=44100,
        direction_curve="/c.json",
        output_dir="/o",
        use_cache=False,
        extra={"temperature": 0.9},
    )


def _osc_string(text: str) -> bytes:
    raw = text.encode() + b"\x00"
    return raw + b"\x00" * (-len(raw) % 4)


_BUNDLE_HEADER = b"#bundle\x00" + struct.pack(">Q", 1)


# ------------------------------------------------------------------------------------------------
# specific errors


def _message(address: str, *args: object) -> bytes:
    builder = OscMessageBuilder(address)
    for value in args:
        builder.add_arg(value)
    return builder.build().dgram


def _generate_args(**override: object) -> list[object]:
    fields = {
        "job_id": "j1",
        "media": "/m.mp4",
        "start": 0.0,
        "end": 5.0,
        "yaw": 0.0,
        "pitch": 0.0,
        "options": "{}",
        "reply_port": 0,
    }
    fields.update(override)
    return list(fields.values())


ERROR_CASES = [
    ("unknown address", _message("/visage/explode", 1), ErrorCode.UNKNOWN_ADDRESS),
    ("foreign namespace", _message("/adm/obj/1/azim", 30.0), ErrorCode.UNKNOWN_ADDRESS),
    ("too few args", _message("/visage/ping", 1), ErrorCode.BAD_ARITY),
    ("too many args", _message("/visage/ping", 1, 0, "tok", "extra"), ErrorCode.BAD_ARITY),
    ("no args", _message("/visage/status"), ErrorCode.BAD_ARITY),
    ("string version", _message("/visage/ping", "1", 0), ErrorCode.BAD_TYPE),
    ("float port", _message("/visage/ping", 1, 0.5), ErrorCode.BAD_TYPE),
    ("bool yaw", _message(GENERATE, *_generate_args(yaw=True)), ErrorCode.BAD_TYPE),
    ("blob media", _message(GENERATE, *_generate_args(media=b"/m.mp4")), ErrorCode.BAD_TYPE),
    ("int token", _message("/visage/ping", 1, 0, 1234), ErrorCode.BAD_TYPE),
    ("nan start", _message(GENERATE, *_generate_args(start=math.nan)), ErrorCode.BAD_VALUE),
    ("port out of range", _message("/visage/ping", 1, 70000), ErrorCode.BAD_VALUE),
    ("bad id chars", _message("/visage/status", "a/b", 0), ErrorCode.BAD_ID),
    ("long id", _message("/visage/status", "x" * 65, 0), ErrorCode.BAD_ID),
    ("empty id on cancel", _message("/visage/cancel", "", 0), ErrorCode.BAD_ID),
    ("options not json", _message(GENERATE, *_generate_args(options="{nope")), ErrorCode.BAD_OPTIONS),
    ("options not object", _message(GENERATE, *_generate_args(options="[1]")), ErrorCode.BAD_OPTIONS),
    ("options NaN", _message(GENERATE, *_generate_args(options='{"guidance": NaN}')), ErrorCode.BAD_OPTIONS),
    ("guidance str", _message(GENERATE, *_generate_args(options='{"guidance": "2"}')), ErrorCode.BAD_OPTIONS),
    ("seed negative", _message(GENERATE, *_generate_args(options='{"seed": -1}')), ErrorCode.BAD_OPTIONS),
    (
        "rate too low",
        _message(GENERATE, *_generate_args(options='{"sample_rate": 100}')),
        ErrorCode.BAD_OPTIONS,
    ),
    ("cache not bool", _message(GENERATE, *_generate_args(options='{"cache": 0}')), ErrorCode.BAD_OPTIONS),
    (
        "output and output_dir",
        _message(GENERATE, *_generate_args(options='{"output": "/a.wav", "output_dir": "/o"}')),
        ErrorCode.BAD_OPTIONS,
    ),
    ("deep json", _message(GENERATE, *_generate_args(options="[" * 3000)), ErrorCode.BAD_OPTIONS),
    ("negative start", _message(GENERATE, *_generate_args(start=-1.0)), ErrorCode.BAD_RANGE),
    ("end before start", _message(GENERATE, *_generate_args(start=5.0, end=2.0)), ErrorCode.BAD_RANGE),
    ("end equals start", _message(GENERATE, *_generate_args(start=0.0, end=0.0)), ErrorCode.BAD_RANGE),
    ("pitch over 90", _message(GENERATE, *_generate_args(pitch=91.0)), ErrorCode.BAD_DIRECTION),
    ("yaw over 360", _message(GENERATE, *_generate_args(yaw=400.0)), ErrorCode.BAD_DIRECTION),
    ("empty media", _message(GENERATE, *_generate_args(media="")), ErrorCode.BAD_PATH),
    (
        "NUL in path option",
        _message(GENERATE, *_generate_args(options='{"output": "/a\\u0000.wav"}')),
        ErrorCode.BAD_PATH,
    ),
    ("long media", _message(GENERATE, *_generate_args(media="/" + "a" * 2000)), ErrorCode.BAD_PATH),
    # JSON escapes decode to unpaired surrogates (U+D800..U+DFFF), which UTF-8 cannot encode (RFC 3629 §3)
    (
        "lone surrogate in output",
        _message(GENERATE, *_generate_args(options='{"output": "/a/\\ud800.wav"}')),
        ErrorCode.BAD_PATH,
    ),
    (
        "lone surrogate in direction_curve",
        _message(GENERATE, *_generate_args(options='{"direction_curve": "/c\\udfff.json"}')),
        ErrorCode.BAD_PATH,
    ),
    (
        "escaped byte in output_dir",
        _message(GENERATE, *_generate_args(options='{"output_dir": "/o/\\udcff"}')),
        ErrorCode.BAD_PATH,
    ),
    (
        "lone surrogate in an extra option",
        _message(GENERATE, *_generate_args(options='{"note": "x\\ud83d"}')),
        ErrorCode.BAD_OPTIONS,
    ),
    (
        "lone surrogate in a key",
        _message(GENERATE, *_generate_args(options='{"\\udc80": 1}')),
        ErrorCode.BAD_OPTIONS,
    ),
    ("garbage", b"\x01\x02\x03\x04", ErrorCode.MALFORMED),
    ("empty datagram", b"", ErrorCode.MALFORMED),
    ("address without type tags padding", b"/visage/ping", ErrorCode.MALFORMED),
    ("truncated int", b"/visage/ping\x00\x00\x00\x00,ii\x00\x00\x00", ErrorCode.MALFORMED),
    ("bad utf-8", b"/visage/status\x00\x00,si\x00\xff\xfe\x00\x00\x00\x00\x00\x00", ErrorCode.MALFORMED),
    ("oversized", _message("/visage/ping", 1, 0, "x" * 9000), ErrorCode.TOO_LARGE),
    ("empty bundle", OscBundleBuilder(IMMEDIATELY).build().dgram, ErrorCode.MALFORMED),
    # python-osc skips these with a root-logger warning (or, for a negative size, loops forever)
    ("negative bundle element size", _BUNDLE_HEADER + struct.pack(">i", -4), ErrorCode.MALFORMED),
    (
        "bundle element past the end",
        _BUNDLE_HEADER + struct.pack(">i", 64) + b"/x\x00\x00",
        ErrorCode.MALFORMED,
    ),
    ("bundle element of garbage", _BUNDLE_HEADER + struct.pack(">i", 4) + b"abcd", ErrorCode.MALFORMED),
    ("empty bundle element", _BUNDLE_HEADER + struct.pack(">i", 0), ErrorCode.MALFORMED),
    (
        "unknown type tag",
        _osc_string("/visage/ping") + _osc_string(",ix") + struct.pack(">i", 1),
        ErrorCode.MALFORMED,
    ),
]


@pytest.mark.parametrize(("data", "code"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_bad_input_gets_a_specific_error(data: bytes, code: ErrorCode) -> None:
    (result,) = parse_packet(data, const.MAX_UDP_REQUEST_BYTES)
    assert isinstance(result, Rejected)
    assert result.error.code is code, result.error.message
    assert result.error.message


def test_rejected_keeps_routing_fields() -> None:
    data = _message(GENERATE, *_generate_args(job_id="abc", pitch=95.0, reply_port=9100), "tok")
    (result,) = parse_packet(data, 8192)
    assert isinstance(result, Rejected)
    assert (result.error.code, result.job_id, result.reply_port, result.token) == (
        ErrorCode.BAD_DIRECTION,
        "abc",
        9100,
        "tok",
    )


def test_bundle_messages_are_decoded_in_order_and_capped() -> None:
    bundle = OscBundleBuilder(IMMEDIATELY)
    for request in (Ping(1, 0), Status("a", 0), Cancel("b", 0)):
        bundle.add_content(_as_message(encode_request(request)))
    assert parse_packet(bundle.build().dgram, 8192) == [Ping(1, 0), Status("a", 0), Cancel("b", 0)]

    big = OscBundleBuilder(IMMEDIATELY)
    for _ in range(const.MAX_MESSAGES_PER_PACKET + 1):
        big.add_content(_as_message(encode_request(Ping(1, 0))))
    (result,) = parse_packet(big.build().dgram, 1 << 20)
    assert isinstance(result, Rejected) and result.error.code is ErrorCode.TOO_LARGE


def _as_message(data: bytes):  # type: ignore[no-untyped-def]
    from pythonosc.osc_message import OscMessage

    return OscMessage(data)


@pytest.mark.parametrize(("reply", "golden"), GOLDEN_REPLIES)
def test_a_reply_sent_to_the_daemon_is_stray_never_a_request(reply, golden: bytes) -> None:
    address = golden[: golden.index(b"\x00")].decode()
    assert parse_packet(golden, 8192) == [StrayReply(address)]
    bundle = OscBundleBuilder(IMMEDIATELY)
    for data in (golden, encode_request(Ping(1, 0))):
        bundle.add_content(_as_message(data))
    assert parse_packet(bundle.build().dgram, 8192) == [StrayReply(address), Ping(1, 0)]
    wrong_shape = _message(address, 1.5)  # a reply address with any arguments is still a reply
    assert parse_packet(wrong_shape, 8192) == [StrayReply(address)]


def _path_ok(path: str) -> bool:
    """Oracle: non-empty, no NUL, no surrogate code point (UTF-8 encodes none), short enough in UTF-8."""
    if not path or "\x00" in path or any(0xD800 <= ord(c) <= 0xDFFF for c in path):
        return False
    return (
        sum(1 if ord(c) < 0x80 else 2 if ord(c) < 0x800 else 3 if ord(c) < 0x10000 else 4 for c in path)
        <= const.MAX_PATH_BYTES
    )


@settings(max_examples=300)
@given(
    st.text(st.characters(codec=None), max_size=400)
    | st.text(st.sampled_from("a/\x00\ud800\udcff\U0001f600é"), max_size=400)
)
def test_path_shape_matches_the_oracle(path: str) -> None:
    try:
        assert check_path_shape(path, "media") == path
        accepted = True
    except RequestError as exc:
        assert exc.code is ErrorCode.BAD_PATH and "media" in exc.message
        exc.message.encode("utf-8")  # the refusal itself can be sent back
        accepted = False
    assert accepted == _path_ok(path)


def test_reply_limits() -> None:
    long = Error("j", "engine_error", "x" * 10_000)
    decoded = decode_reply(encode_reply(long))
    assert isinstance(decoded, Error) and len(decoded.message) == const.MAX_ERROR_MESSAGE_CHARS
    with pytest.raises(ValueError, match="exceeds"):
        encode_reply(Done("j", "/" + "a" * 3000, "/" + "b" * 3000, False))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"garbage", ErrorCode.MALFORMED),
        (_message("/visage/what", 1), ErrorCode.UNKNOWN_ADDRESS),
        (_message("/visage/accepted", "j"), ErrorCode.BAD_ARITY),
        (_message("/visage/accepted", "j", "3"), ErrorCode.BAD_TYPE),
    ],
)
def test_decode_reply_errors(data: bytes, code: ErrorCode) -> None:
    with pytest.raises(RequestError) as info:
        decode_reply(data)
    assert info.value.code is code


# ------------------------------------------------------------------------------------------------
# fuzzing: whatever arrives, the parser returns Rejected/requests and never raises

_VALID = [golden for _, golden in GOLDEN_REQUESTS]
_CODES = set(ErrorCode)


def _check_never_raises(data: bytes) -> None:
    results = parse_packet(data, const.MAX_UDP_REQUEST_BYTES)
    assert results
    for result in results:
        if isinstance(result, Rejected):
            assert result.error.code in _CODES and result.error.message
        else:
            assert isinstance(result, (Ping, Generate, Cancel, Status, StrayReply))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check_never_raises(data)


@settings(max_examples=400)
@given(
    st.sampled_from(_VALID),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
    st.integers(0, 200),
)
def test_fuzz_mutated_datagrams(valid: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(valid)
    for position, value in flips:
        data[position % len(data)] = value
    _check_never_raises(bytes(data[: len(data) - cut % len(data)]))


@settings(max_examples=200)
@given(st.lists(st.sampled_from("ifdshTFNbm[]"), max_size=12), st.binary(max_size=64))
def test_fuzz_type_tags(tags: list[str], payload: bytes) -> None:
    data = _osc_string("/visage/generate") + _osc_string("," + "".join(tags)) + payload
    _check_never_raises(data)


@settings(max_examples=100)
@given(st.lists(st.binary(max_size=64), max_size=4))
def test_fuzz_bundles(elements: list[bytes]) -> None:
    data = b"#bundle\x00" + b"\x00" * 7 + b"\x01"
    for element in elements:
        data += struct.pack(">i", len(element)) + element
    _check_never_raises(data)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_element = st.one_of(
    st.binary(max_size=24),
    st.sampled_from([b"", b"/x\x00\x00", b"#bundle\x00" + bytes(8), _osc_string("/a") + _osc_string(",xq")]),
)


@settings(max_examples=300)
@given(
    st.lists(st.tuples(st.integers(-(2**31), 2**31 - 1) | st.none(), _element), max_size=5),
    st.binary(max_size=16),
)
def test_fuzz_bundles_never_log_and_never_hang(elements: list[tuple[int | None, bytes]], tail: bytes) -> None:
    """Any size field (right, negative, too large) and any content: refused or parsed, silently."""
    data = _BUNDLE_HEADER
    for size, element in elements:
        data += struct.pack(">i", len(element) if size is None else size) + element
    records = _Records()
    root = logging.getLogger()
    root.addHandler(records)
    try:
        _check_never_raises(data + tail)
    finally:
        root.removeHandler(records)
    assert not records.records, [r.getMessage() for r in records.records]


# ------------------------------------------------------------------------------------------------
# SLIP framing


@given(
    frames=st.lists(st.binary(min_size=1, max_size=100), min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 700), max_size=8),
)
def test_slip_frames_survive_any_chunking(frames: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(f) for f in frames)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    decoder = SlipDecoder(1 << 16)
    out: list[bytes | RequestError] = []
    previous = 0
    for point in [*points, len(stream)]:
        out += decoder.feed(stream[previous:point])
        previous = point
    assert out == frames


def test_slip_oversized_frame_is_reported_and_the_stream_recovers() -> None:
    decoder = SlipDecoder(64)
    out = decoder.feed(encode_frame(b"a" * 40)[:20])
    out += decoder.feed(b"a" * 100 + b"\xc0" + encode_frame(b"ok"))
    assert isinstance(out[0], RequestError) and out[0].code is ErrorCode.TOO_LARGE
    assert out[1:] == [b"ok"]


def test_slip_bad_escape_is_malformed() -> None:
    out = SlipDecoder(64).feed(b"\xc0ab\xdbxcd\xc0" + encode_frame(b"next"))
    assert isinstance(out[0], RequestError) and out[0].code is ErrorCode.MALFORMED
    assert out[1:] == [b"next"]
