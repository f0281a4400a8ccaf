"""Build and install the host pieces: the Blender extension zip, the Resolve and REAPER scripts.

Standard library only and no imports from the rest of the project, so that it also runs from a plain
checkout (the Blender tests load it by path inside the bpy environment).

* **Blender**: `build_blender_extension` assembles ``visage_ambisonics-<version>.zip`` from
  ``blender/`` (glue + manifest), ``common/`` (copied verbatim: the shared logic) and the bridge client
  with the pure modules it imports, copied into ``vendor/visage_bridge/`` (the extension cannot import
  this project's package) together with the result-file contract and the atomic writer it uses
  (``model/files/result_files.py``, ``output_files.py``: the bridge and ``common/`` import them from
  there when ``visage`` is not importable), plus the python-osc wheel the manifest lists (Blender
  installs listed wheels into the extension's private site-packages). The wheel comes from ``--wheel``,
  a cached copy, ``pip download``, or, offline, is repacked from the python-osc installed in this
  environment.
* **Resolve / REAPER**: the script is copied to the host's per-user script folder with its
  configuration block rewritten to point at this environment's site-packages (where
  ``visage.bridge.client`` and ``visage.host_plugins.common`` are installed) and at the chosen daemon.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXTENSION_ID = "visage_ambisonics"
BLENDER_REPO = "user_default"
PYTHON_OSC = "python-osc"
PYTHON_OSC_VERSION = "1.10.2"
PYTHON_OSC_WHEEL = f"python_osc-{PYTHON_OSC_VERSION}-py3-none-any.whl"
BLENDER_GLUE = ("__init__.py", "jobs.py", "operators.py", "preferences.py", "scene_data.py", "ui.py")
MANIFEST = "blender_manifest.toml"
# The bridge client and what it imports when given a state folder and zeroconf=False (as the hosts call
# it): no discovery (zeroconf is compiled, per platform), no settings (platformdirs).
BRIDGE_MODULES = (
    "__init__.py",
    "client.py",
    "const.py",
    "errors.py",
    "framing.py",
    "osc_protocol.py",
    "state_dir.py",
)
# The stdlib-only file contracts of visage.model.files, vendored byte-equal into the same package.
CONTRACT_MODULES = ("output_files.py", "result_files.py")
VENDOR_PACKAGE = "vendor/visage_bridge"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same zip
PIP_TIMEOUT_S = 120
CONFIG_BEGIN = "# --- visage configuration (written by `visage hosts install`) ---"
CONFIG_END = "# --- end of visage configuration ---"
INSTALLED_MARKERS = ("visage-host-script", "ViSAGe: Generate ambisonics")  # uninstall removes only these


class InstallError(RuntimeError):
    """Something a user must fix before the piece can be built or installed."""


# -----------------------------------------------------------------------------------------------------
# Blender


def bridge_source_dir() -> Path:
    """The ``visage.bridge`` sources: ``bridge/`` next to ``host_plugins/`` (checkout and install alike)."""
    folder = HERE.parent / "bridge"
    if (folder / "client.py").is_file():
        return folder
    try:
        import visage.bridge as bridge  # an install that keeps the packages apart
    except ImportError:
        raise InstallError(f"cannot find the visage.bridge sources (looked in {folder})") from None
    return Path(bridge.__file__).resolve().parent


def contract_source_dir() -> Path:
    """The ``visage.model.files`` sources: ``model/files/`` next to ``host_plugins/``, else the installed."""
    folder = HERE.parent / "model" / "files"
    if (folder / "result_files.py").is_file():
        return folder
    try:
        import visage.model.files as files  # an install that keeps the packages apart
    except ImportError:
        raise InstallError(f"cannot find the visage.model.files sources (looked in {folder})") from None
    return Path(files.__file__).resolve().parent


def manifest_value(key: str, manifest: Path = HERE / "blender" / MANIFEST) -> str:
    """A top-level string value of the extension manifest (``id``, ``version``)."""
    match = re.search(
        rf'^{re.escape(key)}\s*=\s*"([^"]*)"', manifest.read_text(encoding="utf-8"), re.MULTILINE
    )
    if match is None:
        raise InstallError(f'{manifest}: no {key} = "..."')
    return match.group(1)


def extension_files() -> list[tuple[str, Path]]:
    """(path in the zip, source file) of everything but the wheel, in a fixed order."""
    files = [(MANIFEST, HERE / "blender" / MANIFEST)]
    files += [(name, HERE / "blender" / name) for name in BLENDER_GLUE]
    files += [(f"common/{p.name}", p) for p in sorted((HERE / "common").glob("*.py"))]
    bridge = bridge_source_dir()
    files.append(("vendor/__init__.py", HERE / "common" / "__init__.py"))  # any docstring-only module
    files += [(f"{VENDOR_PACKAGE}/{name}", bridge / name) for name in BRIDGE_MODULES]
    contracts = contract_source_dir()
    files += [(f"{VENDOR_PACKAGE}/{name}", contracts / name) for name in CONTRACT_MODULES]
    missing = [str(src) for _, src in files if not src.is_file()]
    if missing:
        raise InstallError(f"missing source files: {', '.join(missing)}")
    return files


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def wheel_from_environment(
    dest_dir: Path, dist_name: str = PYTHON_OSC, version: str = PYTHON_OSC_VERSION
) -> Path:
    """Repack an installed pure-Python distribution as a wheel (for building offline).

    The files are the installed ones; RECORD is rewritten for them. Raises `InstallError` when the
    distribution is missing, another version, or not a ``py3-none-any`` wheel install.
    """
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise InstallError(
            f"{dist_name} is not installed here; pass --wheel or allow pip to download it"
        ) from None
    if dist.version != version:
        raise InstallError(f"{dist_name} {dist.version} is installed, the extension needs {version}")
    tags = re.findall(r"^Tag:\s*(\S+)", dist.read_text("WHEEL") or "", re.MULTILINE)
    if "py3-none-any" not in tags:
        raise InstallError(f"{dist_name} is not installed from a py3-none-any wheel (tags {tags})")
    normalized = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    info_dir = f"{normalized}-{version}.dist-info"
    skipped = {f"{info_dir}/{name}" for name in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")}
    entries: list[tuple[str, bytes]] = []
    for item in sorted(dist.files or [], key=lambda f: f.as_posix()):
        name = item.as_posix()
        if name in skipped or name.startswith("..") or "__pycache__" in name or name.endswith(".pyc"):
            continue
        entries.append((name, Path(str(dist.locate_file(item))).read_bytes()))
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    record += f"{info_dir}/RECORD,,\n"
    entries.append((f"{info_dir}/RECORD", record.encode()))
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / f"{normalized}-{version}-py3-none-any.whl"
    _write_zip(target, entries)
    return target


def download_wheel(dest_dir: Path) -> Path:
    """``pip download python-osc==1.10.2 --no-deps`` into ``dest_dir`` (needs PyPI)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        f"{PYTHON_OSC}=={PYTHON_OSC_VERSION}",
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
        str(dest_dir),
        "--quiet",
    ]
    try:
        subprocess.run(command, check=True, timeout=PIP_TIMEOUT_S, capture_output=True, text=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        raise InstallError(f"pip download failed: {detail.strip()[-400:]}") from None
    wheel = dest_dir / PYTHON_OSC_WHEEL
    if not wheel.is_file():
        raise InstallError(f"pip download did not produce {wheel}")
    return wheel


def find_wheel(cache_dir: Path, *, wheel: Path | None = None, download: bool = True, log=print) -> Path:
    """The python-osc wheel to bundle: ``wheel``, else a cached one, else pip, else this environment's."""
    if wheel is not None:
        if wheel.name != PYTHON_OSC_WHEEL or not wheel.is_file():
            raise InstallError(f"--wheel must be an existing {PYTHON_OSC_WHEEL}, got {wheel}")
        return wheel
    cached = cache_dir / PYTHON_OSC_WHEEL
    if cached.is_file():
        return cached
    if download:
        try:
            return download_wheel(cache_dir)
        except InstallError as error:
            log(f"{error}; repacking the python-osc installed in this environment instead")
    return wheel_from_environment(cache_dir)


def _write_zip(target: Path, entries: Iterable[tuple[str, bytes]]) -> None:
    """Write a zip with fixed timestamps, atomically."""
    temp = target.with_name(f".{target.name}.part")
    with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    os.replace(temp, target)


def build_blender_extension(out_dir: Path, *, wheel: Path) -> Path:
    """Assemble the extension zip in ``out_dir``; returns its path."""
    version = manifest_value("version")
    if manifest_value("id") != EXTENSION_ID:
        raise InstallError(f"{MANIFEST}: id is not {EXTENSION_ID!r}")
    manifest_text = (HERE / "blender" / MANIFEST).read_text(encoding="utf-8")
    if f"./wheels/{wheel.name}" not in manifest_text:
        raise InstallError(f"{MANIFEST} does not list ./wheels/{wheel.name}")
    entries = [(name, source.read_bytes()) for name, source in extension_files()]
    entries.append((f"wheels/{wheel.name}", wheel.read_bytes()))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{EXTENSION_ID}-{version}.zip"
    _write_zip(target, entries)
    return target


def blender_install_commands(zip_path: Path, blender: str = "blender") -> list[str]:
    return [
        f'{blender} --command extension install-file --repo {BLENDER_REPO} --enable "{zip_path}"',
        "or: Edit > Preferences > Get Extensions > (v) menu > Install from Disk... > choose the zip",
    ]


# -----------------------------------------------------------------------------------------------------
# Resolve and REAPER scripts


@dataclass(frozen=True)
class ScriptPiece:
    """A host script: its source and where the host looks for it."""

    host: str
    source: Path
    installed_name: str
    extras: tuple[Path, ...] = ()  # files copied next to it unchanged


SCRIPTS = {
    "resolve": ScriptPiece(
        "resolve", HERE / "resolve" / "visage_resolve.py", "ViSAGe Generate Ambisonics.py"
    ),
    "reaper": ScriptPiece(
        "reaper",
        HERE / "reaper" / "visage_reaper.py",
        "visage_reaper.py",
        (HERE / "reaper" / "visage_reaper.ReaperMenu",),
    ),
}


def resolve_scripts_dir(
    platform: str = sys.platform, environ: Mapping[str, str] = os.environ, home: Path | None = None
) -> Path:
    """Resolve's per-user ``Fusion/Scripts/Edit`` folder (Workspace > Scripts on the Edit page)."""
    home = Path.home() if home is None else home
    if platform == "win32":
        appdata = environ.get("APPDATA") or str(home / "AppData" / "Roaming")
        root = Path(appdata) / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Fusion" / "Scripts"
    elif platform == "darwin":
        root = (
            home
            / "Library"
            / "Application Support"
            / "Blackmagic Design"
            / "DaVinci Resolve"
            / "Fusion"
            / "Scripts"
        )
    else:
        root = home / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts"
    return root / "Edit"


def reaper_scripts_dir(
    platform: str = sys.platform, environ: Mapping[str, str] = os.environ, home: Path | None = None
) -> Path:
    """``Scripts/ViSAGe`` in REAPER's resource folder."""
    home = Path.home() if home is None else home
    if platform == "win32":
        root = Path(environ.get("APPDATA") or str(home / "AppData" / "Roaming")) / "REAPER"
    elif platform == "darwin":
        root = home / "Library" / "Application Support" / "REAPER"
    else:
        root = home / ".config" / "REAPER"
    return root / "Scripts" / "ViSAGe"


def environment_site_dirs() -> list[str]:
    """This environment's site-packages folders (purelib, platlib), where visage is installed."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys(str(Path(paths[key]).resolve()) for key in ("purelib", "platlib")))


def environment_python() -> str:
    """``major.minor`` of this environment's Python: compiled packages in its site-packages need it."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def configure_script(text: str, *, site_dirs: list[str], daemon: str, python: str) -> str:
    """Replace the script's configuration block with this environment's values.

    ``python`` is recorded so that the script, run by the editor's own Python, can tell the user when
    that is another version (whose imports of this environment's compiled packages fail).
    """
    begin, end = text.find(CONFIG_BEGIN), text.find(CONFIG_END)
    if begin < 0 or end < begin:
        raise InstallError("the script has no configuration block")
    lines = [
        f"VISAGE_SITE_DIRS = {site_dirs!r}",
        f"VISAGE_DAEMON = {daemon!r}",
        f"VISAGE_PYTHON = {python!r}",
    ]
    return text[:begin] + "\n".join([CONFIG_BEGIN, *lines, ""]) + text[end:]


def install_script(
    host: str, *, target: Path | None = None, daemon: str = "auto", dry_run: bool = False, log=print
) -> list[Path]:
    """Copy the host's script (configured) and its extras into ``target`` (default: the per-OS folder)."""
    piece = SCRIPTS[host]
    folder = (
        target
        if target is not None
        else (resolve_scripts_dir() if host == "resolve" else reaper_scripts_dir())
    )
    python = environment_python()
    text = configure_script(
        piece.source.read_text(encoding="utf-8"),
        site_dirs=environment_site_dirs(),
        daemon=daemon,
        python=python,
    )
    written = [folder / piece.installed_name, *(folder / extra.name for extra in piece.extras)]
    for path in written:
        log(f"{'would write' if dry_run else 'writing'} {path}")
    log(
        f"recording Python {python} ({sys.executable}): {host.capitalize()} must run the script with "
        f"Python {python}; with another version the script says so and skips what does not load"
    )
    if dry_run:
        return written
    folder.mkdir(parents=True, exist_ok=True)  # Resolve lists nothing when the category folder is missing
    _write_text(written[0], text)
    for extra, path in zip(piece.extras, written[1:], strict=True):
        _write_text(path, extra.read_text(encoding="utf-8"))
    return written


def uninstall_script(
    host: str, *, target: Path | None = None, dry_run: bool = False, log=print
) -> list[Path]:
    """Remove what `install_script` wrote (only files carrying our marker)."""
    piece = SCRIPTS[host]
    folder = (
        target
        if target is not None
        else (resolve_scripts_dir() if host == "resolve" else reaper_scripts_dir())
    )
    removed = []
    for path in [folder / piece.installed_name, *(folder / extra.name for extra in piece.extras)]:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if not any(marker in text for marker in INSTALLED_MARKERS):
            log(f"leaving {path}: not written by visage")
            continue
        log(f"{'would remove' if dry_run else 'removing'} {path}")
        if not dry_run:
            path.unlink()
        removed.append(path)
    return removed


def _write_text(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.part")
    with open(temp, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    os.replace(temp, path)
