"""``--ray ADDRESS`` parsing, the nodes of ``ray.nodes()`` and the ``--ray-*`` options: no Ray needed."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from visage.bridge.cluster.ray_generator import ray_options
from visage.bridge.cluster.ray_session import (
    CLIENT_PORT,
    RayAddress,
    RayNode,
    RayUnavailable,
    connect,
    nodes_from_ray,
    parse_ray_address,
)
from visage.bridge.fill.commands import add_fill_arguments, run_fill


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("local", RayAddress("local", "local")),
        (" auto ", RayAddress("auto", "auto")),
        ("ray://head", RayAddress("client", f"ray://head:{CLIENT_PORT}")),
        ("ray://10.0.0.5:10001", RayAddress("client", "ray://10.0.0.5:10001")),
        ("ray://[::1]:7000", RayAddress("client", "ray://[::1]:7000")),
        ("head.example.org:6379", RayAddress("gcs", "head.example.org:6379")),
    ],
)
def test_addresses_ray_understands(text: str, expected: RayAddress) -> None:
    assert parse_ray_address(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "expected local, auto"),
        ("remote", "expected local, auto"),  # a bare host has no GCS port
        ("ray://", "expected local, auto"),
        ("ray://head/path", "expected local, auto"),
        ("head:0", "port '0'"),
        ("head:65536", "port '65536'"),
        ("ray://head:port", "port 'port'"),
    ],
)
def test_malformed_addresses_are_named(text: str, says: str) -> None:
    with pytest.raises(ValueError, match="--ray") as error:
        parse_ray_address(text)
    assert says in str(error.value) and repr(text) in str(error.value)


@given(
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True),
    port=st.integers(1, 65535),
)
def test_every_host_and_port_round_trips(host: str, port: int) -> None:
    assert parse_ray_address(f"ray://{host}:{port}") == RayAddress("client", f"ray://{host}:{port}")
    assert parse_ray_address(f"{host}:{port}") == RayAddress("gcs", f"{host}:{port}")


def test_live_nodes_are_read_from_ray_nodes() -> None:
    answer = [
        {
            "NodeID": "aa",
            "Alive": True,
            "NodeManagerAddress": "10.0.0.5",
            "NodeManagerHostname": "gpu-1",
            "Resources": {"CPU": 16.0, "GPU": 2.0, "node:10.0.0.5": 1.0},
        },
        {"NodeID": "bb", "Alive": False, "NodeManagerAddress": "10.0.0.6", "NodeManagerHostname": "gone"},
        {"NodeID": "cc", "Alive": True, "NodeManagerAddress": "10.0.0.7", "NodeManagerHostname": "10.0.0.7"},
    ]
    nodes = nodes_from_ray(answer)
    assert [n.node_id for n in nodes] == ["aa", "cc"]
    assert (nodes[0].cpus, nodes[0].gpus, nodes[1].cpus) == (16.0, 2.0, 0.0)
    assert nodes[0].label == "gpu-1 (10.0.0.5)"
    assert nodes[1].label == "10.0.0.7"  # no host name beyond the address: said once
    assert RayNode("x", "", "10.0.0.8").label == "10.0.0.8"


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_fill_arguments(parser)
    return parser.parse_args(list(argv))


def _fill_args(*extra: str) -> argparse.Namespace:
    return _parse("cut.otio", "-o", "out.otio", *extra)


def test_the_ray_options_reach_the_generator_as_given() -> None:
    given = ["--ray", "ray://head", "--ray-actors", "3", "--ray-retries", "0", "--ray-gpus-per-actor", "0.5"]
    args = _fill_args(*given)
    options = ray_options(args, batch_size=6)
    assert (options.address, options.max_actors, options.retries) == ("ray://head", 3, 0)
    assert (options.gpus_per_actor, options.cpus_per_actor, options.batch_size) == (0.5, 1.0, 6)
    defaults = ray_options(_fill_args("--ray", "local"), batch_size=4)
    assert (defaults.gpus_per_actor, defaults.max_actors, defaults.retries) == (None, None, 2)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--ray", "nowhere"], "--ray: expected"),
        (["--ray", "auto", "--ray-actors", "0"], "--ray-actors"),
        (["--ray", "auto", "--ray-retries", "-1"], "--ray-retries"),
        (["--ray", "auto", "--ray-cpus-per-actor", "-1"], "--ray-cpus-per-actor"),
    ],
)
def test_ray_options_out_of_range_are_named(extra: list[str], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        ray_options(_fill_args(*extra), batch_size=4)


def test_without_ray_installed_fill_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import opentimelineio as otio
    from opentimelineio.opentime import RationalTime, TimeRange

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    with pytest.raises(RayUnavailable, match=re.escape("pip install 'visage[ray]'")), connect("local"):
        pass
    media = tmp_path / "clip.mp4"
    media.write_bytes(b"not decoded: the run stops before")
    frames = TimeRange(RationalTime(0, 24), RationalTime(24, 24))
    clip = otio.schema.Clip("a", otio.schema.ExternalReference(str(media), frames), frames)
    edit = tmp_path / "cut.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(tracks=[otio.schema.Track(children=[clip])]), str(edit))
    out = str(tmp_path / "out.otio")
    args = _parse(str(edit), "-o", out, "--ray", "local", "--model", "tiny-random", "--no-progress")
    assert run_fill(args) == 2
    assert "--ray needs Ray, which is not installed (pip install 'visage[ray]')" in capsys.readouterr().err


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_address_where_nothing_listens_fails_at_once_naming_it(scheme: str) -> None:
    """A wrong port must not leave the user waiting while Ray retries it for minutes."""
    pytest.importorskip("ray")
    import socket

    with socket.socket() as unused:  # bound, never listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        address = f"{scheme}127.0.0.1:{unused.getsockname()[1]}"
        with pytest.raises(RayUnavailable, match=re.escape(f"--ray: no Ray cluster answered at {address}: ")):
            with connect(address):
                pass
