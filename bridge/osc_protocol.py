"""The daemon's OSC protocol, pure: address table, typed messages, bytes <-> dataclasses, validation.

No sockets and no files: every function maps values to values (python-osc's ``OscMessageBuilder`` and
``OscPacket`` do the wire encoding), so the whole protocol is testable on literal bytes. Paths are
checked here only for shape (length, NUL bytes); whether they exist and are allowed is
`security.PathPolicy`'s job.

Requests (client -> daemon); ``[s token]`` is present only when the daemon requires a token:

    /visage/ping      i protocol_version, i reply_port [, s token]
    /visage/generate  s job_id, s media, d start, d end, f yaw, f pitch, s options_json, i reply_port
                      [, s token]
    /visage/cancel    s job_id, i reply_port [, s token]
    /visage/status    s job_id, i reply_port [, s token]

Replies (daemon -> client, to the sender or to ``reply_port`` on the sender's host when non-zero):

    /visage/pong      i protocol_version, s model_id, s device, i queued, i running
    /visage/accepted  s job_id, i queue_ahead
    /visage/progress  s job_id, f fraction, s stage
    /visage/done      s job_id, s output, s metadata, i cached
    /visage/error     s job_id, s code, s message

Numbers are accepted as i, h, f or d; ``end`` < 0 or nil (N) means "to the end of the media".

A message at a reply address is never answered (`StrayReply`): a daemon answering replies would loop
with itself or with another daemon. Paths and option texts must be encodable as UTF-8 (no unpaired
surrogates): anything else could not be opened, stored in a sidecar or sent back in `done`. What
python-osc would skip with a root-logger warning (or, for a negative bundle element size, loop on) is
refused before python-osc reads it.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pythonosc import osc_bundle, osc_message, osc_packet
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.parsing import osc_types

from . import const
from .errors import ErrorCode, RequestError

try:
    from visage.model.files.result_files import wrap_yaw
except ModuleNotFoundError:  # inside the Blender extension: the contract's copy vendored next to this one
    from .result_files import wrap_yaw

PING = f"{const.ADDRESS_PREFIX}/ping"
GENERATE = f"{const.ADDRESS_PREFIX}/generate"
CANCEL = f"{const.ADDRESS_PREFIX}/cancel"
STATUS = f"{const.ADDRESS_PREFIX}/status"
PONG = f"{const.ADDRESS_PREFIX}/pong"
ACCEPTED = f"{const.ADDRESS_PREFIX}/accepted"
PROGRESS = f"{const.ADDRESS_PREFIX}/progress"
DONE = f"{const.ADDRESS_PREFIX}/done"
ERROR = f"{const.ADDRESS_PREFIX}/error"
REPLY_ADDRESSES = frozenset({PONG, ACCEPTED, PROGRESS, DONE, ERROR})

_JOB_ID_RE = re.compile(rf"[A-Za-z0-9._-]{{1,{const.MAX_JOB_ID_CHARS}}}")
_BUNDLE_PREFIX = b"#bundle\x00"
_BUNDLE_HEADER_BYTES = 16  # the prefix and an 8-byte time tag
_READABLE_TYPE_TAGS = frozenset("ihfdsbrmtTFN[]")  # what python-osc's OscMessage decodes
_INT32_MAX = 2**31 - 1
# The engine's binaural-preview decoders (visage.model.delivery.binaural_preview.PREVIEW_RENDERERS).
PREVIEW_RENDERERS = ("spherical-head", "youtube")
# Where a 360° video's windows look besides the direction given (visage.model.inference.panorama_input).
LOOK_MODES = ("auto",)
_PARSE_FAILURES = (
    osc_packet.ParseError,
    osc_message.ParseError,
    osc_bundle.ParseError,
    osc_types.ParseError,
    ValueError,  # includes UnicodeDecodeError from python-osc's get_string
    IndexError,
    TypeError,
    struct.error,
    OverflowError,
    RecursionError,  # deeply nested bundles on the TCP transport
)

# ------------------------------------------------------------------------------------------------
# messages


@dataclass(frozen=True)
class GenerateOptions:
    """Options carried as a JSON object in `generate`; unknown keys go to ``extra`` for the engine.

    JSON keys: ``guidance``, ``seed``, ``sample_rate``, ``direction_curve``, ``output`` (a .wav file),
    ``output_dir`` (a folder; the file name is derived from the media and job id), ``overwrite`` (true =
    an existing output may be replaced), ``cache`` (false = always recompute), ``group`` (the id of a run
    the job belongs to, e.g. ``fill:<edit>:<run id>``), ``group_label`` (its name for people) and
    ``group_total`` (its number of jobs): the web page shows a group as one line. The group options
    are stored with the job, not handed to the engine, so they change neither the audio nor its cache key.
    """

    guidance: float = const.DEFAULT_GUIDANCE
    seed: int | None = None
    sample_rate: int = const.DEFAULT_SAMPLE_RATE_HZ
    direction_curve: str | None = None
    output: str | None = None
    output_dir: str | None = None
    use_cache: bool = True
    overwrite: bool = False
    group: str | None = None
    group_label: str | None = None
    group_total: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Canonical JSON with only the keys that differ from the defaults (sorted, compact)."""
        obj: dict[str, Any] = dict(self.extra)
        if self.guidance != const.DEFAULT_GUIDANCE:
            obj["guidance"] = self.guidance
        if self.seed is not None:
            obj["seed"] = self.seed
        if self.sample_rate != const.DEFAULT_SAMPLE_RATE_HZ:
            obj["sample_rate"] = self.sample_rate
        for key in ("direction_curve", "output", "output_dir", "group", "group_label", "group_total"):
            if getattr(self, key) is not None:
                obj[key] = getattr(self, key)
        if not self.use_cache:
            obj["cache"] = False
        if self.overwrite:
            obj["overwrite"] = True
        return json.dumps(obj, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Ping:
    protocol_version: int = const.PROTOCOL_VERSION
    reply_port: int = 0
    token: str = ""


@dataclass(frozen=True)
class Generate:
    job_id: str  # "" = let the daemon choose (the `accepted` reply names it)
    media: str
    start: float
    end: float | None  # None = to the end of the media
    yaw: float  # degrees, AmbiX: + = left; normalised to [-180, 180)
    pitch: float  # degrees, + = up
    options: GenerateOptions = field(default_factory=GenerateOptions)
    reply_port: int = 0
    token: str = ""


@dataclass(frozen=True)
class Cancel:
    job_id: str
    reply_port: int = 0
    token: str = ""


@dataclass(frozen=True)
class Status:
    job_id: str
    reply_port: int = 0
    token: str = ""


@dataclass(frozen=True)
class Pong:
    protocol_version: int
    model_id: str
    device: str
    queued: int
    running: int


@dataclass(frozen=True)
class Accepted:
    job_id: str
    queue_ahead: int  # jobs that will run before this one; 0 when it is running


@dataclass(frozen=True)
class Progress:
    job_id: str
    fraction: float  # 0..1
    stage: str


@dataclass(frozen=True)
class Done:
    job_id: str
    output: str
    metadata: str
    cached: bool  # answered from the result cache


@dataclass(frozen=True)
class Error:
    job_id: str  # "" when the request could not be attributed to a job
    code: str  # an ErrorCode value, or an engine-specific code
    message: str


@dataclass(frozen=True)
class Rejected:
    """A request that failed to decode, with whatever routing fields could be salvaged from it."""

    error: RequestError
    reply_port: int = 0
    token: str = ""

    @property
    def job_id(self) -> str:
        return self.error.job_id


@dataclass(frozen=True)
class StrayReply:
    """A message at a reply address, sent to the daemon: dropped without an answer (see the docstring)."""

    address: str


Request = Ping | Generate | Cancel | Status
Reply = Pong | Accepted | Progress | Done | Error

# (address, fixed arity) per request type; the token is one optional extra argument.
_REQUEST_ARITY = {PING: 2, GENERATE: 8, CANCEL: 2, STATUS: 2}
_JOB_ADDRESSES = (GENERATE, CANCEL, STATUS)

# ------------------------------------------------------------------------------------------------
# argument checks


def _osc_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool (T/F)"
    if value is None:
        return "nil (N)"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "blob"
    return type(value).__name__


def _get_str(args: Sequence[Any], i: int, name: str) -> str:
    value = args[i]
    if not isinstance(value, str):
        raise RequestError(
            ErrorCode.BAD_TYPE, f"argument {i} ({name}) must be a string, got {_osc_kind(value)}"
        )
    return value


def _get_int(args: Sequence[Any], i: int, name: str) -> int:
    value = args[i]
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(
            ErrorCode.BAD_TYPE, f"argument {i} ({name}) must be an int, got {_osc_kind(value)}"
        )
    return value


def _get_number(args: Sequence[Any], i: int, name: str, *, nil_ok: bool = False) -> float | None:
    value = args[i]
    if value is None and nil_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(
            ErrorCode.BAD_TYPE, f"argument {i} ({name}) must be a number (i/h/f/d), got {_osc_kind(value)}"
        )
    number = float(value)
    if not math.isfinite(number):
        raise RequestError(ErrorCode.BAD_VALUE, f"argument {i} ({name}) must be finite, got {number}")
    return number


def _get_reply_port(args: Sequence[Any], i: int) -> int:
    port = _get_int(args, i, "reply_port")
    if not 0 <= port <= 65535:
        raise RequestError(ErrorCode.BAD_VALUE, f"reply_port must be 0..65535, got {port}")
    return port


def _get_token(args: Sequence[Any], arity: int) -> str:
    return _get_str(args, arity, "token") if len(args) == arity + 1 else ""


def check_job_id(job_id: str, *, allow_empty: bool = False) -> str:
    """Return ``job_id`` if it is 1..64 characters of ``[A-Za-z0-9._-]`` (or "" when allowed)."""
    if job_id == "" and allow_empty:
        return job_id
    if not _JOB_ID_RE.fullmatch(job_id):
        raise RequestError(
            ErrorCode.BAD_ID,
            f"job id must be 1..{const.MAX_JOB_ID_CHARS} characters of A-Z a-z 0-9 . _ -,"
            f" got {job_id[:80]!r}",
        )
    return job_id


def _unencodable_at(text: str) -> int | None:
    """Index of the first character UTF-8 cannot encode (an unpaired surrogate), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def check_path_shape(path: str, name: str) -> str:
    """Reject empty, over-long, NUL-containing or non-UTF-8 path strings (existence is checked elsewhere)."""
    if not path:
        raise RequestError(ErrorCode.BAD_PATH, f"{name} is empty")
    if "\x00" in path:
        raise RequestError(ErrorCode.BAD_PATH, f"{name} contains a NUL character")
    bad = _unencodable_at(path)
    if bad is not None:
        raise RequestError(
            ErrorCode.BAD_PATH,
            f"{name} is not valid Unicode text: unpaired surrogate {path[bad]!r} at character {bad}"
            " (paths travel as UTF-8)",
        )
    if len(path.encode("utf-8")) > const.MAX_PATH_BYTES:
        raise RequestError(ErrorCode.BAD_PATH, f"{name} is longer than {const.MAX_PATH_BYTES} bytes")
    return path


def _options_number(obj: Mapping[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(ErrorCode.BAD_OPTIONS, f"option {key!r} must be a finite number, got {value!r}")
    return float(value)


def _options_int(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(ErrorCode.BAD_OPTIONS, f"option {key!r} must be an integer, got {value!r}")
    return value


def _options_path(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError(ErrorCode.BAD_OPTIONS, f"option {key!r} must be a string path, got {value!r}")
    return check_path_shape(value, f"option {key!r}")


def _options_text(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= const.MAX_GROUP_CHARS:
        raise RequestError(
            ErrorCode.BAD_OPTIONS,
            f"option {key!r} must be 1..{const.MAX_GROUP_CHARS} characters, got {value!r}",
        )
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_options(text: str) -> GenerateOptions:
    """Parse and validate the options JSON of a `generate` request ("" means all defaults)."""
    if len(text.encode("utf-8", "surrogatepass")) > const.MAX_OPTIONS_JSON_BYTES:
        raise RequestError(
            ErrorCode.BAD_OPTIONS, f"options JSON is longer than {const.MAX_OPTIONS_JSON_BYTES} bytes"
        )
    if not text.strip():
        return GenerateOptions()
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise RequestError(ErrorCode.BAD_OPTIONS, f"options are not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RequestError(ErrorCode.BAD_OPTIONS, "options must be a JSON object")
    guidance = _options_number(obj, "guidance")
    if guidance is not None and not 0.0 <= guidance <= const.MAX_GUIDANCE:
        raise RequestError(ErrorCode.BAD_OPTIONS, f"option 'guidance' must be in [0, {const.MAX_GUIDANCE}]")
    seed = _options_int(obj, "seed")
    if seed is not None and not 0 <= seed <= const.MAX_SEED:
        raise RequestError(ErrorCode.BAD_OPTIONS, "option 'seed' must be in [0, 2**63 - 1]")
    rate = _options_int(obj, "sample_rate")
    if rate is not None and not const.MIN_SAMPLE_RATE_HZ <= rate <= const.MAX_SAMPLE_RATE_HZ:
        raise RequestError(
            ErrorCode.BAD_OPTIONS,
            f"option 'sample_rate' must be in [{const.MIN_SAMPLE_RATE_HZ}, {const.MAX_SAMPLE_RATE_HZ}] Hz",
        )
    use_cache = obj.get("cache", True)
    if not isinstance(use_cache, bool):
        raise RequestError(ErrorCode.BAD_OPTIONS, f"option 'cache' must be true or false, got {use_cache!r}")
    overwrite = obj.get("overwrite", False)
    if not isinstance(overwrite, bool):
        raise RequestError(
            ErrorCode.BAD_OPTIONS, f"option 'overwrite' must be true or false, got {overwrite!r}"
        )
    output = _options_path(obj, "output")
    output_dir = _options_path(obj, "output_dir")
    direction_curve = _options_path(obj, "direction_curve")
    group, group_label = _options_text(obj, "group"), _options_text(obj, "group_label")
    group_total = _options_int(obj, "group_total")
    if group_total is not None and not 0 <= group_total <= _INT32_MAX:
        raise RequestError(ErrorCode.BAD_OPTIONS, f"option 'group_total' must be in [0, {_INT32_MAX}]")
    if output is not None and output_dir is not None:
        raise RequestError(ErrorCode.BAD_OPTIONS, "give either option 'output' or 'output_dir', not both")
    renderer = obj.get("preview_renderer", PREVIEW_RENDERERS[0])
    if renderer not in PREVIEW_RENDERERS:  # the engine's option, refused here before the job is queued
        raise RequestError(
            ErrorCode.BAD_OPTIONS,
            f"option 'preview_renderer' must be {' or '.join(PREVIEW_RENDERERS)}, got {renderer!r}",
        )
    equirect = obj.get("equirect", False)  # the engine's 360° options, refused here before queueing too
    if not isinstance(equirect, bool):
        raise RequestError(
            ErrorCode.BAD_OPTIONS, f"option 'equirect' must be true or false, got {equirect!r}"
        )
    if "look" in obj and obj["look"] not in LOOK_MODES:
        raise RequestError(
            ErrorCode.BAD_OPTIONS, f"option 'look' must be {' or '.join(LOOK_MODES)}, got {obj['look']!r}"
        )
    bad = _unencodable_at(json.dumps(obj, ensure_ascii=False))
    if bad is not None:  # JSON escapes such as "\ud800" decode to text no file or reply can hold
        raise RequestError(
            ErrorCode.BAD_OPTIONS, "options hold text that is not valid Unicode (unpaired surrogate)"
        )
    known = {
        "guidance",
        "seed",
        "sample_rate",
        "direction_curve",
        "output",
        "output_dir",
        "cache",
        "overwrite",
        "group",
        "group_label",
        "group_total",
    }
    return GenerateOptions(
        guidance=const.DEFAULT_GUIDANCE if guidance is None else guidance,
        seed=seed,
        sample_rate=const.DEFAULT_SAMPLE_RATE_HZ if rate is None else rate,
        direction_curve=direction_curve,
        output=output,
        output_dir=output_dir,
        use_cache=use_cache,
        overwrite=overwrite,
        group=group,
        group_label=group_label,
        group_total=group_total,
        extra={k: v for k, v in obj.items() if k not in known},
    )


# ------------------------------------------------------------------------------------------------
# decoding


def _decode_generate(args: Sequence[Any]) -> Generate:
    job_id = check_job_id(_get_str(args, 0, "job_id"), allow_empty=True)
    media = check_path_shape(_get_str(args, 1, "media"), "media")
    start = _get_number(args, 2, "start")
    end = _get_number(args, 3, "end", nil_ok=True)
    yaw = _get_number(args, 4, "yaw")
    pitch = _get_number(args, 5, "pitch")
    options = parse_options(_get_str(args, 6, "options_json"))
    reply_port = _get_reply_port(args, 7)
    assert start is not None and yaw is not None and pitch is not None  # nil_ok only for end
    if start < 0:
        raise RequestError(ErrorCode.BAD_RANGE, f"start must be >= 0 s, got {start}")
    if end is not None and end < 0:
        end = None
    if end is not None and end <= start:
        raise RequestError(ErrorCode.BAD_RANGE, f"end ({end} s) must be after start ({start} s)")
    if abs(yaw) > const.MAX_YAW_DEG:
        raise RequestError(
            ErrorCode.BAD_DIRECTION, f"yaw must be within ±{const.MAX_YAW_DEG:g} degrees, got {yaw}"
        )
    if abs(pitch) > const.MAX_PITCH_DEG:
        raise RequestError(
            ErrorCode.BAD_DIRECTION, f"pitch must be within ±{const.MAX_PITCH_DEG:g} degrees, got {pitch}"
        )
    return Generate(
        job_id=job_id,
        media=media,
        start=start,
        end=end,
        yaw=wrap_yaw(yaw),
        pitch=pitch,
        options=options,
        reply_port=reply_port,
        token=_get_token(args, 8),
    )


def _decode_job_request(address: str, args: Sequence[Any]) -> Cancel | Status:
    job_id = check_job_id(_get_str(args, 0, "job_id"))
    cls = Cancel if address == CANCEL else Status
    return cls(job_id=job_id, reply_port=_get_reply_port(args, 1), token=_get_token(args, 2))


def decode_request(address: str, args: Sequence[Any]) -> Request:
    """Turn one OSC message (address + python-osc argument values) into a typed request.

    Raises:
        RequestError: with a specific code (unknown_address, bad_arity, bad_type, bad_value, bad_id,
            bad_options, bad_range, bad_direction, bad_path).
    """
    arity = _REQUEST_ARITY.get(address)
    if arity is None:
        raise RequestError(ErrorCode.UNKNOWN_ADDRESS, f"unknown address {address[:200]!r}")
    if len(args) not in (arity, arity + 1):
        raise RequestError(
            ErrorCode.BAD_ARITY, f"{address} takes {arity} arguments (+1 token), got {len(args)}"
        )
    if address == PING:
        version = _get_int(args, 0, "protocol_version")
        return Ping(protocol_version=version, reply_port=_get_reply_port(args, 1), token=_get_token(args, 2))
    if address == GENERATE:
        return _decode_generate(args)
    return _decode_job_request(address, args)


def _salvage(address: str, args: Sequence[Any], error: RequestError) -> Rejected:
    """Keep the routing fields (job id, reply port, token) of a request that failed to decode."""
    arity = _REQUEST_ARITY.get(address)
    job_id = ""
    reply_port = 0
    token = ""
    if arity is not None:
        if address in _JOB_ADDRESSES and args and isinstance(args[0], str) and _JOB_ID_RE.fullmatch(args[0]):
            job_id = args[0]
        if len(args) in (arity, arity + 1):
            port = args[arity - 1]
            if isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535:
                reply_port = port
            if len(args) == arity + 1 and isinstance(args[arity], str):
                token = args[arity]
    return Rejected(error.with_job_id(job_id), reply_port=reply_port, token=token)


def _osc_type_tags(message: bytes) -> str:
    """The type tags of a message (without the comma), or "" where python-osc will refuse it anyway."""
    end = message.find(b"\x00")
    start = (end // 4 + 1) * 4  # the address, its NUL and padding to a multiple of 4
    if end < 0 or message[start : start + 1] != b",":
        return ""
    tags_end = message.find(b"\x00", start)
    return "" if tags_end < 0 else message[start + 1 : tags_end].decode("latin-1")


def _check_layout(data: bytes) -> None:
    """Refuse, as `malformed`, what python-osc would not refuse but skip with a warning on the root logger
    (an unknown type tag, a bundle element that is neither a message nor a bundle) or loop on forever (a
    bundle element of negative size). Walks nested bundles without recursion.
    """
    pending = [data]
    while pending:
        packet = pending.pop()
        if packet.startswith(_BUNDLE_PREFIX):
            index = _BUNDLE_HEADER_BYTES
            while index < len(packet):
                start = index + 4
                size = struct.unpack_from(">i", packet, index)[0] if start <= len(packet) else -1
                if not 0 <= size <= len(packet) - start:
                    raise RequestError(
                        ErrorCode.MALFORMED, f"bundle element at byte {index} has no valid size"
                    )
                element = packet[start : start + size]
                if not (element.startswith(_BUNDLE_PREFIX) or element.startswith(b"/")):
                    raise RequestError(
                        ErrorCode.MALFORMED,
                        f"bundle element at byte {index} is neither a message nor a bundle",
                    )
                pending.append(element)
                index = start + size
        elif packet.startswith(b"/"):
            unknown = sorted(set(_osc_type_tags(packet)) - _READABLE_TYPE_TAGS)
            if unknown:
                raise RequestError(ErrorCode.MALFORMED, f"unsupported OSC type tags {''.join(unknown)!r}")


def parse_packet(data: bytes, max_bytes: int) -> list[Request | Rejected | StrayReply]:
    """Decode one datagram (or TCP frame) holding an OSC message or bundle into requests.

    Never raises: anything wrong becomes a `Rejected` with a specific code, a reply a `StrayReply`.
    Bundle time tags are ignored (requests run as soon as they are queued).

    Args:
        data: the raw packet.
        max_bytes: the transport's size limit.

    Returns:
        One entry per message in the packet, in order.
    """
    if len(data) > max_bytes:
        error = RequestError(
            ErrorCode.TOO_LARGE, f"packet of {len(data)} bytes exceeds the {max_bytes}-byte limit"
        )
        return [Rejected(error)]
    try:
        _check_layout(data)
        messages = [timed.message for timed in osc_packet.OscPacket(data).messages]
    except RequestError as refused:
        return [Rejected(refused)]
    except _PARSE_FAILURES as exc:
        return [
            Rejected(
                RequestError(ErrorCode.MALFORMED, f"not an OSC message or bundle ({type(exc).__name__})")
            )
        ]
    if not messages:
        return [Rejected(RequestError(ErrorCode.MALFORMED, "empty OSC bundle"))]
    if len(messages) > const.MAX_MESSAGES_PER_PACKET:
        error = RequestError(
            ErrorCode.TOO_LARGE,
            f"bundle holds {len(messages)} messages, limit {const.MAX_MESSAGES_PER_PACKET}",
        )
        return [Rejected(error)]
    out: list[Request | Rejected | StrayReply] = []
    for message in messages:
        address, args = message.address, list(message.params)
        if address in REPLY_ADDRESSES:
            out.append(StrayReply(address))
            continue
        try:
            out.append(decode_request(address, args))
        except RequestError as error:
            out.append(_salvage(address, args, error))
    return out


def decode_reply(data: bytes) -> Reply:
    """Decode one reply datagram (client side).

    Raises:
        RequestError: malformed, unknown_address, bad_arity or bad_type.
    """
    try:
        message = osc_message.OscMessage(data)
        address, args = message.address, list(message.params)
    except _PARSE_FAILURES as exc:
        raise RequestError(ErrorCode.MALFORMED, f"not an OSC message ({type(exc).__name__})") from None
    spec = _REPLY_TYPES.get(address)
    if spec is None:
        raise RequestError(ErrorCode.UNKNOWN_ADDRESS, f"unknown reply address {address[:200]!r}")
    cls, fields = spec
    if len(args) != len(fields):
        raise RequestError(ErrorCode.BAD_ARITY, f"{address} carries {len(fields)} arguments, got {len(args)}")
    values: list[Any] = []
    for i, (name, tag) in enumerate(fields):
        if tag == "s":
            values.append(_get_str(args, i, name))
        elif tag == "i":
            values.append(_get_int(args, i, name))
        else:
            values.append(_get_number(args, i, name))
    if cls is Done:
        values[3] = bool(values[3])
    reply: Reply = cls(*values)
    return reply


# ------------------------------------------------------------------------------------------------
# encoding

_REPLY_TYPES: dict[str, tuple[type, tuple[tuple[str, str], ...]]] = {
    PONG: (
        Pong,
        (("protocol_version", "i"), ("model_id", "s"), ("device", "s"), ("queued", "i"), ("running", "i")),
    ),
    ACCEPTED: (Accepted, (("job_id", "s"), ("queue_ahead", "i"))),
    PROGRESS: (Progress, (("job_id", "s"), ("fraction", "f"), ("stage", "s"))),
    DONE: (Done, (("job_id", "s"), ("output", "s"), ("metadata", "s"), ("cached", "i"))),
    ERROR: (Error, (("job_id", "s"), ("code", "s"), ("message", "s"))),
}
_ADDRESS_OF_REPLY = {cls: address for address, (cls, _) in _REPLY_TYPES.items()}


def _build(address: str, typed_args: Sequence[tuple[Any, str]]) -> bytes:
    builder = OscMessageBuilder(address)
    for value, tag in typed_args:
        builder.add_arg(value, tag)
    return builder.build().dgram


def _clip_int32(value: int) -> int:
    return max(-_INT32_MAX - 1, min(_INT32_MAX, value))


def encode_request(request: Request) -> bytes:
    """Build the datagram for a request; the token argument is added only when non-empty."""
    token = [(request.token, "s")] if request.token else []
    if isinstance(request, Ping):
        return _build(PING, [(request.protocol_version, "i"), (request.reply_port, "i"), *token])
    if isinstance(request, Generate):
        end = -1.0 if request.end is None else request.end
        args = [
            (request.job_id, "s"),
            (request.media, "s"),
            (request.start, "d"),
            (end, "d"),
            (request.yaw, "f"),
            (request.pitch, "f"),
            (request.options.to_json(), "s"),
            (request.reply_port, "i"),
        ]
        return _build(GENERATE, [*args, *token])
    address = CANCEL if isinstance(request, Cancel) else STATUS
    return _build(address, [(request.job_id, "s"), (request.reply_port, "i"), *token])


def encode_reply(reply: Reply) -> bytes:
    """Build the datagram for a reply; error messages are cut to MAX_ERROR_MESSAGE_CHARS.

    Raises:
        ValueError: if the datagram would exceed MAX_REPLY_BYTES (python-osc clients read 4096).
    """
    address = _ADDRESS_OF_REPLY[type(reply)]
    _, fields = _REPLY_TYPES[address]
    values: list[Any] = [getattr(reply, name) for name, _ in fields]
    if isinstance(reply, Error):
        values[2] = values[2][: const.MAX_ERROR_MESSAGE_CHARS]
    if isinstance(reply, Done):
        values[3] = int(values[3])
    typed = []
    for value, (_, tag) in zip(values, fields, strict=True):
        typed.append((_clip_int32(value) if tag == "i" else value, tag))
    data = _build(address, typed)
    if len(data) > const.MAX_REPLY_BYTES:
        raise ValueError(f"{address} reply of {len(data)} bytes exceeds {const.MAX_REPLY_BYTES}")
    return data
