"""The shared-filesystem rule, checked on every node before anything is generated.

Actors read the media and direction curves and write the results at the paths the driver gives, so
every node must see them at those paths (NFS, SMB, a cluster filesystem). Each actor checks, on its
node, that every distinct media file and curve of the run can be read (its first byte) and that every
output folder accepts a new file (a probe is created and removed, the way the atomic writer makes its
temporaries); the run stops before the first shot if any node cannot, with the node's name and IP.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from visage.model.files.output_files import (
    MissingOutputFolderError,
    UnwritableOutputFolderError,
    check_folder,
    reserve_temp,
)

_LISTED = 5  # problems named in the error; the rest are counted


@dataclass(frozen=True)
class SharedFiles:
    """What a run needs every node to see.

    Attributes:
        readable: media files and direction curves (absolute), each once.
        writable: output folders (absolute), each once.
    """

    readable: tuple[Path, ...]
    writable: tuple[Path, ...]


def shared_files(inputs: Iterable[Path], outputs: Iterable[Path]) -> SharedFiles:
    """The distinct files to read and the distinct folders of ``outputs``, in first-seen order."""
    return SharedFiles(
        tuple(dict.fromkeys(inputs)),
        tuple(dict.fromkeys(output.parent for output in outputs)),
    )


def check_shared_files(files: SharedFiles) -> list[str]:
    """What this machine cannot do of ``files``: one line per file or folder, empty when all is well."""
    problems = []
    for path in files.readable:
        try:
            with open(path, "rb") as f:
                f.read(1)
        except FileNotFoundError:
            problems.append(f"{path}: not found")
        except OSError as exc:
            problems.append(f"{path}: cannot be read ({exc.strerror or exc})")
    for folder in files.writable:
        try:
            check_folder(folder)
            reserve_temp(folder / "ray-probe").unlink()
        except MissingOutputFolderError:
            problems.append(f"{folder}: output folder not found")
        except UnwritableOutputFolderError as exc:  # it names the folder and the reason
            problems.append(str(exc))
        except OSError as exc:
            problems.append(f"{folder}: output folder not writable ({exc.strerror or exc})")
    return problems


def preflight_message(node: str, problems: list[str]) -> str:
    """The error for a node that fails the check (``node`` as ``hostname (ip)``)."""
    listed = "; ".join(problems[:_LISTED])
    more = f"; and {len(problems) - _LISTED} more" if len(problems) > _LISTED else ""
    return (
        f"Ray node {node} does not see the run's files at the driver's paths: {listed}{more}. "
        "Every node must see the media and output folders at the same paths (a shared filesystem)"
    )
