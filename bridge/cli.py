"""`visage serve` and `visage submit`: argparse front ends over `daemon.Daemon` and `client.VisageClient`.

The ``visage`` command adds them as subcommands::

    serve = subparsers.add_parser("serve", help="run the local daemon", description=SERVE_DESCRIPTION)
    add_serve_arguments(serve)
    ...
    return run_serve(args, engine_factory=create_engine)   # or run_submit(args)

Until then: ``python -m visage.bridge.cli serve|submit ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import logging.handlers
import os
import sys
from pathlib import Path

from . import const
from .cli_arguments import (
    add_device_argument,
    add_direction_arguments,
    add_guidance_arguments,
    add_output_format_arguments,
    add_panorama_arguments,
    add_range_arguments,
    add_ray_arguments,
    add_seed_argument,
    add_token_argument,
)
from .engine import Engine, EngineFactory, EngineUnavailable, resolve_engine_factory

SERVE_DESCRIPTION = (
    "Run the ViSAGe daemon: load the model once, answer OSC requests (UDP and TCP/SLIP) from editors and "
    "scripts, queue and batch jobs in a state folder that survives restarts, advertise with ZeroConf."
)
SUBMIT_DESCRIPTION = "Send one clip to a running daemon and wait for its AmbiX WAV."

log = logging.getLogger(__name__)


# -- serve ---------------------------------------------------------------------------------------------


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``visage serve`` to ``parser``."""
    parser.add_argument(
        "--host", default=const.DEFAULT_HOST, help="address to bind; anything but loopback requires --token"
    )
    parser.add_argument(
        "--port", type=int, default=const.DEFAULT_UDP_PORT, help="UDP port (0 = any free port)"
    )
    parser.add_argument(
        "--tcp-port",
        type=int,
        default=const.DEFAULT_TCP_PORT,
        help="TCP (OSC 1.1, SLIP) port (0 = any free port)",
    )
    parser.add_argument("--no-tcp", action="store_true", help="serve UDP only")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="jobs database, endpoint file, log and default outputs (default: user data folder)",
    )
    parser.add_argument(
        "--max-batch", type=int, default=const.DEFAULT_MAX_BATCH, help="most jobs per GPU call"
    )
    parser.add_argument(
        "--allow-dir",
        type=Path,
        action="append",
        default=None,
        help="folder requests may read media from and write outputs to (repeatable; default: home)",
    )
    add_token_argument(parser, help="shared secret every request must carry (default: $VISAGE_TOKEN)")
    parser.add_argument(
        "--model",
        default=const.DEFAULT_MODEL,
        help="model name or checkpoint; 'fake[:delay=S,steps=N,seconds=S]' for a test engine",
    )
    add_device_argument(parser)
    parser.add_argument("--no-zeroconf", action="store_true", help="do not advertise with mDNS/DNS-SD")
    parser.add_argument(
        "--web-port",
        type=int,
        default=const.DEFAULT_WEB_PORT,
        help="port of the web page on --host (0 = any free port; the URL is logged and in daemon.json)",
    )
    parser.add_argument("--no-web", action="store_true", help="do not serve the web page")
    parser.add_argument(
        "--web-upload-limit",
        type=int,
        default=const.DEFAULT_WEB_UPLOAD_LIMIT_BYTES,
        metavar="BYTES",
        help="largest file the web page may upload",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    add_ray_arguments(parser)


def _configure_logging(level: str, log_path: Path) -> list[logging.Handler]:
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    handlers: list[logging.Handler] = [
        logging.handlers.RotatingFileHandler(log_path, maxBytes=5 << 20, backupCount=3),
    ]
    # `visage serve` comes through the visage command, which already logs to stderr: do not say it twice.
    if not any(type(h) is logging.StreamHandler and h.stream is sys.stderr for h in root.handlers):
        handlers.append(logging.StreamHandler(sys.stderr))
    root.setLevel(level)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    return handlers


def run_serve(args: argparse.Namespace, engine_factory: EngineFactory | None = None) -> int:
    """Run the daemon until SIGINT/SIGTERM; return the exit code (2 = configuration refused).

    Args:
        args: parsed `add_serve_arguments` options.
        engine_factory: builds the real engine for ``--model`` values other than ``fake...``; when
            None, ``engine.MODEL_ENGINE_FACTORY`` is imported.
    """
    from .daemon import Daemon
    from .security import SettingsError
    from .settings import BridgeSettings, default_state_dir
    from .state_dir import StateDirBusy

    token = args.token if args.token is not None else os.environ.get("VISAGE_TOKEN") or None
    try:
        settings = BridgeSettings(
            host=args.host,
            udp_port=args.port,
            tcp_port=None if args.no_tcp else args.tcp_port,
            state_dir=(args.state_dir or default_state_dir()).absolute(),
            max_batch=args.max_batch,
            allow_dirs=tuple(p.absolute() for p in (args.allow_dir or [Path.home()])),
            token=token,
            model=args.model,
            device=args.device,
            zeroconf=not args.no_zeroconf,
            web_port=None if args.no_web else args.web_port,
            web_upload_limit=args.web_upload_limit,
        )
        if args.ray:
            factory = _ray_engine_factory(args)
        else:
            factory = resolve_engine_factory(args.model, engine_factory)
    except (SettingsError, EngineUnavailable, ValueError) as exc:
        print(f"visage serve: {exc}", file=sys.stderr)
        return 2
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    handlers = _configure_logging(args.log_level, settings.log_path)
    try:
        log.info("loading model %r on %s", args.model, f"Ray ({args.ray})" if args.ray else args.device)
        try:
            engine = factory(args.model, args.device)
        except Exception as exc:  # a missing checkpoint, weights not downloadable offline, ...
            what = (
                f"start on Ray ({args.ray}) with model {args.model!r}"
                if args.ray
                else f"load model {args.model!r}"
            )
            log.error("cannot %s: %s", what, exc)
            print(f"visage serve: cannot {what}: {exc}", file=sys.stderr)
            return 2
        if args.ray:  # --max-batch jobs per actor call: one worker batch keeps every actor busy
            actors = getattr(engine, "actor_count", 1)
            settings = dataclasses.replace(settings, max_batch=args.max_batch * max(1, actors))
        return Daemon(settings, engine).serve_until_stopped()
    except StateDirBusy as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:  # e.g. port in use
        log.error("cannot serve: %s", exc)
        return 2
    finally:
        for handler in handlers:
            logging.getLogger().removeHandler(handler)
            handler.close()


def _ray_engine_factory(args: argparse.Namespace) -> EngineFactory:
    """``--ray``: the engine that runs the daemon's batches on a Ray cluster's actors.

    Raises:
        ValueError: options that do not go with ``--ray``, or Ray options out of range.
    """
    if args.model == "fake" or args.model.startswith("fake:"):
        raise ValueError("--ray loads the model on the cluster's actors; --model fake runs only here")
    if args.device != "auto":
        raise ValueError("--device does not go with --ray: each actor's device follows --ray-gpus-per-actor")
    from .cluster.ray_generator import ray_options

    options = ray_options(args, batch_size=args.max_batch)

    def create(model: str, device: str) -> Engine:
        from .cluster.ray_engine import RayEngine

        return RayEngine(model, options, log=lambda message: log.info("Ray: %s", message))

    return create


# -- submit --------------------------------------------------------------------------------------------


def add_submit_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``visage submit`` to ``parser``."""
    parser.add_argument("video", type=Path, help="the video file (made absolute)")
    add_direction_arguments(parser, curve=True)
    add_range_arguments(parser)
    parser.add_argument("-o", "--output", type=Path, required=True, help="output .wav, or an existing folder")
    parser.add_argument(
        "--daemon", default="auto", help="'auto' (endpoint file, ZeroConf, default port) or HOST:PORT"
    )
    parser.add_argument("--state-dir", type=Path, default=None, help="where 'auto' looks for daemon.json")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait for the result; then cancel"
    )
    add_token_argument(parser)
    add_guidance_arguments(parser, mode=False)
    add_seed_argument(parser)
    add_output_format_arguments(parser, format=False)
    add_panorama_arguments(parser)
    parser.add_argument(
        "--no-cache", action="store_true", help="recompute even if an identical result exists"
    )
    parser.add_argument("--tcp", action="store_true", help="talk TCP (OSC 1.1) instead of UDP")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def run_submit(args: argparse.Namespace) -> int:
    """Submit one job and wait; print the output path on stdout. Exit 0 done, 1 failed, 2 no daemon."""
    from .client import DaemonUnavailable, JobFailed, VisageClient, find_daemon

    def progress(p: object) -> None:
        if not args.quiet:
            print(f"  {getattr(p, 'fraction', 0.0) * 100:5.1f}% {getattr(p, 'stage', '')}", file=sys.stderr)

    output_is_dir = args.output.is_dir()
    try:
        # With --tcp, ``--daemon HOST:PORT`` names the daemon's TCP port.
        address = find_daemon(args.daemon, state_dir=args.state_dir, tcp=args.tcp)
        port = address.tcp_port if args.tcp else address.port
        with VisageClient(address, token=args.token, transport="tcp" if args.tcp else "udp") as client:
            job_id = client.submit(
                args.video,
                yaw=args.yaw,
                pitch=args.pitch,
                start=args.start,
                end=args.end,
                output=None if output_is_dir else args.output,
                output_dir=args.output if output_is_dir else None,
                guidance=args.guidance,
                seed=args.seed,
                sample_rate=args.sample_rate,
                direction_curve=args.direction_curve,
                use_cache=not args.no_cache,
                extra=_panorama_options(args),
            )
            if not args.quiet:
                print(f"job {job_id} accepted by {address.host}:{port}", file=sys.stderr)
            try:
                done = client.wait(job_id, progress=progress, timeout_s=args.timeout)
            except (KeyboardInterrupt, TimeoutError) as exc:
                client.cancel(job_id)
                print(
                    f"visage submit: {'interrupted' if isinstance(exc, KeyboardInterrupt) else exc}; "
                    f"job {job_id} cancelled",
                    file=sys.stderr,
                )
                return 130 if isinstance(exc, KeyboardInterrupt) else 1
    except JobFailed as exc:
        print(f"visage submit: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except (DaemonUnavailable, OSError, ValueError) as exc:
        print(f"visage submit: {exc}", file=sys.stderr)
        return 2
    print(done.output)
    return 0


def _panorama_options(args: argparse.Namespace) -> dict[str, object]:
    """The request options of ``--equirect``/``--look``, only those given (as fill sends them)."""
    options: dict[str, object] = {}
    if args.equirect:
        options["equirect"] = True
    if args.look is not None:
        options["look"] = args.look
    return options


# -- python -m visage.bridge.cli -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m visage.bridge.cli", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", description=SERVE_DESCRIPTION, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_serve_arguments(serve)
    submit = sub.add_parser(
        "submit", description=SUBMIT_DESCRIPTION, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_submit_arguments(submit)
    args = parser.parse_args(argv)
    return run_serve(args) if args.command == "serve" else run_submit(args)


if __name__ == "__main__":
    sys.exit(main())
