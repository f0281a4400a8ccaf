"""SLIP framing of an OSC 1.1 byte stream (TCP), pure and incremental.

python-osc's own TCP handler assumes a frame never straddles two ``recv`` calls unless the buffer ends
with END, and has no size limit; this decoder keeps partial frames across ``feed`` calls and discards
an oversized frame up to its closing END (reporting it) so the connection stays usable.
"""

from __future__ import annotations

from pythonosc import slip

from .errors import ErrorCode, RequestError

_END = slip.END[0]


def encode_frame(packet: bytes) -> bytes:
    """SLIP-encode one OSC packet (END + escaped bytes + END)."""
    return slip.encode(packet)


class SlipDecoder:
    """Split a SLIP byte stream into packets.

    Args:
        max_frame_bytes: largest accepted packet (encoded size); larger ones become a too_large error.
    """

    def __init__(self, max_frame_bytes: int) -> None:
        self._max = max_frame_bytes
        self._buffer = bytearray()
        self._oversize = 0  # bytes dropped from the current frame, 0 if it is within the limit

    def feed(self, data: bytes) -> list[bytes | RequestError]:
        """Consume ``data``; return the packets (or framing errors) completed by it, in order."""
        out: list[bytes | RequestError] = []
        start = 0
        while True:
            end = data.find(_END, start)
            chunk = data[start:] if end < 0 else data[start:end]
            self._append(chunk)
            if end < 0:
                return out
            self._finish_frame(out)
            start = end + 1

    def _append(self, chunk: bytes) -> None:
        if self._oversize:
            self._oversize += len(chunk)
        elif len(self._buffer) + len(chunk) > self._max:
            self._oversize = len(self._buffer) + len(chunk)
            self._buffer.clear()
        else:
            self._buffer += chunk

    def _finish_frame(self, out: list[bytes | RequestError]) -> None:
        if self._oversize:
            out.append(
                RequestError(
                    ErrorCode.TOO_LARGE,
                    f"TCP frame of {self._oversize} bytes exceeds the {self._max}-byte limit",
                )
            )
            self._oversize = 0
            return
        if not self._buffer:
            return  # END END between frames, or a leading END
        frame = bytes(self._buffer)
        self._buffer.clear()
        try:
            out.append(slip.decode(frame))
        except slip.ProtocolError:
            out.append(RequestError(ErrorCode.MALFORMED, "invalid SLIP escape sequence"))
