"""YouTube's first-order binaural decoder: four SH-domain filters and the symmetric right ear.

Why: a result published as a 360° video is heard through the decoder YouTube (Google VR Audio,
Omnitone) uses, whose SADIE KU100 HRTFs colour and place sound differently from the project's
spherical head. Rendering through the same filters lets a user hear what viewers will hear.

Signal flow (google/spatial-media ``spatial-audio/`` README, "symmetric ambisonic binaural
decoder"): filter ``n`` belongs to AmbiX channel ``n`` (ACN order W, Y, Z, X, SN3D, as the ambiX
preset ``cube.config`` beside them declares), and

    left  = Σ_n  ch_n ∗ h_n
    right = Σ_n  s_n · ch_n ∗ h_n,   s = (1, −1, 1, 1)

because the decoder is left-right symmetric: the right ear of a source at azimuth ``az`` is the left
ear of the source at ``−az``, which only flips the sign of the one left-right-antisymmetric
first-order channel, Y. The filters are 256 taps at 48 kHz; they already hold the dual-band
(shelf-filtered) cube decode, so nothing else is applied. No latency is removed: the output is what
YouTube's convolver plays, the filters' ~0.5 ms onset included.

Pure: filters in, arrays out (reading the shipped files is ``youtube_filters``). The result is a
``BinauralDecoder``, so ``render_binaural`` renders it, rotated for any listener direction.

Shapes: C = 4 ambisonic channels, K filter taps.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .ambisonics import FOA_CHANNELS, Acn
from .binaural import LEFT, RIGHT, BinauralDecoder, BinauralError

YOUTUBE_FILTER_RATE = 48000  # Hz, the rate the filters were designed at
# The right ear's sign per ACN channel: only Y (left minus right) changes sign under a left-right mirror.
RIGHT_EAR_SIGNS = np.array([-1.0 if channel == Acn.Y else 1.0 for channel in Acn])


def symmetric_decoder(sh_filters: npt.ArrayLike, sample_rate: int) -> BinauralDecoder:
    """The two-ear decoder of a left-ear SH filter set, the right ear mirrored.

    Args:
        sh_filters: ``[4, K]`` the left ear's filter of each AmbiX channel (W, Y, Z, X).
        sample_rate: of the filters, in Hz (the audio must have this rate).

    Returns:
        ``BinauralDecoder`` with ``filters[c, LEFT] = h_c`` and ``filters[c, RIGHT] = s_c · h_c``,
        latency 0.

    Raises:
        BinauralError: not four finite filters of at least one tap, or a rate that is not positive.
    """
    filters = np.asarray(sh_filters, dtype=np.float64)
    if filters.ndim != 2 or filters.shape[0] != FOA_CHANNELS or filters.shape[1] == 0:
        raise BinauralError(f"expected SH-domain filters [4, K] (W, Y, Z, X), got shape {filters.shape}")
    if not np.isfinite(filters).all():
        raise BinauralError("SH-domain filters contain NaN or infinite values")
    if sample_rate <= 0:
        raise BinauralError(f"the filters' sample rate must be positive, got {sample_rate}")
    ears = np.empty((FOA_CHANNELS, 2, filters.shape[1]))
    ears[:, LEFT] = filters
    ears[:, RIGHT] = filters * RIGHT_EAR_SIGNS[:, None]
    return BinauralDecoder(ears, sample_rate, 0)
