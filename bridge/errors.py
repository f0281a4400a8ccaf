"""The bridge's error vocabulary: one code per way a request or a job can fail."""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    """Codes carried by `/visage/error` replies (the string value is what goes on the wire)."""

    # the datagram itself
    MALFORMED = "malformed"  # not an OSC message or bundle
    TOO_LARGE = "too_large"  # over the transport's size limit
    UNKNOWN_ADDRESS = "unknown_address"
    BAD_ARITY = "bad_arity"  # wrong number of arguments
    BAD_TYPE = "bad_type"  # an argument of the wrong OSC type
    BAD_VALUE = "bad_value"  # right type, impossible value (NaN, port 70000, reply_port = the daemon's own)
    # request semantics
    UNAUTHORIZED = "unauthorized"  # token missing or wrong
    BAD_ID = "bad_id"
    BAD_OPTIONS = "bad_options"  # options JSON unparsable, not an object, or a known key of the wrong type
    BAD_RANGE = "bad_range"
    BAD_DIRECTION = "bad_direction"
    BAD_PATH = "bad_path"  # not absolute, too long, NUL byte, not encodable as UTF-8
    BAD_OUTPUT = "bad_output"  # output not .wav, folder missing, read-only or full, is a folder, is an input
    OUTPUT_EXISTS = "output_exists"  # a new job names an existing file without option overwrite
    PATH_NOT_ALLOWED = "path_not_allowed"  # outside every --allow-dir
    MEDIA_NOT_FOUND = "media_not_found"
    DUPLICATE_ID = "duplicate_id"  # id reused with different parameters
    UNKNOWN_JOB = "unknown_job"
    QUEUE_FULL = "queue_full"
    # job outcomes
    CANCELLED = "cancelled"
    ENGINE_ERROR = "engine_error"  # the engine raised or returned nothing usable
    UNSUPPORTED_VIDEO = "unsupported_video"  # cubemap/stereo/tilted 360° video, look on a flat video
    INTERNAL = "internal"


class RequestError(Exception):
    """A request or job failed with a code and a human-readable message.

    Args:
        code: what went wrong, from `ErrorCode`.
        message: one sentence for the user (names the offending field or path).
        job_id: the job or request it concerns, "" when unknown.
    """

    def __init__(self, code: ErrorCode, message: str, job_id: str = "") -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message
        self.job_id = job_id

    def with_job_id(self, job_id: str) -> RequestError:
        """Return the same error attributed to ``job_id``."""
        return RequestError(self.code, self.message, job_id)
