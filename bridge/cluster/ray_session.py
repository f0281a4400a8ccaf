"""The connection to a Ray cluster that ``--ray ADDRESS`` names, and what the cluster holds.

``local`` starts Ray on this machine for the run (and stops it afterwards); ``auto`` joins the cluster
this machine belongs to (``ray start`` was run here); ``ray://HOST:PORT`` joins one through Ray Client
(port 10001 by default on the head); ``HOST:PORT`` joins a cluster by its head's GCS address from a
machine of that cluster. Ray is imported only when `connect` runs, so that ``visage --help`` and the
bridge's importers never pay for it; a missing Ray is one clear line (`RayUnavailable`).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

RAY_INSTALL_HINT = "pip install 'visage[ray]'"
CLIENT_PORT = 10001  # Ray Client's default port on the head node (``ray start --head``)
REACH_TIMEOUT_S = 5.0  # how long a HOST:PORT may take to accept a connection before "no cluster answered"

AddressKind = Literal["local", "auto", "client", "gcs"]


class RayUnavailable(RuntimeError):
    """Ray is not installed, or no cluster answered at the address given."""


@dataclass(frozen=True)
class RayAddress:
    """A parsed ``--ray`` value.

    Attributes:
        kind: ``local`` (start Ray here), ``auto`` (the cluster this machine joined), ``client``
            (``ray://HOST:PORT``) or ``gcs`` (``HOST:PORT`` of the head's GCS).
        target: what `ray.init` is given as ``address``.
    """

    kind: AddressKind
    target: str


def parse_ray_address(text: str) -> RayAddress:
    """Parse ``--ray ADDRESS``.

    Raises:
        ValueError: not ``local``, ``auto``, ``ray://HOST[:PORT]`` or ``HOST:PORT``.
    """
    value = text.strip()
    if value in ("local", "auto"):
        return RayAddress(value, value)  # type: ignore[arg-type]  # narrowed by the test above
    expected = f"expected local, auto, ray://HOST[:PORT] or HOST:PORT, got {text!r}"
    if value.startswith("ray://"):
        host, port = _host_port(value[len("ray://") :], default_port=CLIENT_PORT, expected=expected)
        return RayAddress("client", f"ray://{host}:{port}")
    host, port = _host_port(value, default_port=None, expected=expected)
    return RayAddress("gcs", f"{host}:{port}")


def _host_port(text: str, *, default_port: int | None, expected: str) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, ""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # an IPv6 literal
    if not host or any(c in host for c in "/ ?#@"):
        raise ValueError(f"--ray: {expected}")
    if not port_text:
        if default_port is None:
            raise ValueError(f"--ray: {expected}")
        return _bracket(host), default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"--ray: port {port_text!r} is not a number from 1 to 65535 ({expected})")
    return _bracket(host), int(port_text)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class RayNode:
    """One live node of the cluster.

    Attributes:
        node_id: Ray's node id (hex).
        hostname: the node's host name.
        ip: the address Ray reaches it at.
        resources: its total resources (``CPU``, ``GPU``, ``memory``, custom ones).
    """

    node_id: str
    hostname: str
    ip: str
    resources: Mapping[str, float] = field(default_factory=dict)

    @property
    def cpus(self) -> float:
        return float(self.resources.get("CPU", 0.0))

    @property
    def gpus(self) -> float:
        return float(self.resources.get("GPU", 0.0))

    @property
    def label(self) -> str:
        """How messages name the node: ``hostname (ip)``."""
        return f"{self.hostname} ({self.ip})" if self.hostname and self.hostname != self.ip else self.ip


def nodes_from_ray(entries: list[Mapping[str, Any]]) -> tuple[RayNode, ...]:
    """The live nodes of ``ray.nodes()``'s answer."""
    return tuple(
        RayNode(
            node_id=str(entry.get("NodeID", "")),
            hostname=str(entry.get("NodeManagerHostname", "")),
            ip=str(entry.get("NodeManagerAddress", "")),
            resources=dict(entry.get("Resources", {})),
        )
        for entry in entries
        if entry.get("Alive", entry.get("alive", False))
    )


@dataclass(frozen=True)
class RaySession:
    """A connected driver.

    Attributes:
        address: the parsed ``--ray`` value.
        started_here: this process started the Ray instance (``local``), and stops it at the end.
    """

    address: RayAddress
    started_here: bool

    def nodes(self) -> tuple[RayNode, ...]:
        """The cluster's live nodes, now."""
        import ray

        return nodes_from_ray(ray.nodes())

    def total(self, resource: str) -> float:
        """How much of ``resource`` (``CPU``, ``GPU``, a custom one) the live nodes hold together."""
        return sum(float(node.resources.get(resource, 0.0)) for node in self.nodes())

    def describe(self) -> str:
        """One line for the user: the Ray version, nodes, CPUs and GPUs."""
        import ray

        nodes = self.nodes()
        cpus = sum(n.cpus for n in nodes)
        gpus = sum(n.gpus for n in nodes)
        where = "started here" if self.started_here else f"at {self.address.target}"
        return f"Ray {ray.__version__} {where}: {len(nodes)} node(s), {cpus:g} CPU(s), {gpus:g} GPU(s)"


def _check_reachable(parsed: RayAddress, address: str) -> None:
    """Fail at once when nothing listens at a ``HOST:PORT`` (a wrong port, a head not started): Ray itself
    retries such an address for minutes, printing only its own warnings.

    Raises:
        RayUnavailable: the host's port refused or did not answer within `REACH_TIMEOUT_S`.
    """
    host, _, port = parsed.target.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise RayUnavailable(f"--ray: no Ray cluster answered at {address}: {reason}") from exc


@contextmanager
def connect(
    address: str,
    *,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    object_store_mb: int | None = None,
) -> Iterator[RaySession]:
    """Connect this process to the Ray cluster ``address`` names (see the module docstring) for a block.

    A process already connected (tests, a notebook) keeps its connection: the session uses it and leaves
    it open. Otherwise the driver disconnects at the end, and a ``local`` instance stops.

    Args:
        address: ``local``, ``auto``, ``ray://HOST[:PORT]`` or ``HOST:PORT``.
        num_cpus: CPUs a ``local`` instance offers (default: all of this machine's).
        num_gpus: GPUs a ``local`` instance offers (default: those Ray detects).
        object_store_mb: a ``local`` instance's object store size (default: Ray's).

    Raises:
        ValueError: a malformed address.
        RayUnavailable: Ray is not installed or no cluster answered.
    """
    parsed = parse_ray_address(address)
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable(f"--ray needs Ray, which is not installed ({RAY_INSTALL_HINT})") from exc
    if ray.is_initialized():
        yield RaySession(parsed, started_here=False)
        return
    if parsed.kind in ("gcs", "client"):
        _check_reachable(parsed, address)
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if parsed.kind == "local":
        options.update(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False)
        if object_store_mb is not None:
            options["object_store_memory"] = object_store_mb * 1024 * 1024
    try:
        ray.init(address=parsed.target, **options)
    except Exception as exc:  # ConnectionError, RuntimeError, grpc errors: one line for the user
        local = parsed.kind == "local"
        what = "could not start Ray here" if local else f"no Ray cluster answered at {address}"
        raise RayUnavailable(f"--ray: {what}: {exc}") from exc
    try:
        yield RaySession(parsed, started_here=parsed.kind == "local")
    finally:
        ray.shutdown()
