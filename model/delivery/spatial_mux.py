"""Publishing: a video with its AmbiX track and the spatial audio box, ready for YouTube and VR players.

Why: a WAV next to a video is not something a player or YouTube recognises as spatial audio; a
single file with a 4-channel track marked by ``SA3D`` (ACN, SN3D, order 1, channel map 0-3) is
(``hosts_and_formats.md`` §6.2, Summary 18).

What is written, per container (the combinations this PyAV/FFmpeg build encodes and reads back,
``packaging.md`` §4):

=========  ==============  ==========================================================================
container  codec           audio track
=========  ==============  ==========================================================================
``.mov``   ``pcm``         24-bit PCM (``in24``), layout "ambisonic 1": no speaker (``chan``) labels.
                           Lossless; YouTube's recommended upload.
``.mov``   ``aac``         AAC-LC, 128 kb/s per channel, layout quad (AAC has no ambisonic layout).
``.mp4``   ``aac``         as above (the default for .mp4).
``.mp4``   ``opus``        Opus at 48 kHz, channel mapping family 2 (RFC 8486 ambisonics: each
                           channel coded alone, never as a stereo pair), 128 kb/s per channel.
=========  ==============  ==========================================================================

PCM in MP4 and Opus in MOV are refused (the first is not readable by the spatial-media tools, the
second is rejected by FFmpeg's MOV muxer). The video stream is copied packet for packet, never
re-encoded; other tracks of the input (its own audio, subtitles) are left out. ``movflags=faststart``
puts the index first, so web players can start before the download ends; the SA3D box is then
inserted by rewriting ``moov`` (``visage.model.files.sa3d``), shifting the chunk offsets.

Timeline policy: the audio's first sample sits at ``start_s`` on the video's timeline (default: the
range start recorded in the result's sidecar, else 0). The track always spans the whole video:
silence before ``start_s`` and after the audio's end. Audio that would run past the video's end by
more than one video frame is an error (it belongs to another clip or another range); up to one frame
is trimmed (ranges rounded to the codec's frames end a little late).

Optional head-locked stereo (e.g. music or narration that must not turn with the head) becomes
channels 5-6: the box then says ``head_locked_stereo`` and maps W, Y, Z, X, L, R to 0-5.

360° video stays 360°: the muxer drops the spherical-video boxes (FFmpeg writes ``st3d``/``sv3d`` only
with ``-strict unofficial``, never the V1 ``uuid`` box), so the source's own boxes are copied byte for
byte into the output's video track in the same ``moov`` rewrite as SA3D; a WebM/MKV ``Projection``
(+ ``StereoMode``) is translated into ``st3d`` + ``sv3d`` (``visage.model.files.spherical_video``).
A 2:1 video without metadata that ``visage generate --equirect`` read as 360° (``equirect=True``, or
the result's sidecar says so) gets ``st3d`` (mono) + ``sv3d`` (equirectangular, full sphere, pose 0),
the meaning ``--equirect`` gave it; metadata a video has is never overruled.
Cubemap, mesh and stereo metadata is carried over as it is (it describes the copied picture truthfully);
metadata that cannot be read or translated (malformed boxes, a Matroska stereo mode with no ``st3d``
equivalent) is refused rather than dropped. What the output says is read back and compared with the
source before the file takes its name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Literal

import av
import numpy as np
import soundfile as sf

from visage.model.audio.loudness import normalize_loudness
from visage.model.files.audio_io import read_ambix, resample
from visage.model.files.mp4_boxes import Box, BoxError, top_level_boxes
from visage.model.files.output_files import atomic_output, check_new_output, scratch_file
from visage.model.files.panorama_video import is_two_to_one
from visage.model.files.sa3d import SpatialAudio, ambix_foa, insert_sa3d, read_sa3d
from visage.model.files.spherical_boxes import SphericalBoxes, insert_spherical_boxes
from visage.model.files.spherical_video import (
    SphericalVideo,
    SphericalVideoError,
    build_st3d,
    build_sv3d,
    read_spherical_video,
    spherical_boxes_for_mp4,
)
from visage.model.files.video_io import probe_video

from .result_context import read_result_context

Codec = Literal["pcm", "aac", "opus"]
CONTAINER_CODECS: dict[str, tuple[Codec, ...]] = {".mov": ("pcm", "aac"), ".mp4": ("aac", "opus")}
"""Allowed codecs per output suffix; the first is the default."""

_ENCODERS = {"pcm": "pcm_s24le", "aac": "aac", "opus": "libopus"}
_FORMATS = {".mov": "mov", ".mp4": "mp4"}
_LAYOUTS = {  # (plain FOA, FOA + head-locked stereo) per codec
    "pcm": ("ambisonic 1", "ambisonic 1+stereo"),
    "opus": ("ambisonic 1", "ambisonic 1+stereo"),
    "aac": ("quad", "6.0"),  # the AAC encoder takes only loudspeaker layouts; the order is kept as is
}
_BITRATE_PER_CHANNEL = 128_000
_OPUS_RATE = 48_000
_CHUNK = 4096  # samples per audio frame handed to the encoder
_LEAD_S = 1.0  # audio is muxed this far ahead of the video packets, for even interleaving
_COPY_BLOCK = 1 << 22
_POSE_STEP_DEG = 2**-16  # resolution of the sv3d pose (16.16 fixed-point degrees)


class MuxError(ValueError):
    """Inputs or options that cannot make a spatial-audio video; the message says which and why."""


@dataclass(frozen=True)
class MuxedFile:
    """What ``mux_spatial_audio`` wrote.

    Attributes:
        path: the video file.
        codec: "pcm", "aac" or "opus".
        channels: 4, or 6 with head-locked stereo.
        sample_rate: of the audio track, in Hz.
        start_s: where the audio's first sample sits on the video's timeline.
        audio_s: seconds of the result's audio in the track (after any trimming).
        video_s: duration of the video, which the audio track spans.
        video_packets: packets copied from the input video stream.
        gain_db: gain applied to the ambisonic channels for ``target_lufs`` (0 without).
        spatial: the SA3D box as read back from the written file.
        spherical: the video's 360° metadata as read back from the written file (None for flat video).
        spherical_added: the source had none: the output was marked 360° because of ``equirect``.
    """

    path: Path
    codec: Codec
    channels: int
    sample_rate: int
    start_s: float
    audio_s: float
    video_s: float
    video_packets: int
    gain_db: float
    spatial: SpatialAudio
    spherical: SphericalVideo | None = None
    spherical_added: bool = False


def mux_spatial_audio(
    video: str | os.PathLike[str],
    result_wav: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    codec: Codec | None = None,
    start_s: float | None = None,
    head_locked: str | os.PathLike[str] | None = None,
    target_lufs: float | None = None,
    equirect: bool | None = None,
    overwrite: bool = False,
) -> MuxedFile:
    """Write ``video``'s picture with ``result_wav`` as a spatial audio track (see the module notes).

    Args:
        video: the clip (its video stream is copied).
        result_wav: 4-channel AmbiX WAV.
        output: ``.mov`` or ``.mp4`` file to write.
        codec: "pcm" (MOV only), "aac", or "opus" (MP4 only); default: pcm for MOV, aac for MP4.
        start_s: where the audio starts on the video's timeline (default: the result's recorded range
            start, else 0).
        head_locked: a stereo WAV at the result's sample rate to add as head-locked channels 5-6.
        target_lufs: scale the four ambisonic channels together so that W reaches this integrated
            loudness (the head-locked pair is left as it is).
        equirect: a video without spherical metadata is a 2:1 equirectangular 360° panorama: mark the
            output so (None: when the result's sidecar says ``--equirect`` made it read as 360° and the
            picture is 2:1).
        overwrite: replace an existing output.

    Returns:
        What was written, with the SA3D box read back from the file.

    Raises:
        MuxError: unknown container, a codec the container cannot hold (audio, or the copied video), no
            video stream, 360° metadata that cannot be read or carried over, ``equirect`` on a
            picture that is not 2:1, audio past the video's end, a bad head-locked file, a loudness
            target that would clip.
        LoudnessError: ``target_lufs`` given for a silent or too short result.
        ChannelCountError: the result is not 4-channel.
        OutputExistsError: the output exists and ``overwrite`` is false.
        VideoError: the video cannot be read.
    """
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in CONTAINER_CODECS:
        raise MuxError(
            f"{output}: unknown container {output.suffix or '(none)'!r}; use .mov (PCM) or .mp4 (AAC/Opus)"
        )
    codec = codec or CONTAINER_CODECS[suffix][0]
    if codec not in CONTAINER_CODECS[suffix]:
        allowed = ", ".join(CONTAINER_CODECS[suffix])
        raise MuxError(
            f"{output}: {codec} audio cannot go in {suffix} (use {allowed}; PCM needs .mov, Opus .mp4)"
        )
    video, result_wav = Path(video), Path(result_wav)
    if output.resolve() in (video.resolve(), result_wav.resolve()):
        raise MuxError(f"{output}: the output would replace one of its inputs")
    check_new_output(output, suffixes=tuple(CONTAINER_CODECS), overwrite=overwrite)

    info = probe_video(video)
    if not info.has_video:
        raise MuxError(f"{video}: no video stream to publish the audio with")
    try:
        spherical, spherical_boxes = spherical_boxes_for_mp4(video)
    except SphericalVideoError as exc:
        raise MuxError(f"{exc}; its 360° metadata cannot be carried over") from None
    context = read_result_context(result_wav)
    if equirect is None:  # the sidecar's word holds for a 2:1 picture only: another shape is another video
        equirect = context.forced_equirect and is_two_to_one(info.display_width, info.display_height)
    added = spherical is None and equirect
    if added:
        spherical, spherical_boxes = _forced_equirect(video, info.display_width, info.display_height)
    foa, sample_rate = read_ambix(result_wav)  # [4, N]
    gain_db = 0.0
    if target_lufs is not None:
        foa, gain_db, _ = normalize_loudness(foa, sample_rate, target_lufs)
        peak = float(np.abs(foa).max())
        if peak > 1.0:
            raise MuxError(
                f"reaching {target_lufs} LUFS needs {gain_db:+.1f} dB, which would clip (peak {peak:.2f}); "
                "choose a lower target"
            )
    tracks = [foa]
    if head_locked is not None:
        tracks.append(_read_stereo(Path(head_locked), sample_rate))
    audio = np.concatenate([_fit(t, foa.shape[1]) for t in tracks])  # [C, N]
    if codec == "opus" and sample_rate != _OPUS_RATE:
        audio, sample_rate = resample(audio, sample_rate, _OPUS_RATE), _OPUS_RATE
    start = start_s if start_s is not None else (context.start_s or 0.0)
    frame_period = float(1 / info.frame_rate) if info.frame_rate else 0.0
    track, audio_s = place_on_timeline(audio, sample_rate, start, info.duration, tolerance_s=frame_period)
    spatial = ambix_foa(head_locked_stereo=head_locked is not None)

    with atomic_output(output, overwrite=overwrite) as final, scratch_file(output) as muxed:
        try:
            packets = _mux(video, muxed, _FORMATS[suffix], codec, track, sample_rate, head_locked is not None)
        except (av.FFmpegError, ValueError) as exc:  # e.g. VP8 in MP4, VP9 in MOV
            # FFmpeg's message names the scratch file, which the user never sees: keep only its reason.
            reason = exc.strerror if isinstance(exc, av.FFmpegError) else str(exc)
            other = ".mp4" if suffix == ".mov" else ".mov"
            raise MuxError(
                f"{output}: FFmpeg cannot copy {video}'s {info.codec} video into {suffix} ({reason}); "
                f"try -o with {other}, or re-encode the video (e.g. to H.264) first"
            ) from None
        inject_spatial_audio(muxed, final, spatial, spherical_boxes)
        written = read_spatial_audio(final)
        if written != [spatial]:  # checked before the file takes its name
            raise MuxError(f"{output}: the SA3D box did not read back as written ({written})")
        written_spherical = read_spherical_video(final)
        if not _same_spherical(written_spherical, spherical):
            raise MuxError(
                f"{output}: the 360° metadata did not read back as the source's ({written_spherical} "
                f"instead of {spherical})"
            )
    return MuxedFile(
        path=output,
        codec=codec,
        channels=audio.shape[0],
        sample_rate=sample_rate,
        start_s=start,
        audio_s=audio_s,
        video_s=info.duration,
        video_packets=packets,
        gain_db=gain_db,
        spatial=spatial,
        spherical=written_spherical,
        spherical_added=added,
    )


def place_on_timeline(
    audio: np.ndarray, sample_rate: int, start_s: float, video_s: float, *, tolerance_s: float
) -> tuple[np.ndarray, float]:
    """Put ``[C, N]`` audio at ``start_s`` in a silent track as long as the video (the module's policy).

    Returns:
        ``[C, round(video_s · rate)]`` float32 and the seconds of audio kept.

    Raises:
        MuxError: a negative or late start, or audio running past the end by more than ``tolerance_s``.
    """
    if not 0 <= start_s < video_s:
        raise MuxError(f"audio start {start_s:.3f} s lies outside the video (0 to {video_s:.3f} s)")
    total = round(video_s * sample_rate)
    offset = round(start_s * sample_rate)
    overrun_s = (offset + audio.shape[1] - total) / sample_rate
    if overrun_s > tolerance_s + 1 / sample_rate:
        raise MuxError(
            f"the audio ({audio.shape[1] / sample_rate:.3f} s from {start_s:.3f} s) runs {overrun_s:.3f} s "
            f"past the end of the video ({video_s:.3f} s); check --start, or that the result belongs to it"
        )
    kept = min(audio.shape[1], total - offset)
    track = np.zeros((audio.shape[0], total), np.float32)
    track[:, offset : offset + kept] = audio[:, :kept]
    return track, kept / sample_rate


def inject_spatial_audio(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    spatial: SpatialAudio,
    spherical: SphericalBoxes | None = None,
) -> None:
    """Copy an MP4/MOV file, adding the SA3D box to its audio track (only ``moov`` is rewritten).

    ``spherical`` boxes go into its video track (the kinds it lacks), so 360° video stays 360°.
    """
    source, destination = Path(source), Path(destination)
    with open(source, "rb") as src:
        boxes = list(_top_level_boxes(src, source))
        moov_boxes = [b for b in boxes if b.type == b"moov"]
        if len(moov_boxes) != 1:
            raise MuxError(f"{source}: expected one moov box, found {len(moov_boxes)}")
        (moov,) = moov_boxes
        src.seek(moov.start)
        new_moov = src.read(moov.size)
        if spherical:
            try:
                new_moov = insert_spherical_boxes(new_moov, spherical, moov.start)
            except SphericalVideoError as exc:
                raise MuxError(f"{source}: {exc}") from None
        new_moov = insert_sa3d(new_moov, spatial, moov.start)
        with open(destination, "wb") as dst:
            for box in boxes:
                if box is moov:
                    dst.write(new_moov)
                else:
                    src.seek(box.start)
                    _copy_bytes(src, dst, box.size)


def read_spatial_audio(path: str | os.PathLike[str]) -> list[SpatialAudio | None]:
    """The SA3D box of each audio track of an MP4/MOV file (None for a track without one)."""
    path = Path(path)
    with open(path, "rb") as f:
        moov = next((b for b in _top_level_boxes(f, path) if b.type == b"moov"), None)
        if moov is None:
            raise MuxError(f"{path}: no moov box; not an MP4/MOV file")
        f.seek(moov.start)
        return read_sa3d(f.read(moov.size))


def _mux(
    video: Path,
    output: Path,
    container_format: str,
    codec: Codec,
    track: np.ndarray,
    rate: int,
    head_locked: bool,
) -> int:
    """Copy the video stream and encode the audio track, interleaved by time; returns video packets."""
    layout = _LAYOUTS[codec][head_locked]
    options = {"mapping_family": "2"} if codec == "opus" else {}
    with (
        av.open(str(video)) as source,
        av.open(str(output), "w", format=container_format, options={"movflags": "+faststart"}) as sink,
    ):
        in_video = next(
            s for s in source.streams.video if not s.disposition & av.stream.Disposition.attached_pic
        )
        out_video = sink.add_stream_from_template(in_video)
        out_audio = sink.add_stream(_ENCODERS[codec], rate=rate, layout=layout, options=options)
        if codec != "pcm":
            out_audio.codec_context.bit_rate = _BITRATE_PER_CHANNEL * track.shape[0]
        origin = Fraction(int(source.start_time or 0), 1_000_000)  # media time 0, as video_io counts it
        first_sample = round(origin * rate)
        audio = _audio_frames(track, rate, layout, first_sample)
        pending = next(audio, None)
        packets = 0
        horizon = Fraction(0)
        for packet in source.demux(in_video):
            if not packet.size:  # the demuxer's empty flush packet
                continue
            # Matroska stores no DTS: with B-frames the first packets (the keyframe too) have none;
            # they are kept, and the muxer derives their DTS from the PTS.
            stamp = packet.dts if packet.dts is not None else packet.pts
            if stamp is not None:
                assert packet.time_base is not None
                horizon = max(horizon, stamp * packet.time_base + _LEAD_S)
            while pending is not None and Fraction(pending.pts or 0, rate) < horizon:
                sink.mux(out_audio.encode(pending))
                pending = next(audio, None)
            packet.stream = out_video
            sink.mux(packet)
            packets += 1
        while pending is not None:
            sink.mux(out_audio.encode(pending))
            pending = next(audio, None)
        sink.mux(out_audio.encode(None))
    return packets


def _audio_frames(track: np.ndarray, rate: int, layout: str, first_sample: int) -> Iterator[av.AudioFrame]:
    """The track as planar float frames of ``_CHUNK`` samples, timestamped in samples."""
    for begin in range(0, track.shape[1], _CHUNK):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(track[:, begin : begin + _CHUNK]), format="fltp", layout=layout
        )
        frame.sample_rate = rate
        frame.pts = first_sample + begin
        frame.time_base = Fraction(1, rate)
        yield frame


def _read_stereo(path: Path, sample_rate: int) -> np.ndarray:
    """A head-locked stereo file as ``[2, N]`` float32, checked against the result's rate."""
    if not path.is_file():
        raise MuxError(f"{path}: no such head-locked stereo file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # [N, C]
    except sf.LibsndfileError as exc:
        raise MuxError(f"{path}: cannot read head-locked stereo audio ({exc})") from None
    if data.shape[1] != 2:
        raise MuxError(f"{path}: head-locked audio must be stereo, got {data.shape[1]} channel(s)")
    if rate != sample_rate:
        raise MuxError(f"{path}: head-locked audio is at {rate} Hz, the ambisonic result at {sample_rate} Hz")
    return np.ascontiguousarray(data.T)


def _fit(audio: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad a track to ``length`` samples; a longer head-locked track is an error."""
    if audio.shape[1] > length:
        raise MuxError(
            f"the head-locked stereo ({audio.shape[1]} samples) is longer than the ambisonic result "
            f"({length} samples)"
        )
    return np.pad(audio, ((0, 0), (0, length - audio.shape[1])))


def _top_level_boxes(f: BinaryIO, path: Path) -> Iterator[Box]:
    """The top-level boxes of an open file, with a malformed one reported as this file's error."""
    try:
        yield from top_level_boxes(f)
    except BoxError as exc:
        raise MuxError(f"{path}: not a well-formed MP4/MOV file ({exc})") from None


def _forced_equirect(video: Path, width: int, height: int) -> tuple[SphericalVideo, SphericalBoxes]:
    """The metadata ``--equirect`` means (mono, full sphere, pose 0) and its boxes, for a 2:1 picture."""
    if not is_two_to_one(width, height):
        raise MuxError(
            f"{video}: --equirect marks a 2:1 equirectangular panorama as 360°, but the picture is "
            f"{width} x {height}"
        )
    metadata = SphericalVideo("equirectangular", "mono", "sv3d")
    return metadata, SphericalBoxes(st3d=build_st3d(metadata.stereo), sv3d=build_sv3d(metadata))


def _same_spherical(written: SphericalVideo | None, source: SphericalVideo | None) -> bool:
    """Whether the output says what the source said.

    A translated Matroska ``Projection`` reads back as ``sv3d``, its float pose rounded to the box's
    16.16 fixed point.
    """
    if written is None or source is None:
        return written is source
    poses = zip(
        (written.pose_yaw_deg, written.pose_pitch_deg, written.pose_roll_deg),
        (source.pose_yaw_deg, source.pose_pitch_deg, source.pose_roll_deg),
        strict=True,
    )
    if any(abs(a - b) > _POSE_STEP_DEG for a, b in poses):
        return False
    same_pose = replace(
        written,
        source=source.source,
        pose_yaw_deg=source.pose_yaw_deg,
        pose_pitch_deg=source.pose_pitch_deg,
        pose_roll_deg=source.pose_roll_deg,
    )
    return same_pose == source


def _copy_bytes(src: BinaryIO, dst: BinaryIO, count: int) -> None:
    remaining = count
    while remaining:
        block = src.read(min(remaining, _COPY_BLOCK))
        if not block:
            raise MuxError("the file ended while it was being copied")
        dst.write(block)
        remaining -= len(block)
