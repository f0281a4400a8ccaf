"""Dataset features on a local Ray instance: the same dataset as a local build, byte for byte; results in
plan order whatever order the actors finish in; a clip whose actor keeps dying fails alone."""

from __future__ import annotations

import argparse
import copy
import functools
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from recording_factory import make_recording
from safetensors.numpy import load_file

from visage.model.audio.carrier_codec import CarrierCodec
from visage.model.audio.codec import FoaCodec
from visage.model.commands.research import add_dataset_arguments, run_dataset
from visage.model.dataset.build import BuildOptions, FeatureModels, PlannedClip, build_dataset
from visage.model.dataset.clip_selection import SelectionRules
from visage.model.dataset.direction_table import ClipDirection
from visage.model.dataset.ray_build import ActorSize, RayFeaturizer
from visage.model.dataset.shard_format import Failure
from visage.model.features.direction import CameraDirection
from visage.model.features.vision import ClipVisionEncoder, build_tiny_random_clip

ray = pytest.importorskip("ray")

RULES = SelectionRules(clip_seconds=1, min_valid_seconds=0, rms_threshold_db=-40.0)
OPTIONS = BuildOptions(rules=RULES, shard_size=3)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``$VISAGE_CACHE_DIR`` of the driver and the workers (the tiny-random bundle)."""
    return tmp_path_factory.mktemp("visage-cache")


@pytest.fixture(scope="module")
def ray_instance(cache_dir: Path) -> Iterator[Any]:
    """A two-CPU Ray instance for this module; this module's functions travel to the workers by value."""
    ray.init(
        address="local",  # a new instance, even where another one runs on this machine
        runtime_env={"env_vars": {"VISAGE_CACHE_DIR": str(cache_dir), "HF_HUB_OFFLINE": "1"}},
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=80 * 1024 * 1024,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> FeatureModels:
    encoder = ClipVisionEncoder.from_pretrained(build_tiny_random_clip(tmp_path_factory.mktemp("clip")))
    return FeatureModels(encoder, FoaCodec(CarrierCodec()), "tiny-random", "carrier")


@pytest.fixture(scope="module")
def featurizer(ray_instance: Any, models: FeatureModels) -> Iterator[RayFeaturizer]:
    """Two actors of half a CPU (room is left for the last test's), each with its own copy of the models
    (unpickled from the driver's)."""
    size = ActorSize(actors=2, cpus=0.5, in_flight=1)
    with RayFeaturizer(functools.partial(copy.copy, models), size) as actors:
        yield actors


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two 3-s recordings (clips at seconds 1 and 2 of each), a broken one between them, the first again."""
    folder = tmp_path_factory.mktemp("recordings")
    left = make_recording(folder / "rec_left.mp4", math.radians(60), math.radians(15), seconds=3)
    back = make_recording(folder / "rec_back.mp4", math.radians(-150), math.radians(-20), seconds=3)
    broken = folder / "broken.mp4"
    broken.write_bytes(b"not a video")
    return [left, broken, back, left]


def dataset_files(folder: Path) -> dict[str, bytes]:
    """Every file of a dataset by relative path; shards as their tensors' bytes (the header may order
    its entries differently), the manifest without the absolute folder names."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            name = path.relative_to(folder).as_posix()
            if path.suffix == ".safetensors":
                files[name] = b"".join(k.encode() + v.tobytes() for k, v in sorted(load_file(path).items()))
            else:
                files[name] = path.read_bytes()
    return files


def test_a_ray_build_writes_the_same_dataset_as_a_local_one(
    featurizer: RayFeaturizer, models: FeatureModels, recordings: list[Path], tmp_path: Path
) -> None:
    local = build_dataset(tmp_path / "local", models, recordings=recordings, options=OPTIONS)
    on_ray = build_dataset(tmp_path / "ray", featurizer, recordings=recordings, options=OPTIONS)
    assert (on_ray.built, on_ray.already_done, on_ray.failures) == (local.built, 0, local.failures)
    assert (
        local.built == 4
        and [f.source for f in local.failures] == [str(recordings[1])] + [str(recordings[0])] * 2
    )
    a, b = dataset_files(tmp_path / "local"), dataset_files(tmp_path / "ray")
    assert (
        sorted(a)
        == sorted(b)
        == sorted(
            ["manifest.json", "shard-00000.safetensors", "shard-00001.safetensors"]
            + [f"views/{c}.mp4" for c in ("rec_left_1", "rec_left_2", "rec_back_1", "rec_back_2")]
        )
    )
    assert a == b


def test_a_ray_build_extends_a_local_one(
    featurizer: RayFeaturizer, models: FeatureModels, recordings: list[Path], tmp_path: Path
) -> None:
    build_dataset(tmp_path, models, recordings=recordings[:1], options=OPTIONS)
    report = build_dataset(tmp_path, featurizer, recordings=recordings[:3], options=OPTIONS)
    assert (report.built, report.already_done, len(report.failures)) == (2, 2, 1)


def test_the_command_builds_on_ray_what_it_builds_here(
    ray_instance: Any,
    featurizer: RayFeaturizer,
    recordings: list[Path],
    cache_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("VISAGE_CACHE_DIR", str(cache_dir))
    parser = argparse.ArgumentParser()
    add_dataset_arguments(parser)
    common = [*map(str, recordings[:1]), "--clip-seconds", "1", "--min-valid-seconds", "0"]
    common += ["--rms-threshold-db", "-40", "--clip-model", "tiny-random", "--codec", "carrier", "--no-views"]
    assert (
        run_dataset(parser.parse_args(["build", *common, "-o", str(tmp_path / "here"), "--device", "cpu"]))
        == 0
    )
    # The module's instance is already connected: --ray local uses it; half a CPU is free for one actor.
    on_ray = [
        "--ray",
        "local",
        "--ray-actors",
        "1",
        "--ray-cpus-per-actor",
        "0.5",
        "--ray-gpus-per-actor",
        "0",
    ]
    assert run_dataset(parser.parse_args(["build", *common, "-o", str(tmp_path / "ray"), *on_ray])) == 0
    printed = capsys.readouterr().out
    assert "1 feature actor(s) of {'CPU': 0.5}" in printed and printed.count("2 clips built") == 2
    assert dataset_files(tmp_path / "here") == dataset_files(tmp_path / "ray")


def test_an_actor_the_cluster_has_no_room_for_is_given_up_and_the_others_take_its_clips(
    featurizer: RayFeaturizer, models: FeatureModels
) -> None:
    """The module's featurizer holds one of the two CPUs: one actor of 0.75 CPU fits, a second never
    does (as a replacement whose node died, or a cluster other jobs fill): the build must not wait for it."""
    work: list[PlannedClip | Failure] = [_clip(name) for name in ("a", "bb", "ccc", "dddd")]
    size = ActorSize(actors=2, cpus=0.75, placement_timeout_s=20.0)  # a worker may take seconds to start
    with RayFeaturizer(functools.partial(copy.copy, models), size) as actors:
        results = list(actors.features(work, BuildOptions(rules=RULES)))
    assert [item for item, _ in results] == work
    assert not [result for _, result in results if isinstance(result, str)]


def test_with_no_room_for_any_actor_the_build_stops_saying_what_an_actor_needs(
    featurizer: RayFeaturizer, models: FeatureModels
) -> None:
    size = ActorSize(actors=2, cpus=1.5, placement_timeout_s=1.0)  # 1 CPU of the 2 is free
    with RayFeaturizer(functools.partial(copy.copy, models), size) as actors:
        with pytest.raises(RuntimeError, match=r"no room on the Ray cluster for a feature actor \(1.5 CPU\)"):
            actors.settings(OPTIONS)


# --- the featurizer alone: order and dying actors ---------------------------------------------------


class _Views:
    """A clip's frames after ``delay_s``; the clip named ``poison`` kills its actor's process."""

    def __init__(self, name: str, delay_s: float) -> None:
        self.name, self.delay_s = name, delay_s

    def __call__(self) -> np.ndarray:
        if self.name == "poison":
            os._exit(1)
        time.sleep(self.delay_s)
        return np.full((4, 224, 224, 3), len(self.name) * 10, np.uint8)


def _clip(name: str, delay_s: float = 0.0) -> PlannedClip:
    direction = ClipDirection.from_camera(CameraDirection(0.0, 0.0))
    audio = np.zeros((4, 44100), np.float32)
    return PlannedClip(name, f"{name}.mp4", 0.0, 1.0, direction, None, audio, 44100, _Views(name, delay_s))


def test_results_come_back_in_plan_order_and_a_dying_actor_fails_only_its_clip(
    ray_instance: Any, models: FeatureModels
) -> None:
    options = BuildOptions(rules=RULES)
    work: list[PlannedClip | Failure] = [
        _clip("slow", 0.5),  # finishes after the clips sent behind it to the other actor
        _clip("a"),
        Failure("gone.mp4", None, "FileNotFoundError: gone.mp4"),
        _clip("poison"),
        _clip("bb"),
        _clip("ccc"),
    ]
    with RayFeaturizer(
        functools.partial(copy.copy, models), ActorSize(actors=2, cpus=0.5, retries=1)
    ) as actors:
        results = list(actors.features(work, options))
    assert [item for item, _ in results] == work
    for item, result in results:
        if isinstance(item, Failure):
            assert result is None
        elif item.id == "poison":
            assert isinstance(result, str) and "Actor" in result, result
        else:
            assert not isinstance(result, str), result
            tensors, views = result
            assert views.shape == (4, 224, 224, 3) and int(views[0, 0, 0, 0]) == len(item.id) * 10
            assert tensors.clip.shape == (4, 512)
