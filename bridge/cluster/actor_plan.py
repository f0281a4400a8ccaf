"""How many shot actors a cluster holds, what each asks Ray for, and how many shots each batch takes.

Pure arithmetic over the nodes' resources, apart from Ray, so that it can be checked against hand
counts: an actor fits on a node when the node holds every resource it asks for; a cluster holds the sum
of what fits on each node (an actor never spans nodes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .ray_session import RayNode

_EPSILON = 1e-9  # 1 / 0.1 GPU is 9.999...: resources are counted with this much slack


@dataclass(frozen=True)
class ActorShape:
    """What one actor holds.

    Attributes:
        cpus: CPUs (its torch threads on a CPU actor).
        gpus: GPUs (fractions share one); 0 = a CPU actor.
        resources: custom Ray resources it also needs (``ray start --resources``), e.g. to keep actors
            on chosen nodes.
    """

    cpus: float = 1.0
    gpus: float = 0.0
    resources: Mapping[str, float] = field(default_factory=dict)

    @property
    def device(self) -> str:
        """The torch device the actor generates on (Ray shows a GPU actor only its own GPUs)."""
        return "cuda" if self.gpus > 0 else "cpu"

    @property
    def threads(self) -> int:
        """Torch intra-op threads: the whole CPUs it holds, at least one."""
        return max(1, math.floor(self.cpus + _EPSILON))

    def needs(self) -> dict[str, float]:
        """Every resource it asks for, by Ray's names."""
        wanted = {"CPU": self.cpus, "GPU": self.gpus, **self.resources}
        return {name: amount for name, amount in wanted.items() if amount > 0}


def actor_shape(
    nodes: Iterable[RayNode],
    *,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float | None = None,
    resources: Mapping[str, float] | None = None,
) -> ActorShape:
    """The actors' shape: ``gpus_per_actor`` None means 1 GPU when any node has a GPU, else a CPU actor.

    Raises:
        ValueError: a negative size, or an actor that asks for nothing.
    """
    if cpus_per_actor < 0 or (gpus_per_actor is not None and gpus_per_actor < 0):
        raise ValueError("--ray-cpus-per-actor and --ray-gpus-per-actor cannot be negative")
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if any(node.gpus > 0 for node in nodes) else 0.0
    if cpus_per_actor == 0 and gpus_per_actor == 0:
        raise ValueError(
            "an actor needs a CPU or a GPU: --ray-cpus-per-actor or --ray-gpus-per-actor above 0"
        )
    return ActorShape(cpus_per_actor, gpus_per_actor, dict(resources or {}))


def actors_on(node: RayNode, shape: ActorShape) -> int:
    """How many actors of ``shape`` fit on ``node`` at once."""
    fits = [
        math.floor(node.resources.get(name, 0.0) / amount + _EPSILON)
        for name, amount in shape.needs().items()
    ]
    return max(0, min(fits)) if fits else 0


def actor_count(nodes: Iterable[RayNode], shape: ActorShape, max_actors: int | None = None) -> int:
    """How many actors of ``shape`` the cluster holds, at most ``max_actors``."""
    total = sum(actors_on(node, shape) for node in nodes)
    return total if max_actors is None else min(total, max_actors)


def batch_size(remaining: int, actors: int, largest: int) -> int:
    """Shots in the next batch: ``largest`` (``--jobs``) while there is plenty, fewer towards the end so that
    every actor gets a share of the ``remaining`` shots (queued or being generated)."""
    return max(1, min(largest, math.ceil(remaining / max(1, actors))))
