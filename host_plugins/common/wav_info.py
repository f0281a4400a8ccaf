"""Channel count, rate and length of a WAV file from its header (plain and WAVE_FORMAT_EXTENSIBLE).

The standard library's ``wave`` reads WAVE_FORMAT_EXTENSIBLE only from Python 3.12 on, and the daemon
writes extensible 24-bit files; hosts run whatever Python they embed, so this reads the RIFF chunks.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple


class WavError(ValueError):
    """Not a WAV file this reader understands."""


class WavInfo(NamedTuple):
    channels: int
    sample_rate: int
    frames: int

    @property
    def duration_s(self) -> Fraction:
        return Fraction(self.frames, self.sample_rate)


def read_wav_info(path: str | Path) -> WavInfo:
    """Read the ``fmt `` and ``data`` chunk headers of a RIFF/WAVE file.

    Raises:
        WavError: not RIFF/WAVE, or no fmt/data chunk.
    """
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise WavError(f"{path}: not a RIFF/WAVE file")
        fmt: tuple[int, int, int] | None = None  # channels, rate, block_align
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                raise WavError(f"{path}: no data chunk")
            chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"fmt ":
                body = handle.read(size + (size & 1))
                if len(body) < 16:
                    raise WavError(f"{path}: fmt chunk too short")
                _, channels, rate, _, block_align = struct.unpack("<HHIIH", body[:14])
                fmt = (channels, rate, block_align)
            elif chunk_id == b"data":
                if fmt is None or fmt[2] == 0:
                    raise WavError(f"{path}: data before a usable fmt chunk")
                return WavInfo(fmt[0], fmt[1], size // fmt[2])
            else:
                handle.seek(size + (size & 1), 1)
