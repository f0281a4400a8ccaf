"""`visage hosts install|uninstall blender|resolve|reaper`: put each editor integration where its host looks.

Blender: builds the extension zip (with the python-osc wheel) and prints how to install it (or runs
``--blender EXE`` to install it). Resolve and REAPER: copies the script into the per-user script folder,
configured with this environment's site-packages and the daemon address. Only argparse at module level.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HOSTS = ("blender", "resolve", "reaper")


def add_hosts_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``install`` and ``uninstall`` with their options to ``parser``."""
    sub = parser.add_subparsers(dest="hosts_action", metavar="ACTION", required=True)
    formatter = parser.formatter_class
    install = sub.add_parser(
        "install", help="build / copy a host piece into place", description=__doc__, formatter_class=formatter
    )
    uninstall = sub.add_parser(
        "uninstall", help="remove what install put in place", description=__doc__, formatter_class=formatter
    )
    for p in (install, uninstall):
        p.add_argument("host", choices=HOSTS, help="which editor")
        p.add_argument("--dry-run", action="store_true", help="say what would be done and change nothing")
        p.add_argument(
            "--target",
            type=Path,
            default=None,
            help="(resolve, reaper) script folder instead of the host's per-user default",
        )
        p.add_argument(
            "--output",
            type=Path,
            default=None,
            help="(blender) folder for the extension zip; unset: <visage data folder>/host_plugins",
        )
    install.add_argument(
        "--daemon",
        default="auto",
        help="(resolve, reaper) daemon address written into the script: auto or HOST:PORT",
    )
    install.add_argument(
        "--wheel",
        type=Path,
        default=None,
        help="(blender) python-osc 1.10.2 wheel to bundle; unset: pip download",
    )
    install.add_argument(
        "--no-download",
        action="store_true",
        help="(blender) do not run pip; repack the python-osc installed in this environment",
    )
    install.add_argument(
        "--blender",
        default=None,
        metavar="EXE",
        help="(blender) also install the zip with `EXE --command extension install-file`",
    )


def _default_output() -> Path:
    from .common.host_client import default_state_dir

    return default_state_dir() / "host_plugins"


def run_hosts(args: argparse.Namespace) -> int:
    """Run ``visage hosts``; 0 on success, 1 when something could not be done."""
    import subprocess

    from . import install

    try:
        if args.host == "blender":
            output = args.output or _default_output()
            if args.hosts_action == "uninstall":
                return _uninstall_blender(install, output, args.dry_run)
            if args.dry_run:
                for name, source in install.extension_files():
                    print(f"would pack {name} <- {source}")
                print(f"would pack wheels/{install.PYTHON_OSC_WHEEL}")
                name = f"{install.EXTENSION_ID}-{install.manifest_value('version')}.zip"
                print(f"would write {output / name}")
                return 0
            wheel = install.find_wheel(output / "wheels", wheel=args.wheel, download=not args.no_download)
            zip_path = install.build_blender_extension(output, wheel=wheel)
            print(f"built {zip_path}")
            if args.blender:
                command = [
                    args.blender,
                    "--command",
                    "extension",
                    "install-file",
                    "--repo",
                    install.BLENDER_REPO,
                    "--enable",
                    str(zip_path),
                ]
                print("running " + " ".join(command))
                return subprocess.run(command, check=False).returncode
            print("install it with:")
            for line in install.blender_install_commands(zip_path):
                print(f"  {line}")
            return 0
        if args.hosts_action == "install":
            written = install.install_script(
                args.host, target=args.target, daemon=args.daemon, dry_run=args.dry_run
            )
            if not args.dry_run:
                print(_script_hint(args.host, written[0]))
        else:
            install.uninstall_script(args.host, target=args.target, dry_run=args.dry_run)
        return 0
    except (install.InstallError, OSError) as error:
        print(f"visage hosts: {error}", file=sys.stderr)
        return 1


def _uninstall_blender(install, output: Path, dry_run: bool) -> int:  # type: ignore[no-untyped-def]
    zip_path = output / f"{install.EXTENSION_ID}-{install.manifest_value('version')}.zip"
    if zip_path.is_file():
        print(f"{'would remove' if dry_run else 'removing'} {zip_path}")
        if not dry_run:
            zip_path.unlink()
    print("remove the extension from Blender with:")
    print(f"  blender --command extension remove {install.BLENDER_REPO}.{install.EXTENSION_ID}")
    print("  or: Edit > Preferences > Add-ons > ViSAGe Ambisonics > (v) > Uninstall")
    return 0


def _script_hint(host: str, path: Path) -> str:
    if host == "resolve":
        return (
            f"installed {path}\nIn DaVinci Resolve Studio (restart it once): Edit page > Workspace > "
            f"Scripts > {path.stem}. The free edition cannot run it: use `visage fill` on an exported "
            ".otio timeline."
        )
    return (
        f"installed {path}\nIn REAPER: Actions > Show action list > New action > Load ReaScript... > "
        f"{path.name} (Python must be enabled in Preferences > Plug-ins > ReaScript); run it once to "
        f"complete {path.with_suffix('.ReaperMenu').name}, then Options > Customize menus > Media item "
        "context > Import."
    )
