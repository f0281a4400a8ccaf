"""Reading YouTube's binaural decoder filters: the four WAV files shipped with the package, or a folder.

Why apart from ``youtube_binaural``: that module is pure maths; this one touches files. The shipped
copies (``data/google_spatial_audio/``, Apache-2.0 with their LICENSE and NOTICE) are the
``binaural_decoder_{0,1,2,3}.wav`` of google/spatial-media; ``--youtube-filters DIR`` points at another
folder holding files of the same names (e.g. a newer release), read the same way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import soundfile as sf

from .ambisonics import FOA_CHANNELS
from .binaural import BinauralError

SHIPPED_FILTERS = Path(__file__).parent / "data" / "google_spatial_audio"
FILTER_NAMES = tuple(f"binaural_decoder_{channel}.wav" for channel in range(FOA_CHANNELS))
DESCRIPTION = "YouTube / Google VR Audio symmetric first-order binaural decoder (SADIE KU100)"


class ShFilters(NamedTuple):
    """The left ear's SH-domain filters as read, one per AmbiX channel."""

    filters: npt.NDArray[np.float64]  # [4, K] W, Y, Z, X
    sample_rate: int
    folder: Path


def read_youtube_filters(folder: str | os.PathLike[str] | None = None) -> ShFilters:
    """Read ``binaural_decoder_{0..3}.wav`` from ``folder`` (default: the copies shipped with visage).

    Raises:
        BinauralError: a file is missing, unreadable, not mono, or the four differ in rate or length;
            the message names the file.
    """
    where = SHIPPED_FILTERS if folder is None else Path(folder)
    if not where.is_dir():
        raise BinauralError(f"{where}: no such folder of YouTube decoder filters ({', '.join(FILTER_NAMES)})")
    filters: list[npt.NDArray[np.float64]] = []
    rates: set[int] = set()
    for name in FILTER_NAMES:
        path = where / name
        if not path.is_file():
            raise BinauralError(f"{path}: missing; a YouTube decoder folder holds {', '.join(FILTER_NAMES)}")
        try:
            samples, rate = sf.read(str(path), dtype="float64", always_2d=True)  # [K, ch]
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise BinauralError(f"{path}: not a readable WAV file ({exc})") from None
        if samples.shape[1] != 1 or samples.shape[0] == 0:
            raise BinauralError(f"{path}: expected one channel of filter taps, got shape {samples.shape}")
        filters.append(samples[:, 0])
        rates.add(int(rate))
    lengths = {len(f) for f in filters}
    if len(rates) != 1 or len(lengths) != 1:
        raise BinauralError(
            f"{where}: the four filters must share one rate and length, got rates {sorted(rates)} "
            f"and lengths {sorted(lengths)}"
        )
    return ShFilters(np.stack(filters), rates.pop(), where)
