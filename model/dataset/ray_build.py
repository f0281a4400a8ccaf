"""Dataset features on Ray: actors that each load the feature models once compute the planned clips.

`RayFeaturizer` is a `build.ClipFeaturizer`: `build.build_dataset` stays the one writer of shards, views
and manifest, and receives every clip's result in the order the clips were planned, so a build on Ray
writes the same dataset as a local one from the same inputs. Up to ``in_flight`` clips per actor are
out at once (each goes to the actor with the fewest), which bounds what waits in the object store
behind a slow clip. An actor that dies is replaced (the new one loads the models again) and its clips
are sent again, each alone, ``retries`` times; past that, a clip fails with Ray's reason and the others
go on. An actor the cluster finds no room for within ``placement_timeout_s`` (a replacement after its
node died, a cluster that other jobs fill) is given up and its clips go to the others, so a build never
waits forever; with no actor placed at all it stops with the actors' needs.

Ray is imported only when the featurizer starts. The driver must already be connected (``ray.init``,
or the command's ``--ray`` session); every node must see the recordings at the driver's paths.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .build import BuildOptions, ClipResult, FeatureModels, PlannedClip, Work, clip_result, dataset_settings
from .shard_format import DatasetSettings, Failure


@dataclass(frozen=True)
class ActorSize:
    """What each feature actor holds.

    Attributes:
        actors: how many actors.
        cpus: CPUs each (also its torch threads).
        gpus: GPUs each (fractions share one); 0 = CPU actors.
        retries: replacements of each actor that dies, and tries again of each clip it held.
        in_flight: clips sent to one actor ahead of their results.
        placement_timeout_s: how long an actor may wait for room on the cluster before it is given up.
    """

    actors: int = 1
    cpus: float = 1.0
    gpus: float = 0.0
    retries: int = 2
    in_flight: int = 2
    placement_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.actors < 1 or self.in_flight < 1:
            raise ValueError(f"need at least one actor and one clip in flight, got {self}")
        if self.retries < 0 or self.cpus < 0 or self.gpus < 0 or self.cpus + self.gpus == 0:
            raise ValueError(f"actors need a CPU or a GPU, and retries cannot be negative, got {self}")


_WAIT_S = 0.5  # the longest the driver waits for a result without looking at its actor's placement


class FeatureWorker:
    """The Ray actor: loads the feature models once (at its first call, so that `placed` answers as soon
    as Ray has found it room), then turns clips into features."""

    def __init__(self, load_models: Callable[[], FeatureModels], threads: int) -> None:
        self._load = load_models
        self._threads = threads
        self._models: FeatureModels | None = None

    def placed(self) -> bool:
        return True

    @property
    def models(self) -> FeatureModels:
        if self._models is None:
            import torch

            torch.set_num_threads(max(1, self._threads))
            self._models = self._load()
        return self._models

    def settings(self, options: BuildOptions) -> DatasetSettings:
        return dataset_settings(self.models, options)

    def features(self, clip: PlannedClip, options: BuildOptions) -> ClipResult:
        return clip_result(clip, self.models, options)


class _Unplaced(Exception):
    """An actor waited longer than the placement timeout for room on the cluster."""


@dataclass
class _Sent:
    """A clip out on an actor: the result's ref, the actor (index and handle) and its tries so far."""

    clip: PlannedClip
    ref: Any
    index: int
    actor: Any
    tries: int = 1
    alone: bool = False  # sent after an actor died with it: nothing is queued behind it


class RayFeaturizer:
    """Clip features on Ray actors (see the module docstring); a context manager that removes them.

    An actor that dies (its process, or its node) is replaced by a new one, ``retries`` times per
    actor; each clip it held is sent again alone (nothing queued behind it, so one clip that kills its
    actor cannot take others with it), up to ``retries`` times, then fails with Ray's reason.

    Args:
        load_models: builds the models inside each actor (picklable: a module-level function, or a
            ``functools.partial`` of one).
        size: how many actors, and what each holds.
    """

    def __init__(self, load_models: Callable[[], FeatureModels], size: ActorSize) -> None:
        import ray

        self._worker = ray.remote(FeatureWorker).options(num_cpus=size.cpus, num_gpus=size.gpus)
        self._load = ray.put(load_models)  # kept here: replacement actors load from the same object
        self.size = size
        self._placed: list[Any] = []  # per actor: the ref its `placed` call answers once it has room
        self._spawned: list[float] = []  # per actor: when it was started
        self._abandoned: list[Any] = []  # actors given up for want of room (their clips are not retries)
        self._actors: list[Any] = []
        for index in range(size.actors):
            self._actors.append(None)
            self._spawn(index)
        self._replaced = [0] * size.actors
        self._busy = [0] * size.actors  # clips out per actor
        self._alone: set[int] = set()  # actors running a clip alone
        self._gone: set[int] = set()  # actors that died more often than the retries allow

    def _spawn(self, index: int) -> None:
        actor = self._worker.remote(self._load, int(self.size.cpus))
        placed = actor.placed.remote()
        if index < len(self._placed):
            self._placed[index], self._spawned[index] = placed, time.monotonic()
        else:
            self._placed.append(placed)
            self._spawned.append(time.monotonic())
        self._actors[index] = actor

    def __enter__(self) -> RayFeaturizer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the actors (their models with them)."""
        import ray

        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []

    def settings(self, options: BuildOptions) -> DatasetSettings:
        """The settings the actors' models give (they load the same models).

        Raises:
            RayError: the first actor could not load its models; Ray's message says why.
        """
        import ray

        while True:
            live = [i for i in range(len(self._actors)) if i not in self._gone]
            placed = [i for i in live if ray.wait([self._placed[i]], timeout=0)[0]]
            if placed:
                return ray.get(self._actors[placed[0]].settings.remote(options))  # type: ignore[no-any-return]
            for i in live:
                with contextlib.suppress(_Unplaced):  # given up; RuntimeError once none is left
                    self._check_placement(i)
            ray.wait([self._placed[i] for i in live], num_returns=1, timeout=_WAIT_S)

    def features(
        self, work: Iterable[Work], options: BuildOptions
    ) -> Iterator[tuple[Work, ClipResult | None]]:
        """Each item of ``work`` with its result, in order (see `build.ClipFeaturizer`).

        Raises:
            RuntimeError: every actor died more often than the retries allow.
        """
        import ray
        from ray.exceptions import RayActorError, RayError

        window: deque[Work | _Sent] = deque()
        items = iter(work)
        exhausted = False
        while True:
            while not exhausted and self._room():
                item = next(items, None)
                if item is None:
                    exhausted = True
                elif isinstance(item, Failure):
                    window.append(item)
                else:
                    window.append(self._send(item, options, alone=False))
            if not window:
                return
            head = window.popleft()
            if not isinstance(head, _Sent):
                yield head, None
                continue
            while True:
                try:
                    while not ray.wait([head.ref], timeout=_WAIT_S)[0]:
                        if head.actor is self._actors[head.index]:
                            self._check_placement(head.index)
                    result: ClipResult = ray.get(head.ref)
                except _Unplaced:  # no room for its actor: another actor takes it (not a retry)
                    self._settle(head)
                    head = self._send(head.clip, options, alone=head.alone, tries=head.tries)
                    continue
                except RayActorError as exc:  # its actor died: replace it, send the clip again alone
                    self._lost(head)
                    self._settle(head)
                    if any(head.actor is actor for actor in self._abandoned):
                        head = self._send(head.clip, options, alone=head.alone, tries=head.tries)
                        continue
                    if head.tries <= self.size.retries:
                        head = self._send(head.clip, options, alone=True, tries=head.tries + 1)
                        continue
                    result = f"{type(exc).__name__}: {_first_line(exc)}"
                except RayError as exc:  # the task itself failed (its result could not come back, ...)
                    self._settle(head)
                    result = f"{type(exc).__name__}: {_first_line(exc)}"
                else:
                    self._settle(head)
                yield head.clip, result
                break

    def _room(self) -> bool:
        open_actors = [i for i in range(len(self._actors)) if i not in self._gone and i not in self._alone]
        return sum(self._busy[i] for i in open_actors) < self.size.in_flight * len(open_actors)

    def _send(self, clip: PlannedClip, options: BuildOptions, *, alone: bool, tries: int = 1) -> _Sent:
        live = [i for i in range(len(self._actors)) if i not in self._gone and i not in self._alone]
        if not live:
            live = [i for i in range(len(self._actors)) if i not in self._gone]
        if not live:
            raise RuntimeError(self._no_actor_left())
        index = min(live, key=lambda i: self._busy[i])
        actor = self._actors[index]
        self._busy[index] += 1
        if alone:
            self._alone.add(index)
        return _Sent(clip, actor.features.remote(clip, options), index, actor, tries, alone)

    def _settle(self, sent: _Sent) -> None:
        """``sent`` is back (or lost): its actor holds one clip fewer."""
        if sent.actor is self._actors[sent.index]:
            self._busy[sent.index] = max(0, self._busy[sent.index] - 1)
            if sent.alone:
                self._alone.discard(sent.index)

    def _lost(self, sent: _Sent) -> None:
        """``sent``'s actor died: replace it once (the first of its clips to report it), or give it up."""
        import ray

        index = sent.index
        if sent.actor is not self._actors[index] or index in self._gone:
            return  # already replaced, or given up
        ray.kill(sent.actor, no_restart=True)
        self._busy[index] = 0
        self._alone.discard(index)
        if self._replaced[index] < self.size.retries:
            self._replaced[index] += 1
            self._spawn(index)
        else:
            self._gone.add(index)

    def _check_placement(self, index: int) -> None:
        """Give actor ``index`` up when it has waited longer than the placement timeout for room.

        Raises:
            _Unplaced: it was given up (its clips go to the others).
            RuntimeError: no actor is left, and none was ever placed: the cluster has no room.
        """
        import ray

        if index in self._gone or ray.wait([self._placed[index]], timeout=0)[0]:
            return
        if time.monotonic() - self._spawned[index] <= self.size.placement_timeout_s:
            return
        actor = self._actors[index]
        self._abandoned.append(actor)
        ray.kill(actor, no_restart=True)
        self._gone.add(index)
        self._busy[index] = 0
        self._alone.discard(index)
        if len(self._gone) == len(self._actors):
            raise RuntimeError(self._no_actor_left())
        raise _Unplaced

    def _no_actor_left(self) -> str:
        if self._abandoned:
            needs = f"{self.size.cpus:g} CPU" + (f", {self.size.gpus:g} GPU" if self.size.gpus else "")
            return (
                f"no room on the Ray cluster for a feature actor ({needs}) within "
                f"{self.size.placement_timeout_s:g} s: other jobs hold its resources, or nodes died"
            )
        return "every Ray actor died more often than --ray-retries allows"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
