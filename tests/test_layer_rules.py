"""The layers' import rules hold for the whole tree, and the checker catches each kind of break."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from layer_rules import REPO_ROOT, check_bridge_module, check_model_module, project_violations


def test_the_tree_keeps_every_rule() -> None:
    broken = project_violations()
    assert not broken, "import rules broken:\n" + "\n".join(map(str, broken))


def test_model_root_holds_at_most_eight_modules() -> None:
    root_modules = sorted(p.name for p in (REPO_ROOT / "model").glob("*.py"))
    assert len(root_modules) <= 8, root_modules


@pytest.mark.parametrize(
    ("where", "source", "rule"),
    [
        (("network", "generation.py"), "import numpy as np\n", "network/ imports only torch"),
        (
            ("network", "visage.py"),
            "from huggingface_hub import hf_hub_download\n",
            "network/ imports only torch",
        ),
        (
            ("audio", "codec.py"),
            "from visage.model.features.direction import CameraDirection\n",
            "audio/ may import",
        ),
        (("files", "audio_io.py"), "from visage.model.network.visage import Visage\n", "files/ may import"),
        (
            ("delivery", "sound_map.py"),
            "from visage.model.network import generation\n",
            "delivery/ may import",
        ),
        (
            ("delivery", "spatial_mux.py"),
            "from ...model.network.visage import Visage\n",
            "delivery/ may import",
        ),
        (("dataset", "build.py"), "from visage.model.training.loop import train\n", "dataset/ may import"),
        (("training", "loop.py"), "from visage.model.evaluation import bench\n", "training/ may import"),
        (
            ("inference", "pipeline.py"),
            "from visage.model.commands import generate\n",
            "inference/ may import",
        ),
        (("inference", "pipeline.py"), "from visage.bridge import const\n", "only in the adapter"),
        (("delivery", "binaural_preview.py"), "import visage.bridge.const\n", "only in the adapter"),
        (("features", "windows.py"), "KEY = 'model.decoder.embed_dac.0.weight'\n", "official parameters"),
    ],
)
def test_model_rules_catch_a_break(where: tuple[str, ...], source: str, rule: str) -> None:
    found = check_model_module(Path("/scratch/model", *where), source, where)
    assert len(found) == 1 and rule in found[0].rule, found
    assert found[0].line == 1


def test_model_rules_allow_what_each_layer_needs() -> None:
    ok = {
        ("features", "windows.py"): "from visage.model.network.sequence import SequenceConfig\n",
        ("inference", "daemon_engine.py"): "from visage.bridge.engine import GenerateSpec\n",
        ("network", "checkpoint.py"): "def f():\n    from safetensors.torch import load_file\n",
        ("network", "generation.py"): "import torch\nfrom .decode_step import StaticDecodeStep\n",
        (
            "commands",
            "research.py",
        ): "def f():\n    from visage.model.evaluation.paper_metrics import evaluate\n",
    }
    for where, source in ok.items():
        assert check_model_module(Path("/scratch/model", *where), source, where) == [], where


def test_a_module_imported_from_its_package_is_that_module() -> None:
    """``from visage.model.files import result_files`` is the contract; ``... import audio_io`` is not."""
    contract = "from visage.model.files import result_files\n"
    assert check_bridge_module(Path("/scratch/bridge/worker.py"), contract, ("worker.py",)) == []
    heavy = "from visage.model.files import audio_io\n"
    assert len(check_bridge_module(Path("/scratch/bridge/worker.py"), heavy, ("worker.py",))) == 1


def test_bridge_rules_allow_lazy_model_imports_only() -> None:
    eager = "import torch\nfrom visage.model.inference.pipeline import VideoToAmbisonics\n"
    found = check_bridge_module(Path("/scratch/bridge/worker.py"), eager, ("worker.py",))
    assert [v.line for v in found] == [1, 2]
    lazy = textwrap.dedent(
        """
        from visage.model.files.output_files import atomic_output
        def engine():
            from visage.model.inference.daemon_engine import create_engine
            import torch
        """
    )
    assert (
        check_bridge_module(Path("/scratch/bridge/fill/generators.py"), lazy, ("fill", "generators.py")) == []
    )


def test_importing_the_bridge_client_loads_neither_torch_nor_the_model() -> None:
    """What a host script pays for ``import visage.bridge.client``: no torch, numpy, Ray or model code."""
    probe = textwrap.dedent(
        """
        import json, sys
        import visage.bridge.client, visage.bridge.fill.commands, visage.bridge.cli
        print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'ray')
                                or m.startswith('visage.model.'))))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    heavy = [m for m in loaded if not m.startswith("visage.model.files")]
    assert heavy == [], heavy


def test_every_package_folder_is_installed() -> None:
    """A wheel holds only the packages pyproject.toml lists; every folder of Python files is one."""
    import tomllib

    listed = set(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {"model": "visage.model", "bridge": "visage.bridge", "host_plugins": "visage.host_plugins"}
    found = {
        ".".join([name, *init.parent.relative_to(REPO_ROOT / folder).parts])
        for folder, name in folders.items()
        for init in (REPO_ROOT / folder).rglob("*.py")
    }
    assert found == listed
