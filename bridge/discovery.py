"""ZeroConf (mDNS/DNS-SD): advertise the daemon as ``_osc._udp`` and ``_osc._tcp``, and find it.

TXT keys follow the OSC 1.1 proposal (``txtvers``, ``version``, ``framing`` for TCP, ``types``,
``uri``) plus ours: ``api`` (protocol version), ``model``, ``device``, ``format`` (``ambix``),
``auth`` (``token``/``none``), ``udp_port`` and ``tcp_port`` (so either record leads to both).
Interfaces are always explicit: loopback by default, never "all" unless the daemon binds a wildcard.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
import queue
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import const

log = logging.getLogger(__name__)

OSC_TYPES = "ifdhsN"  # OSC type tags the daemon accepts


@dataclass(frozen=True)
class DiscoveredDaemon:
    name: str
    host: str
    udp_port: int
    tcp_port: int | None
    properties: dict[str, str]


def txt_properties(
    *,
    transport: str,
    host: str,
    port: int,
    udp_port: int,
    tcp_port: int | None,
    model_id: str,
    device: str,
    auth_required: bool,
) -> dict[str, str]:
    """TXT record for one advertised service (``transport`` is "udp" or "tcp")."""
    props = {
        "txtvers": "1",
        "version": "1.1",
        "types": OSC_TYPES,
        "uri": f"osc.{transport}://{host}:{port}{const.ADDRESS_PREFIX}",
        "api": str(const.PROTOCOL_VERSION),
        "model": model_id,
        "device": device,
        "format": const.OUTPUT_FORMAT,
        "auth": "token" if auth_required else "none",
        "udp_port": str(udp_port),
    }
    if tcp_port is not None:
        props["tcp_port"] = str(tcp_port)
    if transport == "tcp":
        props["framing"] = "slip"
    return props


def interfaces_for(host: str) -> list[str] | None:
    """Zeroconf interfaces for a bind address: loopback and specific addresses stay on themselves;
    a wildcard returns None (= all interfaces)."""
    address = ipaddress.ip_address(socket.gethostbyname(host))
    if address.is_unspecified:
        return None
    return [str(address)]


def _zeroconf(interfaces: Sequence[str] | None) -> Any:
    from zeroconf import InterfaceChoice, IPVersion, Zeroconf

    chosen = InterfaceChoice.All if interfaces is None else list(interfaces)
    return Zeroconf(interfaces=chosen, ip_version=IPVersion.V4Only)


class Advertiser:
    """Registers the daemon's services on start and unregisters them (goodbye packets) on close.

    Args:
        host: the bind address (its interface is the one advertised on).
        udp_port, tcp_port: bound ports (tcp_port None = no TCP service).
        model_id, device: from the engine.
        auth_required: whether requests need a token.
        interfaces: override the interfaces (default `interfaces_for(host)`).
    """

    def __init__(
        self,
        *,
        host: str,
        udp_port: int,
        tcp_port: int | None,
        model_id: str,
        device: str,
        auth_required: bool,
        interfaces: Sequence[str] | None = None,
    ) -> None:
        self._host = host
        self._udp_port = udp_port
        self._tcp_port = tcp_port
        self._model_id = model_id
        self._device = device
        self._auth = auth_required
        self._interfaces = list(interfaces) if interfaces is not None else interfaces_for(host)
        self._zc: Any = None
        self._infos: list[Any] = []
        self._registration: concurrent.futures.Future[None] | None = None

    def _addresses(self) -> list[bytes]:
        if self._interfaces is None:
            from zeroconf import get_all_addresses  # type: ignore[attr-defined]

            return [socket.inet_aton(a) for a in get_all_addresses()]
        return [socket.inet_aton(a) for a in self._interfaces]

    def start(self) -> None:
        """Begin registering (probing + announcing, ~1.5 s on loopback) in zeroconf's own loop.

        Returns at once; `wait_registered` blocks until the records are out.
        """
        from zeroconf import ServiceInfo

        short_host = socket.gethostname().split(".")[0] or "host"
        instance = f"{const.SERVICE_INSTANCE_PREFIX} {short_host} {self._udp_port}"[:63]
        server = f"visage-{short_host}.local."
        services = [("udp", const.SERVICE_TYPE_UDP, self._udp_port)]
        if self._tcp_port is not None:
            services.append(("tcp", const.SERVICE_TYPE_TCP, self._tcp_port))
        for transport, type_, port in services:
            props = txt_properties(
                transport=transport,
                host=self._host,
                port=port,
                udp_port=self._udp_port,
                tcp_port=self._tcp_port,
                model_id=self._model_id,
                device=self._device,
                auth_required=self._auth,
            )
            self._infos.append(
                ServiceInfo(
                    type_,
                    f"{instance}.{type_}",
                    addresses=self._addresses(),
                    port=port,
                    properties=props,
                    server=server,
                )
            )
        self._zc = _zeroconf(self._interfaces)
        self._registration = asyncio.run_coroutine_threadsafe(self._register(), self._zc.loop)

    async def _register(self) -> None:
        # both services probe and announce concurrently (serially this took ~3.3 s on loopback)
        zc = self._zc
        assert zc is not None
        broadcasts = await asyncio.gather(
            *(zc.async_register_service(info, allow_name_change=True) for info in self._infos)
        )
        await asyncio.gather(*broadcasts)

    def wait_registered(self, timeout_s: float | None = None) -> list[str]:
        """Block until registration finished; return the service names (renamed if they clashed)."""
        assert self._registration is not None, "not started"
        self._registration.result(const.ZEROCONF_REGISTER_TIMEOUT_S if timeout_s is None else timeout_s)
        return [info.name for info in self._infos]

    def close(self) -> None:
        """Unregister (sends goodbyes) and close; safe to call twice."""
        if self._zc is None:
            return
        if self._registration is not None:
            try:
                self._registration.result(const.ZEROCONF_REGISTER_TIMEOUT_S)
            except Exception as exc:  # zeroconf raises its own types; never block shutdown on them
                log.warning("zeroconf registration failed: %s", exc)
        for info in self._infos:
            try:
                self._zc.unregister_service(info)
            except Exception as exc:
                log.warning("unregistering %s failed: %s", info.name, exc)
        self._infos.clear()
        self._zc.close()
        self._zc = None


def browse(
    *,
    timeout_s: float | None = None,
    interfaces: Sequence[str] | None = const.LOOPBACK_INTERFACES,
    first: bool = False,
) -> list[DiscoveredDaemon]:
    """Find ViSAGe daemons advertised as ``_osc._udp`` (other OSC services are skipped).

    Args:
        timeout_s: how long to listen (default `const.DISCOVERY_TIMEOUT_S`).
        interfaces: where to look; loopback by default. None = all interfaces.
        first: return as soon as one daemon is resolved.
    """
    from zeroconf import ServiceBrowser, ServiceListener, Zeroconf

    timeout_s = const.DISCOVERY_TIMEOUT_S if timeout_s is None else timeout_s
    names: queue.Queue[str] = queue.Queue()

    class _Listener(ServiceListener):
        def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            names.put(name)

        def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            pass

        def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            pass

    found: list[DiscoveredDaemon] = []
    zc = _zeroconf(interfaces)
    browser = ServiceBrowser(zc, const.SERVICE_TYPE_UDP, _Listener())
    try:
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                name = names.get(timeout=remaining)
            except queue.Empty:
                break
            info = zc.get_service_info(const.SERVICE_TYPE_UDP, name, const.RESOLVE_TIMEOUT_MS)
            if info is None:
                continue
            props = {k: v or "" for k, v in info.decoded_properties.items()}
            if "api" not in props or props.get("format") != const.OUTPUT_FORMAT:
                continue
            addresses = info.parsed_addresses()
            if not addresses or info.port is None:
                continue
            tcp = props.get("tcp_port")
            found.append(
                DiscoveredDaemon(
                    name, addresses[0], info.port, int(tcp) if tcp and tcp.isdigit() else None, props
                )
            )
            if first:
                break
    finally:
        browser.cancel()
        zc.close()
    return found
