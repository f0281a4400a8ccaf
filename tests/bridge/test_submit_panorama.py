"""`visage submit --equirect / --look`: the 360° options reach the daemon's engine as request options (only
when given, as fill sends them), and an unknown look mode is refused on the command line."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from bridge_fixtures import fake_settings, write_media

from visage.bridge.cli import add_submit_arguments, run_submit
from visage.bridge.daemon import Daemon
from visage.bridge.engine import CancelledCallback, GenerateSpec, JobOutcome, ProgressCallback
from visage.bridge.fake_engine import FakeEngine, FakeSettings


class ExtraRecorder(FakeEngine):
    """The fake engine, remembering the engine options (``spec.extra``) of every job it runs."""

    def __init__(self) -> None:
        super().__init__(FakeSettings(delay_s=0.02, steps=1, seconds=0.05))
        self.extras: list[Mapping[str, Any]] = []

    def run_batch(
        self, specs: Sequence[GenerateSpec], progress: ProgressCallback, cancelled: CancelledCallback
    ) -> list[JobOutcome]:
        self.extras.extend(dict(spec.extra) for spec in specs)
        return super().run_batch(specs, progress, cancelled)


@pytest.fixture
def engine() -> ExtraRecorder:
    return ExtraRecorder()


@pytest.fixture
def daemon(tmp_path: Path, engine: ExtraRecorder) -> Iterator[Daemon]:
    with Daemon(fake_settings(tmp_path), engine) as running:
        yield running


def submit(daemon: Daemon, media: Path, out: Path, *options: str) -> int:
    parser = argparse.ArgumentParser()
    add_submit_arguments(parser)
    argv = [str(media), "--end", "0.2", "-o", str(out), "--daemon", f"127.0.0.1:{daemon.udp_address[1]}"]
    return run_submit(parser.parse_args([*argv, *options, "--no-cache", "-q"]))


def test_the_360_options_reach_the_engine_only_when_given(
    daemon: Daemon, engine: ExtraRecorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    media = write_media(tmp_path)
    runs = [
        ((), {}),
        (("--equirect",), {"equirect": True}),
        (("--look", "auto"), {"look": "auto"}),
        (("--equirect", "--look", "auto"), {"equirect": True, "look": "auto"}),
    ]
    for i, (options, _) in enumerate(runs):
        assert submit(daemon, media, tmp_path / f"out{i}.wav", *options) == 0, capsys.readouterr().err
    panorama = [{k: v for k, v in extra.items() if k in ("equirect", "look")} for extra in engine.extras]
    assert panorama == [expected for _, expected in runs]


def test_submit_refuses_a_look_mode_it_does_not_know() -> None:
    parser = argparse.ArgumentParser()
    add_submit_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["clip.mp4", "-o", "out.wav", "--look", "left"])
