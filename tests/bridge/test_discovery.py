"""ZeroConf on loopback only (interfaces=["127.0.0.1"]; never the default, which would multicast on
eth0): register, browse, resolve, unregister on shutdown."""

from __future__ import annotations

import queue
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_fixtures import fake_settings, fast_engine
from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceListener, Zeroconf

from visage.bridge import const
from visage.bridge.client import find_daemon
from visage.bridge.daemon import Daemon
from visage.bridge.discovery import Advertiser, browse, interfaces_for, txt_properties

LOOPBACK = ["127.0.0.1"]


class Events(ServiceListener):
    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.events.put(("add", name))

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.events.put(("remove", name))

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        pass

    def wait_for(self, kind: str, name: str, timeout_s: float = 5.0) -> None:
        while True:
            event = self.events.get(timeout=timeout_s)
            if event == (kind, name):
                return


@pytest.fixture
def observer() -> Iterator[tuple[Zeroconf, Events]]:
    """A second Zeroconf instance on loopback watching _osc._udp."""
    zc = Zeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only)
    events = Events()
    browser = ServiceBrowser(zc, const.SERVICE_TYPE_UDP, events)
    yield zc, events
    browser.cancel()
    zc.close()


def test_txt_properties_follow_osc_1_1_and_add_ours() -> None:
    udp = txt_properties(
        transport="udp",
        host="127.0.0.1",
        port=17730,
        udp_port=17730,
        tcp_port=17731,
        model_id="m",
        device="cuda:0",
        auth_required=False,
    )
    assert udp == {
        "txtvers": "1",
        "version": "1.1",
        "types": "ifdhsN",
        "uri": "osc.udp://127.0.0.1:17730/visage",
        "api": str(const.PROTOCOL_VERSION),
        "model": "m",
        "device": "cuda:0",
        "format": "ambix",
        "auth": "none",
        "udp_port": "17730",
        "tcp_port": "17731",
    }
    tcp = txt_properties(
        transport="tcp",
        host="127.0.0.1",
        port=17731,
        udp_port=17730,
        tcp_port=17731,
        model_id="m",
        device="cpu",
        auth_required=True,
    )
    assert tcp["framing"] == "slip" and tcp["auth"] == "token" and tcp["uri"].startswith("osc.tcp://")


def test_interfaces_follow_the_bind_address() -> None:
    assert interfaces_for("127.0.0.1") == ["127.0.0.1"]
    assert interfaces_for("localhost") == ["127.0.0.1"]
    assert interfaces_for("0.0.0.0") is None  # all interfaces, only when the daemon binds a wildcard


def test_register_browse_resolve_unregister(observer: tuple[Zeroconf, Events]) -> None:
    zc, events = observer
    advertiser = Advertiser(
        host="127.0.0.1", udp_port=40001, tcp_port=40002, model_id="fake-1", device="cpu", auth_required=False
    )
    advertiser.start()
    try:
        udp_name, tcp_name = advertiser.wait_registered()
        events.wait_for("add", udp_name)
        (found,) = browse(timeout_s=3.0, interfaces=LOOPBACK, first=True)
        assert (found.name, found.host, found.udp_port, found.tcp_port) == (
            udp_name,
            "127.0.0.1",
            40001,
            40002,
        )
        assert found.properties["model"] == "fake-1" and found.properties["format"] == "ambix"
        tcp_info = zc.get_service_info(const.SERVICE_TYPE_TCP, tcp_name, 3000)
        assert tcp_info is not None and tcp_info.port == 40002
        assert tcp_info.decoded_properties["framing"] == "slip"
    finally:
        advertiser.close()
    events.wait_for("remove", udp_name)  # goodbye packets on shutdown
    advertiser.close()  # idempotent


def test_browse_skips_other_osc_services(observer: tuple[Zeroconf, Events]) -> None:
    zc, events = observer
    other = ServiceInfo(
        const.SERVICE_TYPE_UDP,
        f"Some synth.{const.SERVICE_TYPE_UDP}",
        addresses=[socket.inet_aton("127.0.0.1")],
        port=9000,
        properties={"txtvers": "1"},
        server="synth.local.",
    )
    zc.register_service(other, cooperating_responders=True)
    try:
        events.wait_for("add", other.name)
        assert browse(timeout_s=1.0, interfaces=LOOPBACK) == []
    finally:
        zc.unregister_service(other)


def test_daemon_advertises_and_clients_find_it(tmp_path: Path, observer: tuple[Zeroconf, Events]) -> None:
    _, events = observer
    settings = fake_settings(tmp_path, zeroconf=True)
    daemon = Daemon(settings, fast_engine()).start()
    try:
        name = daemon.advertised_names[0]
        events.wait_for("add", name)
        # no endpoint file in this folder, so 'auto' falls through to ZeroConf
        address = find_daemon("auto", state_dir=tmp_path / "elsewhere", timeout_s=3.0)
        assert (address.host, address.port, address.source) == (
            "127.0.0.1",
            daemon.udp_address[1],
            "zeroconf",
        )
        assert address.tcp_port == daemon.tcp_address[1]  # type: ignore[index]
        local = find_daemon("auto", state_dir=settings.state_dir, zeroconf=False)
        assert (local.port, local.source) == (daemon.udp_address[1], "endpoint-file")
    finally:
        daemon.stop()
    events.wait_for("remove", name)
    assert not settings.endpoint_path.exists()
