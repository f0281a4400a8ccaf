"""What is installed, what is cached, and the one workaround this project needs (torchaudio).

The workaround, kept here and nowhere else: descript-audio-codec imports audiotools, which imports
torchaudio. PyPI's only torchaudio that does not pin an exact torch (2.11.0) ships native libraries built
for CUDA and for torch 2.11; next to another torch (the CPU build, or a newer CUDA build) loading them
fails with ``OSError: Could not load this library: .../torchaudio/lib/_torchaudio.abi3.so`` and
``import dac`` fails with it. Neither DAC nor the parts of audiotools we use need those libraries:
torchaudio runs in pure-Python mode without them. So ``visage doctor --fix`` moves them into a
subfolder torchaudio does not search (reversible: move them back, or ``pip install --force-reinstall
torchaudio``). It only acts when loading them actually fails.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

DISABLED_FOLDER = "_disabled_by_visage"
CLIP_REPO_ID = "openai/clip-vit-base-patch32"
DAC_WEIGHTS = Path("~/.cache/descript/dac/weights_44khz_8kbps_0.0.1.pth")


@dataclass(frozen=True)
class Check:
    """One line of the report: a name, whether it is fine, and what was found or what to do."""

    name: str
    ok: bool
    detail: str


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def torchaudio_lib_dir() -> Path | None:
    """torchaudio's native library folder, or None when torchaudio is not installed."""
    spec = importlib.util.find_spec("torchaudio")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "lib"


def torchaudio_loads() -> tuple[bool, str]:
    """Whether ``import torchaudio`` works, in a fresh interpreter (a failed import poisons this one)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import torchaudio"], capture_output=True, text=True, timeout=120
    )
    if proc.returncode == 0:
        return True, "imports"
    last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
    return False, last


def disable_torchaudio_native_libs() -> list[Path]:
    """Move torchaudio's native libraries aside so it imports in pure-Python mode; returns what moved."""
    lib = torchaudio_lib_dir()
    if lib is None or not lib.is_dir():
        return []
    target = lib / DISABLED_FOLDER
    moved = []
    for so in sorted(lib.glob("*.so")) + sorted(lib.glob("*.pyd")):
        target.mkdir(exist_ok=True)
        dest = target / so.name
        os.replace(so, dest)
        moved.append(dest)
    return moved


def fix_torchaudio() -> Check:
    """Apply the torchaudio workaround if, and only if, torchaudio fails to import."""
    ok, detail = torchaudio_loads()
    if ok:
        return Check("torchaudio", True, "imports; nothing to fix")
    moved = disable_torchaudio_native_libs()
    ok_after, detail_after = torchaudio_loads()
    if ok_after:
        names = ", ".join(p.name for p in moved) or "nothing"
        return Check("torchaudio", True, f"was failing ({detail}); moved {names} to lib/{DISABLED_FOLDER}")
    return Check("torchaudio", False, f"still failing after the fix: {detail_after}")


def _torch_checks() -> list[Check]:
    try:
        import torch
    except ImportError:
        return [Check("torch", False, "not installed: pip install torch (before this package)")]
    out = [Check("torch", True, f"{torch.__version__}")]
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        bf16 = torch.cuda.is_bf16_supported()
        out.append(Check("device", True, f"cuda: {names} (bf16 {'yes' if bf16 else 'no'})"))
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append(Check("device", True, "mps (Apple GPU)"))
    else:
        out.append(Check("device", True, f"cpu only ({torch.get_num_threads()} threads)"))
    out.append(_kernel_check())
    return out


def _kernel_check() -> Check:
    """The few-row linear kernels measured on this machine (chosen at the first generation otherwise)."""
    from visage.model.inference.kernel_store import default_store, read_store
    from visage.model.network.kernel_choice import cpu_name

    store = default_store()
    choices = read_store(store)
    if not choices:
        return Check("linear kernels", True, f"not measured yet on {cpu_name()} (at first generation)")
    counts: dict[str, int] = {}
    for kernel in choices.values():
        counts[kernel] = counts.get(kernel, 0) + 1
    summary = ", ".join(f"{kernel} x{n}" for kernel, n in sorted(counts.items()))
    return Check("linear kernels", True, f"{summary} measured on {cpu_name()} ({store})")


def _package_checks() -> list[Check]:
    wanted = {
        "numpy": "numpy",
        "transformers": "transformers",
        "descript-audio-codec": "dac",
        "safetensors": "safetensors",
        "huggingface_hub": "huggingface_hub",
        "av": "PyAV",
        "soundfile": "soundfile",
        "soxr": "soxr",
        "opentimelineio": "opentimelineio",
        "python-osc": "python-osc",
        "zeroconf": "zeroconf",
        "scipy": "scipy",
        "pyloudnorm": "pyloudnorm",
    }
    out = []
    for dist, label in wanted.items():
        v = _version(dist)
        out.append(Check(label, v is not None, v or f"missing: pip install {dist}"))
    optional = {
        "opentimelineio-plugins": "EDL/FCP XML/AAF adapters",
        "accelerate": "training",
        "h5py": "SOFA HRTF files",
    }
    for dist, use in optional.items():
        v = _version(dist)
        out.append(Check(f"{dist} (optional)", True, v or f"not installed ({use}: pip install {dist})"))
    return out


def _weights_checks() -> list[Check]:
    from huggingface_hub import scan_cache_dir

    out = []
    try:
        cached = {repo.repo_id: repo for repo in scan_cache_dir().repos}
    except Exception:  # no cache folder yet
        cached = {}
    from visage.model.network.checkpoint import DEFAULT_REPO_ID

    for repo_id, what in ((DEFAULT_REPO_ID, "ViSAGe checkpoint"), (CLIP_REPO_ID, "CLIP ViT-B/32")):
        repo = cached.get(repo_id)
        detail = f"cached ({repo.size_on_disk / 1e6:.0f} MB)" if repo else "not cached: run `visage download`"
        out.append(Check(what, repo is not None, detail))
    dac = DAC_WEIGHTS.expanduser()
    out.append(
        Check(
            "DAC 44 kHz",
            dac.exists(),
            f"cached at {dac}" if dac.exists() else "not cached: run `visage download`",
        )
    )
    offline = os.environ.get("HF_HUB_OFFLINE", "")
    out.append(Check("HF_HUB_OFFLINE", True, offline or "unset (hub reachable when online)"))
    return out


def doctor(fix: bool = False) -> list[Check]:
    """Everything worth knowing before generating: packages, device, torchaudio state, cached weights."""
    checks = [Check("python", True, sys.version.split()[0])]
    checks += _torch_checks()
    checks += _package_checks()
    if _version("torchaudio") is None:
        checks.append(
            Check("torchaudio", False, "missing (descript-audio-codec needs it): pip install torchaudio")
        )
    elif fix:
        checks.append(fix_torchaudio())
    else:
        ok, detail = torchaudio_loads()
        checks.append(Check("torchaudio", ok, "imports" if ok else f"{detail} -> run `visage doctor --fix`"))
    checks += _weights_checks()
    return checks


def format_report(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{'ok ' if c.ok else 'XX '} {c.name:<{width}}  {c.detail}" for c in checks)


def quiet_libraries() -> None:
    """Keep the terminal for our progress bar: no per-tensor loading bars or deprecation notices."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", message=".*weight_norm.* is deprecated", category=FutureWarning)
