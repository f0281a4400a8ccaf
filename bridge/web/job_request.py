"""The page's job request, pure: the JSON body of ``POST /api/jobs`` -> the OSC `Generate` request.

Validation is the OSC protocol's own (`osc_protocol.decode_request`, `parse_options`; paths afterwards
by `Endpoint.generate`): the same codes and messages, with the body field each error concerns. Only
the JSON shape (an object, known keys, the type of each value) is checked here first.

Body keys: ``media`` (absolute path), ``start_s``, ``end_s`` (null: to the end), ``yaw_deg``,
``pitch_deg``, ``curve`` (a direction-curve file), ``seed``, ``guidance_scale``, ``guidance_mode``,
``output`` (a ``.wav`` file or an existing folder; null: the daemon's outputs folder), ``preview``
(write the binaural preview; default true).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ..cli_arguments import GUIDANCE_MODES
from ..errors import ErrorCode, RequestError
from ..osc_protocol import GENERATE, Generate, decode_request
from .web_errors import WebError

_NUMBER_FIELDS = ("start_s", "end_s", "yaw_deg", "pitch_deg", "guidance_scale")
_TEXT_FIELDS = ("media", "curve", "guidance_mode", "output")
FIELDS = frozenset({*_NUMBER_FIELDS, *_TEXT_FIELDS, "seed", "preview"})
_NULLABLE = frozenset({"end_s", "curve", "seed", "guidance_scale", "guidance_mode", "output"})
_DEFAULTS: dict[str, Any] = {"start_s": 0.0, "yaw_deg": 0.0, "pitch_deg": 0.0, "preview": True}

# The OSC names in validation messages -> the body field ("option 'seed' must be ...", "yaw must be ...").
_FIELD_OF_NAME = {
    "start": "start_s",
    "end": "end_s",
    "yaw": "yaw_deg",
    "pitch": "pitch_deg",
    "media": "media",
    "direction_curve": "curve",
    "guidance": "guidance_scale",
    "seed": "seed",
    "output": "output",
    "output_dir": "output",
}
_NAME_AT_START = re.compile(r"(?:option '(?P<option>\w+)'|(?P<word>\w+))")
_OUTPUT_CODES = frozenset({ErrorCode.BAD_OUTPUT, ErrorCode.OUTPUT_EXISTS})


def field_of(error: RequestError) -> str | None:
    """The body field an OSC validation error concerns, read from the name its message starts with."""
    if error.code in _OUTPUT_CODES:
        return "output"
    found = _NAME_AT_START.match(error.message)
    name = None if found is None else found["option"] or found["word"]
    return _FIELD_OF_NAME.get(name or "")


def page_refusal(error: RequestError, output: Any) -> WebError:
    """A job refusal in the page's words: its code and field kept, the message about what the page offers.

    The page has one output field and no ``overwrite`` option: an existing output is to be renamed, and
    a name that is not a .wav is sent as a folder (``output_dir``), whose refusal would name that option.
    """
    message = error.message
    if error.code is ErrorCode.OUTPUT_EXISTS:
        message = f"{message.partition(';')[0]}; choose another output name, or leave it empty for a new file"
    elif message.startswith("output_dir "):
        if error.code is ErrorCode.BAD_OUTPUT:
            message = f"output {output!r} must be a .wav file name or an existing folder"
        else:
            message = "output " + message.removeprefix("output_dir ")
    return WebError(error.code.value, message, field_of(error))


def _kind(value: Any) -> str:
    return (
        "null"
        if value is None
        else {bool: "boolean", str: "string", list: "array", dict: "object"}.get(type(value), "number")
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_body(data: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a `WebError` (``malformed``) saying why not."""
    try:
        body = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WebError(ErrorCode.MALFORMED.value, f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise WebError(ErrorCode.MALFORMED.value, f"the body must be a JSON object, got {_kind(body)}")
    return body


def _checked(body: dict[str, Any], name: str) -> Any:
    value = body.get(name, _DEFAULTS.get(name))
    if value is None:
        if name in _NULLABLE:
            return None
        raise WebError(ErrorCode.BAD_TYPE.value, f"{name} is required", name)
    if name in _NUMBER_FIELDS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise WebError(ErrorCode.BAD_TYPE.value, f"{name} must be a number, got {_kind(value)}", name)
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise WebError(ErrorCode.BAD_VALUE.value, f"{name} must be a finite number, got {value!r}", name)
        return number
    if name in _TEXT_FIELDS and not isinstance(value, str):
        raise WebError(ErrorCode.BAD_TYPE.value, f"{name} must be a string, got {_kind(value)}", name)
    if name == "seed" and (isinstance(value, bool) or not isinstance(value, int)):
        raise WebError(ErrorCode.BAD_TYPE.value, f"seed must be an integer, got {_kind(value)}", name)
    if name == "preview" and not isinstance(value, bool):
        raise WebError(ErrorCode.BAD_TYPE.value, f"preview must be true or false, got {_kind(value)}", name)
    return value


def generate_request(body: dict[str, Any], job_id: str) -> Generate:
    """The `Generate` request a page's job body stands for.

    Raises:
        WebError: unknown key, wrong type, or any refusal of the OSC validation (its code and message).
    """
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise WebError(ErrorCode.BAD_OPTIONS.value, f"unknown field {unknown[0]!r}", unknown[0][:100])
    values = {name: _checked(body, name) for name in sorted(FIELDS)}
    mode = values["guidance_mode"]
    if mode is not None and mode not in GUIDANCE_MODES:
        message = f"guidance_mode must be one of {', '.join(GUIDANCE_MODES)}, got {mode[:80]!r}"
        raise WebError(ErrorCode.BAD_OPTIONS.value, message, "guidance_mode")
    options: dict[str, Any] = {}
    if values["guidance_scale"] is not None:
        options["guidance"] = values["guidance_scale"]
    if values["seed"] is not None:
        options["seed"] = values["seed"]
    if values["curve"] is not None:
        options["direction_curve"] = values["curve"]
    output = values["output"]
    if output is not None:
        options["output" if output.lower().endswith(".wav") else "output_dir"] = output
    if mode is not None and mode != "joint":  # as `visage fill` sends it: the default stays implicit
        options["guidance_mode"] = mode
    if values["preview"] is False:
        options["binaural_preview"] = False
    end = values["end_s"]
    args = [
        job_id,
        values["media"],
        values["start_s"],
        None if end is None else end,
        values["yaw_deg"],
        values["pitch_deg"],
        json.dumps(options, ensure_ascii=False),
        0,
    ]
    try:
        request = decode_request(GENERATE, args)
    except RequestError as error:
        raise WebError.of(error, field_of(error)) from None
    assert isinstance(request, Generate)
    return request
