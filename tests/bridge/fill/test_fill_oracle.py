"""Random edits against a brute-force oracle: fill's shots are what a viewer sees, frame for frame.

`edit_strategies` builds edits with several differently trimmed tracks, gaps, transitions, nested
stacks and tracks, disabled items, generators with and without alpha, speed changes and freeze frames;
`otio_oracle` says, from OTIO's time model alone, which clip and which media time is seen at an
instant. Each frame is judged at its centre, as the shots' edges are (a retimed nested piece can end
inside a frame). Inside a transition either side is a right answer.

``VISAGE_FILL_EXAMPLES`` sets the number of random edits per test (default 60, ~30 s on two cores);
e.g. ``VISAGE_FILL_EXAMPLES=2000`` for a long search.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import soundfile as sf
from edit_strategies import RATE, edits, is_generated, is_overlay
from hypothesis import HealthCheck, given, settings
from opentimelineio.opentime import RationalTime
from otio_oracle import Oracle, View, seconds

from visage.bridge.fill.fill_edit import FillOptions, ShotStatus, fill_edit
from visage.bridge.fill.generators import GenerationSettings, ShotJob
from visage.bridge.fill.otio_shots import Shot, ShotList, choose_video_tracks, list_shots

EXAMPLES = int(os.environ.get("VISAGE_FILL_EXAMPLES", "60"))
SAMPLE_RATE = 8000  # the fake results' rate: small files, same checks
_TOLERANCE_S = Fraction(1, 10**6)


def _view_of(shot: Shot, frame: int) -> View:
    """The view a shot claims at the centre of record frame ``frame``."""
    into = (Fraction(frame) + Fraction(1, 2) - Fraction(shot.record.start_time.value)) / Fraction(RATE)
    return View(shot.name, seconds(shot.source_start) + into * Fraction(shot.speed))


def _same(a: View | None, b: View | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.clip == b.clip and abs(a.source_s - b.source_s) <= _TOLERANCE_S


def _frames_to_check(oracle: Oracle, shots: ShotList, offset: int) -> range:
    spans = [oracle.placement(track) for track in oracle.tracks]
    shift = Fraction(offset, RATE)  # records -> stack time
    starts = [start for start, _ in spans] + [seconds(s.record.start_time) - shift for s in shots.shots]
    ends = [start + n for start, n in spans] + [
        seconds(s.record.end_time_exclusive()) - shift for s in shots.shots
    ]
    return range(math.floor(min(starts) * RATE) - 1, math.ceil(max(ends) * RATE) + 1)


def check_against_oracle(timeline: otio.schema.Timeline, shots: ShotList) -> None:
    """Every frame: the shot fill lists there (or none) is one of the views the oracle allows."""
    oracle = Oracle(timeline, is_overlay)
    # Shared trims keep records in the tracks' content time; otherwise records are the stack's time.
    offset = int(shots.source_range.start_time.value) if shots.source_range is not None else 0
    for a, b in zip(shots.shots, shots.shots[1:], strict=False):
        assert a.record.end_time_exclusive() <= b.record.start_time, f"shots overlap: {a} {b}"
    for frame in _frames_to_check(oracle, shots, offset):
        record = frame + offset
        showing = [
            s
            for s in shots.shots
            if s.record.start_time.value <= record < s.record.end_time_exclusive().value
        ]
        claimed = _view_of(showing[0], record) if showing else None
        allowed = oracle.seen((Fraction(frame) + Fraction(1, 2)) / RATE)
        assert any(_same(claimed, view) for view in allowed), (
            f"stack frame {frame}: fill shows {claimed}, the oracle allows {allowed}"
        )
        if showing:
            shot = showing[0]
            assert shot.generator == is_generated(shot.name), shot
            assert shot.problem is None, shot


@settings(max_examples=EXAMPLES, deadline=None)
@given(edits())
def test_shots_match_the_oracle_frame_for_frame(timeline: otio.schema.Timeline) -> None:
    shots = list_shots(choose_video_tracks(timeline, ()), rate=RATE)
    check_against_oracle(timeline, shots)


class _WritesExactLengths:
    """A generator that writes silent AmbiX WAVs of each job's length."""

    model_id = "oracle-fake"

    def run(self, jobs: Sequence[ShotJob], progress, finished) -> None:  # type: ignore[no-untyped-def]
        for i, job in enumerate(jobs):
            frames = round((job.end_s - job.start_s) * SAMPLE_RATE)
            sf.write(str(job.output), np.zeros((frames, 4), np.float32), SAMPLE_RATE, subtype="PCM_16")
            finished(i, None)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits(max_tracks=2))
def test_fill_generates_what_the_oracle_sees(timeline: otio.schema.Timeline) -> None:
    """Through `fill_edit`: the shots are the oracle's, each picture is generated from its shot's media
    range, generators are skipped, and the new track's clips sit under their shots."""
    with tempfile.TemporaryDirectory(prefix="visage-oracle-") as folder:
        root = Path(folder)
        media = root / "media"
        media.mkdir()
        for clip in timeline.find_clips():
            if isinstance(clip.media_reference, otio.schema.ExternalReference):
                (media / f"{clip.name}.mov").write_bytes(clip.name.encode())
        timeline.global_start_time = RationalTime(0, RATE)  # the edit's rate, as NLEs write it
        edit = root / "cut.otio"
        otio.adapters.write_to_file(timeline, str(edit))
        generator = _WritesExactLengths()
        options = FillOptions(
            edit,
            root / "out.otio",
            media_roots=(media,),
            settings=GenerationSettings(sample_rate=SAMPLE_RATE),
        )
        report = fill_edit(options, generator)
        shots = list_shots(choose_video_tracks(timeline, ()), rate=RATE)
        assert [o.shot for o in report.outcomes] == list(shots.shots)
        check_against_oracle(timeline, shots)
        for outcome in report.outcomes:
            if outcome.shot.generator:
                assert outcome.status is ShotStatus.SKIPPED
                continue
            assert outcome.status is ShotStatus.GENERATED, outcome.message
            media_range = outcome.shot.media_range  # the references' available ranges start at 0
            start_s = max(0.0, media_range.start_time.to_seconds())  # half a frame early at most
            assert outcome.media_range_s == (start_s, start_s + media_range.duration.to_seconds())
        written = otio.adapters.read_from_file(str(root / "out.otio"))
        track = written.tracks[-1]
        clips = [c for c in track if isinstance(c, otio.schema.Clip)]
        made = [o.shot for o in report.outcomes if o.status is ShotStatus.GENERATED]
        assert [track.range_of_child(c) for c in clips] == [s.record for s in made]
        assert track.source_range == shots.source_range
