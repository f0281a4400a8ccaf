"""How many actors a cluster holds and how batches shrink, against placement one actor at a time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from visage.bridge.cluster.actor_plan import ActorShape, actor_count, actor_shape, actors_on, batch_size
from visage.bridge.cluster.ray_session import RayNode


def _node(name: str, **resources: float) -> RayNode:
    return RayNode(name, name, name, resources)


def _placed_one_by_one(node: RayNode, shape: ActorShape) -> int:
    """The oracle: take the shape's resources from what is left until one of them runs out (in tenths,
    integers, so that 0.1 GPU fits ten times)."""
    left = {name: round(amount * 10) for name, amount in node.resources.items()}
    needs = {name: round(amount * 10) for name, amount in shape.needs().items()}
    placed = 0
    while needs and all(left.get(name, 0) >= amount for name, amount in needs.items()):
        for name, amount in needs.items():
            left[name] -= amount
        placed += 1
    return placed


tenths = st.integers(0, 40).map(lambda n: n / 10)


@given(
    nodes=st.lists(st.tuples(st.integers(0, 16), st.integers(0, 4), st.integers(0, 3)), max_size=5),
    cpus=st.integers(0, 30).map(lambda n: n / 10),
    gpus=tenths,
    custom=st.sampled_from([0.0, 1.0, 0.5]),
    cap=st.none() | st.integers(1, 20),
)
def test_actor_count_matches_placing_actors_one_by_one(
    nodes: list[tuple[int, int, int]], cpus: float, gpus: float, custom: float, cap: int | None
) -> None:
    if cpus == 0 and gpus == 0:
        return
    cluster = [_node(f"n{i}", CPU=c, GPU=g, pinned=p) for i, (c, g, p) in enumerate(nodes)]
    shape = ActorShape(cpus, gpus, {"pinned": custom} if custom else {})
    expected = sum(_placed_one_by_one(node, shape) for node in cluster)
    if cap is not None:
        expected = min(expected, cap)
    assert actor_count(cluster, shape, cap) == expected


def test_gpu_actors_are_the_default_only_where_there_are_gpus() -> None:
    cpu_only = [_node("a", CPU=8), _node("b", CPU=4)]
    with_gpus = [_node("a", CPU=8), _node("b", CPU=8, GPU=2)]
    assert actor_shape(cpu_only) == ActorShape(1.0, 0.0)
    assert actor_shape(with_gpus) == ActorShape(1.0, 1.0)
    assert actor_shape(with_gpus, gpus_per_actor=0) == ActorShape(1.0, 0.0)  # CPU actors on request
    assert actor_count(with_gpus, actor_shape(with_gpus)) == 2  # one per GPU, none on the CPU node
    assert actor_count(with_gpus, actor_shape(with_gpus, gpus_per_actor=0.5)) == 4
    assert actors_on(with_gpus[1], ActorShape(4.0, 0.0)) == 2


def test_an_actor_shape_says_its_device_and_threads() -> None:
    assert (ActorShape(2.0, 1.0).device, ActorShape(2.0, 1.0).threads) == ("cuda", 2)
    assert (ActorShape(0.5, 0.0).device, ActorShape(0.5, 0.0).threads) == ("cpu", 1)


@pytest.mark.parametrize(("cpus", "gpus"), [(0.0, 0.0), (-1.0, None), (1.0, -0.5)])
def test_impossible_shapes_are_refused(cpus: float, gpus: float | None) -> None:
    with pytest.raises(ValueError, match="--ray-"):
        actor_shape([_node("a", CPU=4)], cpus_per_actor=cpus, gpus_per_actor=gpus)


@given(remaining=st.integers(1, 500), actors=st.integers(1, 16), largest=st.integers(1, 32))
def test_batches_shrink_so_that_every_actor_gets_a_share(remaining: int, actors: int, largest: int) -> None:
    size = batch_size(remaining, actors, largest)
    assert 1 <= size <= largest
    if remaining >= actors * largest:
        assert size == largest
    else:  # the actors, each taking this many, cover what is left; one fewer each would not
        assert size * actors >= remaining
        assert size == 1 or (size - 1) * actors < remaining
