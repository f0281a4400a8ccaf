"""How a clip of any length is cut into the model's 5-s windows.

The encoder sees at most 20 CLIP frames (5 s) and the decoder at most 430 code frames, so a longer clip
is generated window by window. Windows start every 4 s (16 CLIP frames) and overlap the previous one by
about 1 s: the overlapping code frames, already generated, are fed to the decoder as a prompt, so the
new window continues the same sound instead of starting afresh, and the joined code stream is decoded
in one piece (no crossfade, no level jump).

Code frames are placed on the codec's true clock (44100 / 512 = 86.13 per s), so window k starts at
code frame round(4 k * 86.13): over a long clip the audio stays in sync with the picture instead of
drifting by the official integer rate's 6 ms per 4 s. Inside a window the model keeps its own
(training) alignment of 20 frames to 430 code frames.

Worked example, a 12-s clip: 48 CLIP frames, 1034 code frames:

    window  CLIP frames   code frames    prompt (from the previous window)
    0       0..19         0..429         -
    1       16..35        345..774       345..429 (85 frames)
    2       32..47        689..1033      689..774 (86 frames)
"""

from __future__ import annotations

from dataclasses import dataclass

from visage.model.network.sequence import SequenceConfig

HOP_SECONDS = 4  # window start spacing; the overlap is the window length (5 s) minus this


@dataclass(frozen=True)
class Window:
    """One generation window of a clip.

    Attributes:
        clip_start, clip_stop: CLIP frames [start, stop) of the clip this window encodes.
        code_start, code_stop: code frames [start, stop) of the clip this window produces.
        prompt: code frames at the window's start that continue the previous window (forced).
        repeat_last: extra frames filled by repeating the last one (the official 431st frame).
    """

    clip_start: int
    clip_stop: int
    code_start: int
    code_stop: int
    prompt: int = 0
    repeat_last: int = 0

    @property
    def clip_frames(self) -> int:
        return self.clip_stop - self.clip_start

    @property
    def generated_frames(self) -> int:
        """Code frames the decoder produces for this window (prompt included)."""
        return self.code_stop - self.code_start - self.repeat_last


def plan_windows(start: float, end: float, seq: SequenceConfig) -> list[Window]:
    """Windows covering the media range [start, end), producing exactly enough code frames for its audio."""
    clip_frames = seq.clip_frames(start, end)
    code_frames = seq.codec_frames_for_samples(max(1, round((end - start) * seq.sample_rate)))
    max_frames = seq.generated_codec_frames(seq.max_clip_frames)  # 430 per window
    if clip_frames <= seq.max_clip_frames and code_frames <= max_frames + 1:
        # One window, as the official model: a full 5 s is 430 frames plus the last one repeated.
        generated = min(code_frames, max_frames)
        return [Window(0, clip_frames, 0, code_frames, 0, code_frames - generated)]
    hop_clip = HOP_SECONDS * seq.clip_frame_rate
    windows: list[Window] = []
    k = 0
    while not windows or windows[-1].code_stop < code_frames:
        code_start = round(HOP_SECONDS * k * seq.true_codec_frame_rate)
        clip_start = hop_clip * k
        prompt = windows[-1].code_stop - code_start if windows else 0
        windows.append(
            Window(
                clip_start,
                min(clip_start + seq.max_clip_frames, clip_frames),
                code_start,
                min(code_start + max_frames, code_frames),
                prompt,
            )
        )
        k += 1
    return windows
