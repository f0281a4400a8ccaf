"""Every sequence length of the model, derived from rates in one place.

The official model ties three clocks together: CLIP frames at 4 per second, DAC code frames at
44100 / 512 = 86.13 per second (which the official code truncates to the integer 86), and audio samples
at 44.1 kHz. Mixing the true rate and the integer one is where off-by-one errors come from, so no other
module computes a length: they ask a :class:`SequenceConfig`.

Worked example for the released model and a 5-s clip: 20 CLIP frames -> 430 code frames generated
(int(20 / 4 * 86)) -> 431 code frames returned (ceil(int(5 * 44100) / 512), the last generated frame
repeated) -> 431 * 512 = 220672 samples after decoding, of which the first 220500 are the 5 s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

# Official DAC hop size per sample rate (dac_downsample_rate in the official config).
_DAC_HOP_LENGTH = {44100: 512}


_MICROSECONDS = 1_000_000  # ffmpeg's time grid: input seconds are rounded to it before counting frames


def clip_frame_count(start: float, end: float, fps: int | Fraction = 4) -> int:
    """CLIP frames sampled from [start, end): one at each ``start + k / fps`` strictly before ``end``.

    That is ``ceil((end - start) * fps)`` with both ends first rounded to microseconds, so a 5-s clip
    gives the official 20 frames, 4.9999999 s too, and 5.1 s gives 21. The only frame-count rule: video
    decoding and window planning both use it.
    """
    span = Fraction(round(end * _MICROSECONDS), _MICROSECONDS) - Fraction(
        round(start * _MICROSECONDS), _MICROSECONDS
    )
    return max(0, math.ceil(span * Fraction(fps)))


@dataclass(frozen=True)
class SequenceConfig:
    """Rates of the three clocks; all lengths are derived.

    Attributes:
        clip_frame_rate: CLIP frames per second fed to the encoder (official 4).
        sample_rate: codec sample rate in Hz (DAC 44.1 kHz).
        max_clip_frames: rows of the encoder position table (official 20, i.e. 5-s windows).
    """

    clip_frame_rate: int = 4
    sample_rate: int = 44100
    max_clip_frames: int = 20

    def __post_init__(self) -> None:
        if self.sample_rate not in _DAC_HOP_LENGTH:
            supported = ", ".join(str(r) for r in _DAC_HOP_LENGTH)
            raise ValueError(f"sample_rate {self.sample_rate} has no DAC model; supported: {supported}")
        if self.clip_frame_rate <= 0 or self.max_clip_frames <= 0:
            raise ValueError("clip_frame_rate and max_clip_frames must be positive")

    @property
    def hop_length(self) -> int:
        """Audio samples per code frame (512 at 44.1 kHz)."""
        return _DAC_HOP_LENGTH[self.sample_rate]

    @property
    def codec_frame_rate(self) -> int:
        """Code frames per second as the official integer (86, not 86.13)."""
        return self.sample_rate // self.hop_length

    @property
    def true_codec_frame_rate(self) -> float:
        """Code frames per second of the codec itself (86.1328...)."""
        return self.sample_rate / self.hop_length

    @property
    def max_window_seconds(self) -> float:
        """Longest clip one encoder pass can see (5 s for the released model)."""
        return self.max_clip_frames / self.clip_frame_rate

    def clip_frames(self, start: float, end: float) -> int:
        """CLIP frames of the media range [start, end) (see :func:`clip_frame_count`)."""
        if not end > start:
            raise ValueError(f"the range [{start}, {end}) s is empty")
        return clip_frame_count(start, end, self.clip_frame_rate)

    def generated_codec_frames(self, clip_frames: int) -> int:
        """Code frames the model generates for ``clip_frames`` encoder frames (official int(F/fps*86))."""
        return (clip_frames * self.codec_frame_rate) // self.clip_frame_rate

    def output_codec_frames(self, clip_frames: int) -> int:
        """Code frames the official generation returns: the audio length rounded up to whole frames.

        The official code pads the generated frames to ceil(int(F / fps * sr) / hop) by repeating the
        last one (430 -> 431 for 20 frames).
        """
        samples = (clip_frames * self.sample_rate) // self.clip_frame_rate
        return -(-samples // self.hop_length)

    def codec_frames_for_samples(self, samples: int) -> int:
        """Code frames needed to cover ``samples`` audio samples (ceil, as DAC's encoder pads)."""
        return -(-samples // self.hop_length)

    def samples(self, codec_frames: int) -> int:
        """Audio samples decoded from ``codec_frames`` code frames."""
        return codec_frames * self.hop_length

    def seconds_to_samples(self, seconds: float) -> int:
        """Audio samples in ``seconds`` at the codec rate, rounded to the nearest sample."""
        return round(seconds * self.sample_rate)


RELEASED_SEQUENCE = SequenceConfig()
