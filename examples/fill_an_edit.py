"""Spatial audio for a whole edit from Python: build a two-shot OTIO timeline, fill it, read the result.

The same run as `visage fill edit.otio -o edit_ambix.otio`, through the library: each shot carries its
own camera direction in ``metadata["visage"]``, and the filled timeline gets an "Ambisonics (AmbiX)"
audio track whose clips sit exactly under the shots.

python examples/make_example_clip.py clip.mp4
python examples/fill_an_edit.py clip.mp4 work/            # the released model (GPU recommended)
python examples/fill_an_edit.py clip.mp4 work/ --model tiny-random   # offline check; the audio is noise
"""

from __future__ import annotations

import argparse
from pathlib import Path

import opentimelineio as otio

from visage.bridge.fill.fill_edit import FillOptions, fill_edit
from visage.bridge.fill.generators import GenerationSettings, LocalGenerator
from visage.model.environment import quiet_libraries

RATE = 24  # timeline frames per second


def two_shot_edit(video: Path) -> otio.schema.Timeline:
    """Shot 1: 0-2 s of the video, camera 30° left; shot 2: 3-5 s, camera 45° right and 10° up."""
    timeline = otio.schema.Timeline(name="example")
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    for name, start_s, yaw, pitch in (("wide", 0, 30.0, 0.0), ("close", 3, -45.0, 10.0)):
        track.append(
            otio.schema.Clip(
                name=name,
                media_reference=otio.schema.ExternalReference(target_url=str(video.resolve())),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(start_s * RATE, RATE),
                    otio.opentime.RationalTime(2 * RATE, RATE),
                ),
                metadata={"visage": {"yaw": yaw, "pitch": pitch}},
            )
        )
    return timeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("video", type=Path, help="a video of at least 5 s")
    parser.add_argument("folder", type=Path, help="where the edit, the filled edit and the WAVs go")
    parser.add_argument("--model", default=None, help="checkpoint (default: the released one) or tiny-random")
    args = parser.parse_args(argv)

    args.folder.mkdir(parents=True, exist_ok=True)
    edit = args.folder / "edit.otio"
    if not edit.exists():  # a second run reuses the edit and every intact result (resume)
        otio.adapters.write_to_file(two_shot_edit(args.video), str(edit))
    output = args.folder / "edit_ambix.otio"
    if output.exists():
        parser.error(f"{output} exists; remove it to fill the edit again")
    quiet_libraries()  # no per-tensor loading bars from transformers
    options = FillOptions(edit=edit, output=output, resume=True)
    report = fill_edit(options, LocalGenerator(GenerationSettings(), checkpoint=args.model))

    filled = otio.adapters.read_from_file(str(report.output))
    (ambisonics,) = [t for t in filled.tracks if t.kind == otio.schema.TrackKind.Audio]
    print(f"{report.output}: track {ambisonics.name!r}")
    for clip in ambisonics.find_clips():
        placed = clip.range_in_parent()
        start, length = placed.start_time.to_seconds(), placed.duration.to_seconds()
        direction = clip.metadata["visage"]["direction"]
        print(
            f"  {clip.name}: at {start:.2f} s for {length:.2f} s, {direction},",
            clip.media_reference.target_url,
        )
    return report.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
