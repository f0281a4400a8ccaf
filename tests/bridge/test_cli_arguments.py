"""The options several `visage` stages share: defined once, so they parse the same in every stage."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from visage.bridge import cli_arguments, const
from visage.model.cli import build_parser

# What each stage needs on its command line besides the option under test.
STAGES: dict[str, list[str]] = {
    "generate": ["clip.mp4", "-o", "out.wav"],
    "submit": ["clip.mp4", "-o", "out.wav"],
    "fill": ["cut.otio", "-o", "out.otio"],
    "serve": [],
    "bench": ["generate"],
    "binaural": ["in.wav"],
    "viz": ["result.wav", "--video", "clip.mp4", "-o", "map.png"],
    "mux": ["clip.mp4", "result.wav", "-o", "out.mov"],
}

DIRECTION = {"generate", "submit", "fill", "binaural", "viz"}
JOB = {"generate", "submit", "fill"}

# (arguments, what they parse to, the stages that have the option)
SHARED: list[tuple[list[str], dict[str, Any], set[str]]] = [
    (["--yaw", "-30.5", "--pitch", "12"], {"yaw": -30.5, "pitch": 12.0}, DIRECTION),
    (["--yaw", "400"], {"yaw": 400.0, "pitch": None}, {"binaural", "viz"}),  # pitch recorded, or 0
    (["--direction-curve", "pan.json"], {"direction_curve": Path("pan.json")}, {"generate", "submit"}),
    (["--start", "1.5", "--end", "4"], {"start": 1.5, "end": 4.0}, {"generate", "submit"}),
    (["--guidance", "3.5"], {"guidance": 3.5}, JOB),
    (["--guidance-mode", "dual"], {"guidance_mode": "dual"}, {"generate", "fill"}),
    (["--seed", "7"], {"seed": 7}, JOB),
    (["--sample-rate", "44100"], {"sample_rate": 44100}, JOB),
    (["--format", "float"], {"format": "float"}, {"generate", "fill"}),
    (["--model", "tiny-random"], {"model": "tiny-random"}, {"generate", "fill"}),
    (["--checkpoint", "ckpt"], {"checkpoint": "ckpt"}, {"generate", "fill"}),
    (["--device", "cuda:1"], {"device": "cuda:1"}, {"generate", "fill", "serve", "bench"}),
    (["--loudness", "-23"], {"loudness": -23.0}, {"generate", "mux"}),
    (["--force"], {"force": True}, {"generate", "fill", "binaural", "viz", "mux"}),
    (["--token", "s3cret-s3cret-s3cret"], {"token": "s3cret-s3cret-s3cret"}, {"serve", "submit", "fill"}),
]


def _stage_parsers() -> dict[str, argparse.ArgumentParser]:
    def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(action.choices)

    stages = subparsers(build_parser())
    stages["bench"] = subparsers(stages["bench"])["generate"]
    return {name: stages[name] for name in STAGES}


PARSERS = _stage_parsers()


def _action(stage: str, flag: str) -> argparse.Action | None:
    return PARSERS[stage]._option_string_actions.get(flag)


@pytest.mark.parametrize(("argv", "parsed", "stages"), SHARED, ids=[" ".join(c[0]) for c in SHARED])
def test_shared_options_parse_identically_in_every_stage(
    argv: list[str], parsed: dict[str, Any], stages: set[str]
) -> None:
    for stage in sorted(stages):
        args = build_parser().parse_args([stage, *STAGES[stage], *argv])
        assert {dest: getattr(args, dest) for dest in parsed} == parsed, stage


def _stages_of(flag: str) -> set[str]:
    return set().union(*(stages for argv, _, stages in SHARED if flag in argv))


@pytest.mark.parametrize("flag", sorted({a for argv, _, _ in SHARED for a in argv if a.startswith("--")}))
def test_a_shared_option_is_one_definition(flag: str) -> None:
    """Type, choices, metavar and action agree in every stage that shares the option; so does the default,
    but where a stage documents its own (binaural and viz take an unset direction from the sidecar)."""
    actions = {s: _action(s, flag) for s in _stages_of(flag)}
    shape = {s: (type(a), a.type, a.choices, a.metavar, a.nargs, a.dest) for s, a in actions.items() if a}
    assert len(shape) == len(actions) and len(set(map(repr, shape.values()))) == 1, shape
    own_default = {"binaural", "viz"} if flag in ("--yaw", "--pitch") else set()
    defaults = {s: a.default for s, a in actions.items() if a and s not in own_default}
    assert len(set(map(repr, defaults.values()))) == 1, defaults


def test_the_copies_the_bridge_keeps_match_the_model() -> None:
    from visage.model.inference.job_request import SAMPLE_FORMATS
    from visage.model.inference.pipeline import GenerationRequest
    from visage.model.network.checkpoint import DEFAULT_REPO_ID
    from visage.model.network.generation import GUIDANCE_MODES, Guidance

    assert cli_arguments.GUIDANCE_MODES == GUIDANCE_MODES
    assert cli_arguments.SAMPLE_FORMATS == tuple(SAMPLE_FORMATS)
    assert cli_arguments.RELEASED_CHECKPOINT == DEFAULT_REPO_ID
    assert const.DEFAULT_GUIDANCE == Guidance().scale
    assert const.DEFAULT_SAMPLE_RATE_HZ == GenerationRequest(Path("x.mp4")).sample_rate


def test_the_cli_stages_may_import_this_module_of_the_bridge_and_no_other() -> None:
    from layer_rules import check_model_module

    shared = "from visage.bridge.cli_arguments import add_force_argument\n"
    client = "from visage.bridge.client import VisageClient\n"
    stage, library = ("commands", "generate.py"), ("inference", "pipeline.py")
    assert check_model_module(Path("/scratch/model", *stage), shared, stage) == []
    assert len(check_model_module(Path("/scratch/model", *stage), client, stage)) == 1
    assert len(check_model_module(Path("/scratch/model", *library), shared, library)) == 1
