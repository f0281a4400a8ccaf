"""aiohttp stays inside ``visage.bridge.web``: hosts that import the client, and ``visage`` commands that
never serve the page, do not pay for it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from layer_rules import REPO_ROOT, module_imports


def test_only_the_web_package_imports_aiohttp() -> None:
    offenders = []
    for path in sorted((REPO_ROOT / "bridge").rglob("*.py")):
        relative = path.relative_to(REPO_ROOT / "bridge")
        if relative.parts[0] == "web":
            continue
        package = ".".join(("visage", "bridge", *relative.parts[:-1]))
        for imported in module_imports(path.read_text(encoding="utf-8"), package):
            if imported.module.split(".")[0] == "aiohttp" or (
                imported.module.startswith("visage.bridge.web") and imported.at_import_time
            ):
                offenders.append(f"{relative}:{imported.line}: {imported.module}")
    assert offenders == []


def test_importing_the_client_and_the_daemon_loads_no_aiohttp() -> None:
    probe = textwrap.dedent(
        """
        import json, sys
        import visage.bridge.client, visage.bridge.cli, visage.bridge.daemon, visage.bridge.fill.commands
        print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'aiohttp')))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []
