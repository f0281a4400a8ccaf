"""`BridgeSettings`: the daemon's configuration, validated once (from the CLI or from tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import const
from .security import SettingsError, check_bind


def default_state_dir() -> Path:
    """The per-user data folder (platformdirs), e.g. ``~/.local/share/visage`` on Linux."""
    import platformdirs

    return Path(platformdirs.user_data_dir(const.APP_NAME, appauthor=False))


@dataclass(frozen=True, kw_only=True)
class BridgeSettings:
    """Everything `daemon.Daemon` needs besides the engine.

    Attributes:
        host: address both transports bind (loopback by default).
        udp_port: UDP port; 0 = any free port (the bound port is in the endpoint file).
        tcp_port: TCP (OSC 1.1, SLIP) port; 0 = any free port; None = no TCP transport.
        state_dir: the database, endpoint file, lock, log and default outputs live here.
        max_batch: most jobs per engine call.
        allow_dirs: folders requests may read media from and write outputs to.
        token: shared secret every request must carry (required off loopback).
        model: the ``--model`` string (selects the engine factory).
        device: the ``--device`` string handed to the engine factory.
        zeroconf: advertise the service with mDNS/DNS-SD.
        zeroconf_interfaces: interfaces for zeroconf; None = derived from ``host`` (loopback stays
            on 127.0.0.1, a specific address uses that address, a wildcard uses all interfaces).
        web_port: HTTP port of the web page on ``host``; 0 = any free port; None = no web page
            (``visage serve`` turns it on at 17732 unless ``--no-web``).
        web_upload_limit: largest file the web page may upload, bytes.
    """

    host: str = const.DEFAULT_HOST
    udp_port: int = const.DEFAULT_UDP_PORT
    tcp_port: int | None = const.DEFAULT_TCP_PORT
    state_dir: Path = field(default_factory=default_state_dir)
    max_batch: int = const.DEFAULT_MAX_BATCH
    allow_dirs: tuple[Path, ...] = field(default_factory=lambda: (Path.home(),))
    token: str | None = None
    model: str = const.DEFAULT_MODEL
    device: str = "auto"
    zeroconf: bool = True
    zeroconf_interfaces: tuple[str, ...] | None = None
    web_port: int | None = None
    web_upload_limit: int = const.DEFAULT_WEB_UPLOAD_LIMIT_BYTES

    def __post_init__(self) -> None:
        check_bind(self.host, self.token)
        if self.max_batch < 1:
            raise SettingsError(f"--max-batch must be >= 1, got {self.max_batch}")
        for name, port in (
            ("--port", self.udp_port),
            ("--tcp-port", self.tcp_port),
            ("--web-port", self.web_port),
        ):
            if port is not None and not 0 <= port <= 65535:
                raise SettingsError(f"{name} must be 0..65535, got {port}")
        if self.web_upload_limit < 1:
            raise SettingsError(f"--web-upload-limit must be at least 1 byte, got {self.web_upload_limit}")
        if not self.allow_dirs:
            raise SettingsError("at least one --allow-dir is needed")
        for folder in self.allow_dirs:
            if not folder.is_absolute():
                raise SettingsError(f"--allow-dir must be absolute, got {folder}")

    @property
    def outputs_dir(self) -> Path:
        return self.state_dir / const.OUTPUTS_DIR_NAME

    @property
    def uploads_dir(self) -> Path:
        return self.state_dir / const.UPLOADS_DIR_NAME

    @property
    def db_path(self) -> Path:
        return self.state_dir / const.STATE_DB_NAME

    @property
    def endpoint_path(self) -> Path:
        return self.state_dir / const.ENDPOINT_FILE_NAME

    @property
    def lock_path(self) -> Path:
        return self.state_dir / const.LOCK_FILE_NAME

    @property
    def log_path(self) -> Path:
        return self.state_dir / const.LOG_FILE_NAME
