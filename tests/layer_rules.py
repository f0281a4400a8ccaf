"""The import rules between the project's layers, read from the source with ``ast``.

Each package of ``visage.model`` lists the packages (or single modules) it may import; a module outside
that list is a broken rule, reported with the file, the line and the import. ``visage.bridge`` may not
import torch, or ``visage.model`` beyond its stdlib-only file contracts, when it is imported (imports
inside functions are lazy and allowed). The README's "Layout" section states the same table.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# package of visage.model -> what of visage.model it may import (a package, or package.module).
MODEL_ALLOWED: dict[str, frozenset[str]] = {
    "network": frozenset({"network"}),
    # files.result_files is the stdlib-only result-file contract (names, curve format, yaw convention).
    "features": frozenset({"features", "network.sequence", "network.config", "files.result_files"}),
    "audio": frozenset({"audio", "network.sequence", "network.config", "files.result_files"}),
    "files": frozenset({"files", "network.sequence", "network.config"}),
    "delivery": frozenset({"delivery", "audio", "features", "files"}),
    "dataset": frozenset({"dataset", "audio", "features", "files", "network"}),
    "inference": frozenset({"inference", "audio", "features", "files", "delivery", "network", "environment"}),
    "training": frozenset({"training", "audio", "dataset", "files", "network"}),
    "evaluation": frozenset(
        {
            "evaluation",
            "audio",
            "dataset",
            "delivery",
            "features",
            "files",
            "inference",
            "network",
            "training",
        }
    ),
    # The CLI stages sit on top and may use every layer; nothing imports them (cli.py loads them by name).
    "commands": frozenset(
        {
            "commands",
            "cli",
            "environment",
            "audio",
            "dataset",
            "delivery",
            "evaluation",
            "features",
            "files",
            "inference",
            "network",
            "training",
        }
    ),
    # Root modules: the lazy public API, the command table (strings only) and the environment report.
    "__init__": frozenset({"network", "features", "files", "delivery", "inference"}),
    "cli": frozenset(),
    "environment": frozenset({"network.checkpoint", "network.kernel_choice", "inference.kernel_store"}),
}

# Third-party imports network/ may make besides torch: reading and fetching weight files, lazily, in the
# one module that owns the checkpoint format.
NETWORK_THIRD_PARTY: dict[str, frozenset[str]] = {
    "checkpoint": frozenset({"safetensors", "huggingface_hub"}),
}

# The one adapter from a bridge job to a generation request.
MODEL_MODULES_ALLOWED_TO_IMPORT_BRIDGE = frozenset({"inference.daemon_engine"})
# The CLI stages share the bridge stages' option definitions (one stdlib-only module), and ``dataset
# build --ray`` the cluster connection and the actor arithmetic (stdlib-only; Ray is imported when used).
BRIDGE_MODULES_COMMANDS_MAY_IMPORT = frozenset(
    {"visage.bridge.cli_arguments", "visage.bridge.cluster.ray_session", "visage.bridge.cluster.actor_plan"}
)

# What visage.bridge may import from visage.model when it is imported: stdlib-only file contracts.
BRIDGE_IMPORT_TIME_MODEL_MODULES = frozenset({"files.result_files", "files.output_files"})

# Parameter names of the official checkpoint: only network/checkpoint.py may spell them.
OFFICIAL_NAME_MARKERS = (
    "model.encoder",
    "model.decoder",
    "layernorm_embedding",
    "embed_positions",
    "encoder_attn",
    "self_attn_layer_norm",
    "final_layer_norm",
    "embed_dac",
    "clip_projection",
    "energy_map_projection",
    "direction_embedding",
)


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    text: str
    rule: str

    def __str__(self) -> str:
        shown = self.path.relative_to(REPO_ROOT) if self.path.is_relative_to(REPO_ROOT) else self.path
        return f"{shown}:{self.line}: {self.text}  ({self.rule})"


@dataclass(frozen=True)
class Import:
    module: str  # absolute dotted name
    line: int
    at_import_time: bool  # False when the import statement is inside a function


def _resolve(package: str, node: ast.ImportFrom) -> list[str]:
    """Absolute module names an ``ImportFrom`` reaches (``from . import x`` names ``pkg.x``)."""
    if node.level == 0:
        base = node.module or ""
    else:
        parts = package.split(".")
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join(parts + ([node.module] if node.module else []))
    if node.module is None:
        return [f"{base}.{alias.name}" for alias in node.names]
    # ``from visage.model.files import result_files`` imports the module, not only its package.
    return [
        f"{base}.{alias.name}" if _is_project_module(f"{base}.{alias.name}") else base for alias in node.names
    ]


_PROJECT_FOLDERS = {"visage.model": "model", "visage.bridge": "bridge", "visage.host_plugins": "host_plugins"}


def _is_project_module(dotted: str) -> bool:
    """Whether ``dotted`` names a module or package of this repository."""
    for prefix, folder in _PROJECT_FOLDERS.items():
        if dotted == prefix or dotted.startswith(prefix + "."):
            rest = dotted[len(prefix) :].lstrip(".").split(".") if dotted != prefix else []
            path = REPO_ROOT / folder / Path(*rest) if rest else REPO_ROOT / folder
            return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()
    return False


def module_imports(source: str, package: str) -> Iterator[Import]:
    """Every import of a module's source, absolute, with whether it runs when the module is imported."""
    tree = ast.parse(source)
    lazy_lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    lazy_lines.add(inner.lineno)
    type_checking_lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    type_checking_lines.add(inner.lineno)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = _resolve(package, node)
        else:
            continue
        runs_now = node.lineno not in lazy_lines and node.lineno not in type_checking_lines
        for name in names:
            yield Import(name, node.lineno, runs_now)


def _model_target(module: str) -> str | None:
    """``visage.model.audio.codec`` -> ``audio.codec``; None outside visage.model."""
    prefix = "visage.model."
    return module[len(prefix) :] if module.startswith(prefix) else None


def _allowed(target: str, allowed: Iterable[str]) -> bool:
    return any(target == rule or target.startswith(rule + ".") for rule in allowed)


def _line(source: str, line: int) -> str:
    return source.splitlines()[line - 1].strip()


def _code_strings(source: str) -> Iterator[tuple[int, str]]:
    """String constants of a module that are values, not docstrings (prose may name anything)."""
    tree = ast.parse(source)
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def check_model_module(path: Path, source: str, relative: tuple[str, ...]) -> list[Violation]:
    """Rules for one file of ``model/``; ``relative`` is its path inside ``model/`` as parts."""
    layer = relative[0] if len(relative) > 1 else relative[0].removesuffix(".py")
    stem = relative[-1].removesuffix(".py")
    dotted = ".".join((*relative[:-1], stem))
    package = "visage.model" + ("." + ".".join(relative[:-1]) if len(relative) > 1 else "")
    if stem == "__init__":
        dotted = ".".join(relative[:-1])
    found: list[Violation] = []
    for imp in module_imports(source, package):
        target = _model_target(imp.module)
        text = _line(source, imp.line)
        top = imp.module.split(".")[0]
        if imp.module.startswith("visage.bridge"):
            shared_options = layer == "commands" and imp.module in BRIDGE_MODULES_COMMANDS_MAY_IMPORT
            if dotted not in MODEL_MODULES_ALLOWED_TO_IMPORT_BRIDGE and not shared_options:
                found.append(
                    Violation(path, imp.line, text, "visage.model imports visage.bridge only in the adapter")
                )
        elif target is not None:
            if not _allowed(target, MODEL_ALLOWED.get(layer, frozenset())):
                found.append(
                    Violation(path, imp.line, text, f"{layer}/ may import {sorted(MODEL_ALLOWED[layer])}")
                )
        elif layer == "network" and top not in sys.stdlib_module_names and top not in ("torch", "visage"):
            if top not in NETWORK_THIRD_PARTY.get(stem, frozenset()):
                found.append(
                    Violation(path, imp.line, text, "network/ imports only torch and the standard library")
                )
    if not (layer == "network" and stem == "checkpoint"):
        for line, value in _code_strings(source):
            if any(marker in value for marker in OFFICIAL_NAME_MARKERS):
                found.append(
                    Violation(
                        path, line, _line(source, line), "only network/checkpoint names official parameters"
                    )
                )
    return found


def check_bridge_module(path: Path, source: str, relative: tuple[str, ...]) -> list[Violation]:
    """Rules for one file of ``bridge/``: nothing heavy at import time."""
    package = "visage.bridge" + ("." + ".".join(relative[:-1]) if len(relative) > 1 else "")
    found: list[Violation] = []
    for imp in module_imports(source, package):
        if not imp.at_import_time:
            continue
        target = _model_target(imp.module)
        text = _line(source, imp.line)
        if imp.module.split(".")[0] in ("torch", "numpy", "transformers", "dac"):
            found.append(
                Violation(path, imp.line, text, "visage.bridge imports no torch/numpy at import time")
            )
        elif target is not None and target not in BRIDGE_IMPORT_TIME_MODEL_MODULES:
            found.append(
                Violation(
                    path,
                    imp.line,
                    text,
                    "visage.bridge imports visage.model only lazily, or its file contracts",
                )
            )
    return found


def project_violations(root: Path = REPO_ROOT) -> list[Violation]:
    """Every broken rule in ``model/`` and ``bridge/`` under ``root``."""
    found: list[Violation] = []
    for path in sorted((root / "model").rglob("*.py")):
        found += check_model_module(
            path, path.read_text(encoding="utf-8"), path.relative_to(root / "model").parts
        )
    for path in sorted((root / "bridge").rglob("*.py")):
        found += check_bridge_module(
            path, path.read_text(encoding="utf-8"), path.relative_to(root / "bridge").parts
        )
    return found
