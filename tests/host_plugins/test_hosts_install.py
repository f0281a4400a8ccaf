"""`visage hosts install|uninstall`: the Blender extension zip and the Resolve/REAPER script installs.

The zip is checked here against a strict reading of Blender's manifest schema 1.0.0 and for a vendored
client that works without this project's package; Blender's own validator and a real install run in
tests/blender/ (bpy environment).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomllib
from bridge_fixtures import address_of, fake_settings, fast_engine

from visage.bridge.daemon import Daemon
from visage.host_plugins import hosts_commands, install

PERMISSIONS = {"files", "network", "clipboard", "camera", "microphone"}  # schema 1.0.0's closed set
PLATFORMS = {"windows-x64", "windows-arm64", "macos-arm64", "macos-x64", "linux-x64"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install.wheel_from_environment(tmp_path_factory.mktemp("wheels"))


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    return install.build_blender_extension(tmp_path_factory.mktemp("ext"), wheel=wheel)


def test_repacked_wheel_is_a_valid_wheel(wheel: Path) -> None:
    assert wheel.name == "python_osc-1.10.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        record = archive.read("python_osc-1.10.2.dist-info/RECORD").decode()
        assert "pythonosc/osc_message_builder.py" in names
        assert "Tag: py3-none-any" in archive.read("python_osc-1.10.2.dist-info/WHEEL").decode()
        for line in record.splitlines():
            name, digest, size = line.rsplit(",", 2)
            assert name in names
            if digest:
                data = archive.read(name)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert (digest, int(size)) == (f"sha256={expected}", len(data))
    assert not [n for n in names if n.endswith(".pyc") or n.endswith("INSTALLER")]


def test_manifest_follows_schema_1_0_0(extension_zip: Path) -> None:
    with zipfile.ZipFile(extension_zip) as archive:
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
        names = set(archive.namelist())
    required = {
        "schema_version",
        "id",
        "version",
        "name",
        "tagline",
        "maintainer",
        "type",
        "blender_version_min",
        "license",
    }
    assert required <= manifest.keys()
    assert manifest["schema_version"] == "1.0.0" and manifest["type"] == "add-on"
    assert re.fullmatch(r"[a-z][a-z0-9_]*", manifest["id"]) and manifest["id"] == install.EXTENSION_ID
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    assert len(manifest["tagline"]) <= 64 and manifest["tagline"][-1].isalnum()
    assert tuple(map(int, manifest["blender_version_min"].split("."))) >= (4, 2, 0)
    assert all(item.startswith("SPDX:") for item in manifest["license"])
    assert (
        manifest["permissions"].keys() <= PERMISSIONS
        and {"network", "files"} <= manifest["permissions"].keys()
    )
    for reason in manifest["permissions"].values():
        assert 0 < len(reason) <= 64 and reason[-1] not in ".!?,;:"
    assert set(manifest.get("platforms", PLATFORMS)) <= PLATFORMS
    assert manifest["wheels"] == ["./wheels/python_osc-1.10.2-py3-none-any.whl"]
    assert {w.removeprefix("./") for w in manifest["wheels"]} <= names
    assert "__init__.py" in names and "common/host_client.py" in names


def test_extension_zip_is_reproducible(tmp_path: Path, wheel: Path, extension_zip: Path) -> None:
    again = install.build_blender_extension(tmp_path, wheel=wheel)
    assert again.read_bytes() == extension_zip.read_bytes()
    with zipfile.ZipFile(again) as archive:
        names = archive.namelist()
    assert names == sorted(set(names), key=names.index)  # no duplicates
    assert {n for n in names if n.startswith("vendor/visage_bridge/")} == {
        f"vendor/visage_bridge/{m}" for m in (*install.BRIDGE_MODULES, *install.CONTRACT_MODULES)
    }
    assert not [n for n in names if "torch" in n or n.endswith(".pyc")]


def test_vendored_contracts_are_the_projects(extension_zip: Path) -> None:
    """The bundle's copies of the stdlib-only file contracts are byte-equal to ``model/files/``."""
    project = Path(__file__).resolve().parents[2] / "model" / "files"
    assert "result_files.py" in install.CONTRACT_MODULES and "output_files.py" in install.CONTRACT_MODULES
    with zipfile.ZipFile(extension_zip) as archive:
        for name in install.CONTRACT_MODULES:
            assert archive.read(f"vendor/visage_bridge/{name}") == (project / name).read_bytes(), name


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with Daemon(fake_settings(tmp_path), fast_engine()) as running:
        yield running


def test_vendored_client_works_without_the_visage_package(
    extension_zip: Path, tmp_path: Path, daemon: Daemon
) -> None:
    root = tmp_path / "extension_root"
    with zipfile.ZipFile(extension_zip) as archive:
        archive.extractall(root / "visage_ambisonics")
    address = address_of(daemon)
    script = textwrap.dedent(
        f"""
        import sys, types
        sys.modules["visage"] = None          # this project's package is not importable in Blender
        sys.modules["platformdirs"] = None    # nor platformdirs
        package = types.ModuleType("visage_ambisonics")   # the extension package, without its bpy __init__
        package.__path__ = [{str(root / "visage_ambisonics")!r}]
        sys.modules["visage_ambisonics"] = package
        from visage_ambisonics.common import camera, direction_curve, host_client, result_files
        client = host_client.bridge()
        assert client.__name__ == "visage_ambisonics.vendor.visage_bridge.client", client.__name__
        check = host_client.check_connection("{address.host}:{address.port}")
        assert check.ok, check.message
        assert result_files.contract.__name__ == "visage_ambisonics.vendor.visage_bridge.result_files"
        curve = direction_curve.build_curve([(0.0, 180.0, 0.0)])
        assert curve[0].yaw_deg == -180.0 and camera.direction_angles((0.0, -1.0, 0.0)).yaw_deg == -180.0
        written = direction_curve.write_curve({str(tmp_path / "curve.csv")!r}, curve)
        assert written.read_text() == "time,yaw,pitch\\n0.0,-180.0,0.0\\n"
        assert "torch" not in sys.modules and "numpy" not in sys.modules
        print("ok", check.message)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok ViSAGe daemon")


def test_find_wheel_order(tmp_path: Path, wheel: Path) -> None:
    assert install.find_wheel(tmp_path, wheel=wheel) == wheel
    with pytest.raises(install.InstallError):
        install.find_wheel(tmp_path, wheel=tmp_path / "other.whl")
    cached = tmp_path / "cache"
    made = install.find_wheel(cached, download=False)  # offline: repacked from this environment
    assert made == cached / install.PYTHON_OSC_WHEEL
    assert install.find_wheel(cached, download=True) == made  # cached copy: pip is not called


# ------------------------------------------------------------------------------------------------
# scripts


@pytest.mark.parametrize(
    ("platform", "environ", "resolve", "reaper"),
    [
        (
            "linux",
            {},
            "home/.local/share/DaVinciResolve/Fusion/Scripts/Edit",
            "home/.config/REAPER/Scripts/ViSAGe",
        ),
        (
            "darwin",
            {},
            "home/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Edit",
            "home/Library/Application Support/REAPER/Scripts/ViSAGe",
        ),
        (
            "win32",
            {"APPDATA": "roaming"},
            "roaming/Blackmagic Design/DaVinci Resolve/Support/Fusion/Scripts/Edit",
            "roaming/REAPER/Scripts/ViSAGe",
        ),
    ],
)
def test_script_folders_per_os(platform: str, environ: dict[str, str], resolve: str, reaper: str) -> None:
    home = Path("home")
    assert install.resolve_scripts_dir(platform, environ, home) == Path(resolve)
    assert install.reaper_scripts_dir(platform, environ, home) == Path(reaper)


@pytest.mark.parametrize("host", ["resolve", "reaper"])
def test_install_and_uninstall_script(host: str, tmp_path: Path) -> None:
    target = tmp_path / "scripts"
    planned = install.install_script(
        host, target=target, daemon="127.0.0.1:17730", dry_run=True, log=lambda _: None
    )
    assert planned and not target.exists()
    written = install.install_script(host, target=target, daemon="127.0.0.1:17730", log=lambda _: None)
    assert written == planned and all(p.is_file() for p in written)
    text = written[0].read_text()
    compile(text, str(written[0]), "exec")
    namespace: dict[str, object] = {}
    block = text[text.index(install.CONFIG_BEGIN) : text.index(install.CONFIG_END)]
    exec(block, namespace)
    assert namespace["VISAGE_DAEMON"] == "127.0.0.1:17730"
    # the Python those site-packages are for: the script compares it with the editor's (item 16)
    assert namespace["VISAGE_PYTHON"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    site_dirs = namespace["VISAGE_SITE_DIRS"]
    assert isinstance(site_dirs, list) and any(
        Path(d).is_dir() and (Path(d) / "pythonosc").is_dir() for d in site_dirs
    )
    foreign = target / "keep.py"
    foreign.write_text("print('mine')")
    install.install_script(host, target=target, log=lambda _: None)  # reinstall replaces in place
    removed = install.uninstall_script(host, target=target, log=lambda _: None)
    assert sorted(removed) == sorted(written) and not any(p.exists() for p in written)
    assert foreign.is_file()
    (target / written[0].name).write_text("a file of the user's with the same name")
    assert install.uninstall_script(host, target=target, log=lambda _: None) == []


def test_installed_script_imports_the_client_from_the_configured_environment(tmp_path: Path) -> None:
    """A host Python that has nothing but the configured site dirs finds visage.host_plugins.common."""
    target = tmp_path / "scripts"
    (script,) = install.install_script("resolve", target=target, log=lambda _: None)
    code = textwrap.dedent(
        f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("installed", {str(script)!r})
        module = importlib.util.module_from_spec(spec); sys.modules["installed"] = module
        spec.loader.exec_module(module)  # -S: only the configured site dirs make visage importable
        assert module.IMPORT_PROBLEM is None, module.IMPORT_PROBLEM
        print(module.host_client.bridge().__name__)
        """
    )
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "visage.bridge.client"


# ------------------------------------------------------------------------------------------------
# the command


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="visage hosts")
    hosts_commands.add_hosts_arguments(parser)
    return hosts_commands.run_hosts(parser.parse_args(argv))


def test_hosts_command_blender(tmp_path: Path, wheel: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert _run(["install", "blender", "--output", str(out), "--dry-run"]) == 0
    assert not out.exists() and "would pack vendor/visage_bridge/client.py" in capsys.readouterr().out
    assert _run(["install", "blender", "--output", str(out), "--wheel", str(wheel)]) == 0
    printed = capsys.readouterr().out
    zip_path = out / "visage_ambisonics-0.1.0.zip"
    assert zip_path.is_file() and "--command extension install-file --repo user_default --enable" in printed
    fake_blender = tmp_path / "blender"
    record = tmp_path / "argv.json"
    fake_blender.write_text(
        f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(record)!r}, 'w'))\n"
    )
    fake_blender.chmod(0o755)
    assert (
        _run(
            [
                "install",
                "blender",
                "--output",
                str(out),
                "--wheel",
                str(wheel),
                "--blender",
                str(fake_blender),
            ]
        )
        == 0
    )
    assert json.loads(record.read_text()) == [
        "--command",
        "extension",
        "install-file",
        "--repo",
        "user_default",
        "--enable",
        str(zip_path),
    ]
    assert _run(["uninstall", "blender", "--output", str(out)]) == 0
    assert (
        not zip_path.exists() and "extension remove user_default.visage_ambisonics" in capsys.readouterr().out
    )
    assert _run(["install", "blender", "--output", str(out), "--wheel", str(tmp_path / "nope.whl")]) == 1


def test_hosts_command_scripts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["install", "reaper", "--target", str(tmp_path), "--daemon", "10.0.0.5:17730"]) == 0
    assert "Load ReaScript" in capsys.readouterr().out
    assert "'10.0.0.5:17730'" in (tmp_path / "visage_reaper.py").read_text()
    assert _run(["uninstall", "reaper", "--target", str(tmp_path)]) == 0
    assert not (tmp_path / "visage_reaper.py").exists()
    assert _run(["install", "resolve", "--target", str(tmp_path)]) == 0
    assert "free edition" in capsys.readouterr().out


def test_hosts_command_module_imports_only_argparse() -> None:
    code = (
        "import sys; before = set(sys.modules); "
        "import visage.host_plugins.hosts_commands; "
        "print(sorted(m for m in set(sys.modules) - before "
        "if m != 'visage' and not m.startswith('visage.host_plugins')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert set(eval(result.stdout)) <= {"argparse", "gettext"}  # argparse and what it imports
