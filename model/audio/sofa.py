"""Reading measured HRIRs from a SOFA file (AES69, convention SimpleFreeFieldHRIR).

Why: the analytic head of ``visage.model.audio.binaural`` needs no download, but a listener who has a
measured (or personal) HRTF set hears direction better through it. SOFA files are netCDF-4, i.e.
HDF5 underneath, so they are read with ``h5py`` when it is installed; it is an optional dependency,
and its absence is reported with the command that installs it.

Only what a far-field binaural render needs is read: ``Data.IR`` ``[M, R, K]`` (R = 2 receivers,
left first), ``Data.SamplingRate`` and ``SourcePosition`` ``[M, 3]`` (spherical degrees, azimuth
counter-clockwise from the front, which is AmbiX's convention, or Cartesian x front, y left, z up).
Shapes: M measured directions, K taps.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

CONVENTION = "SimpleFreeFieldHRIR"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class SofaError(ValueError):
    """A SOFA file that cannot be read as far-field HRIRs; the message names the file."""


class HrirSet(NamedTuple):
    """Measured head-related impulse responses."""

    hrirs: npt.NDArray[np.float64]  # [M, 2, K] left, right
    azimuths: npt.NDArray[np.float64]  # [M] radians, positive left
    elevations: npt.NDArray[np.float64]  # [M] radians, positive up
    sample_rate: int


def read_sofa(path: str | Path) -> HrirSet:
    """Read a SimpleFreeFieldHRIR SOFA file.

    Raises:
        SofaError: missing file, not HDF5/netCDF-4, another convention, or inconsistent fields.
        ModuleNotFoundError: h5py is not installed (the message says how to install it).
    """
    path = Path(path)
    if not path.is_file():
        raise SofaError(f"{path}: no such SOFA file")
    with open(path, "rb") as f:
        signature = f.read(8)
    if signature != _HDF5_SIGNATURE:
        raise SofaError(f"{path}: not a SOFA file (SOFA is netCDF-4/HDF5; this file has no HDF5 signature)")
    try:
        import h5py
    except ImportError:
        raise ModuleNotFoundError(
            f"{path}: reading SOFA files needs h5py (SOFA is HDF5-based): pip install h5py",
            name="h5py",
        ) from None
    with h5py.File(path, "r") as sofa:
        convention = _text(sofa.attrs.get("SOFAConventions", ""))
        if convention != CONVENTION:
            raise SofaError(f"{path}: convention {convention or 'unknown'!r}; only {CONVENTION} is supported")
        try:
            ir = np.asarray(sofa["Data.IR"][()], dtype=np.float64)
            rate = np.asarray(sofa["Data.SamplingRate"][()], dtype=np.float64).ravel()
            position_var = sofa["SourcePosition"]
            position = np.asarray(position_var[()], dtype=np.float64)
            kind = _text(position_var.attrs.get("Type", "spherical")).lower()
            units = _text(position_var.attrs.get("Units", "degree")).lower()
        except KeyError as exc:
            raise SofaError(f"{path}: missing variable {exc}") from None
    return _hrir_set(path, ir, rate, position, kind, units)


def _hrir_set(
    path: Path, ir: np.ndarray, rate: np.ndarray, position: np.ndarray, kind: str, units: str
) -> HrirSet:
    """Validate the variables and convert positions to AmbiX radians."""
    if ir.ndim != 3 or ir.shape[1] != 2:
        raise SofaError(f"{path}: Data.IR must be [M, 2, K] (two ears), got shape {ir.shape}")
    if rate.size != 1 or not rate[0] > 0:
        raise SofaError(f"{path}: one positive Data.SamplingRate expected, got {rate.tolist()}")
    if position.ndim == 1:
        position = position[None, :]
    if position.shape[0] == 1 and ir.shape[0] > 1:
        raise SofaError(f"{path}: SourcePosition holds one position for {ir.shape[0]} measurements")
    if position.shape != (ir.shape[0], 3):
        raise SofaError(f"{path}: SourcePosition must be [M, 3], got {position.shape} for M = {ir.shape[0]}")
    if kind == "cartesian":
        x, y, z = position.T
        azimuths, elevations = np.arctan2(y, x), np.arctan2(z, np.hypot(x, y))
    elif kind == "spherical":
        scale = math.pi / 180 if "degree" in units else 1.0
        azimuths, elevations = position[:, 0] * scale, position[:, 1] * scale
    else:
        raise SofaError(f"{path}: SourcePosition Type {kind!r} is neither spherical nor cartesian")
    return HrirSet(ir, azimuths, elevations, round(float(rate[0])))


def _text(value: Any) -> str:
    """An HDF5 attribute as text (h5py gives bytes, str or a one-element array)."""
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
