"""Finding the media file a shot was cut from: the edit's reference first, then by name under media roots.

Editorial files rarely point at media that exists on this machine: EDLs carry only a reel and a clip
name, OTIO written elsewhere carries someone else's absolute paths (``file://localhost/D%3a/...``).
`MediaFinder` tries, in order:

1. the reference's ``target_url`` as written (a file URL, percent-encoded or with bare spaces, or a
   path), relative paths taken against the edit's folder;
2. each name of `otio_shots.MediaHint.names` (target base name, reference name, clip name, reel) under
   each ``--media-root`` and then the edit's folder, searched recursively: the exact file name first,
   then a video file with that stem (``clip_A`` finds ``clip_A.mov``), then the same ignoring case.

Each root is indexed once per run, so a cut with hundreds of shots walks each folder once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import opentimelineio as otio

from .otio_shots import MediaHint

# Suffixes accepted when a name is matched by its stem only (FFmpeg reads all of them).
VIDEO_SUFFIXES = frozenset(
    ".mov .mp4 .m4v .mkv .mxf .avi .webm .mts .m2ts .ts .mpg .mpeg .dv .wmv .flv .3gp .ogv".split()
)


class MediaNotFound(FileNotFoundError):
    """No file was found for a shot; the message says what was tried."""


class MediaFinder:
    """Resolves `MediaHint` values to files.

    Args:
        edit_dir: folder of the edit file (relative references and a last search root).
        roots: ``--media-root`` folders, searched in order before ``edit_dir``.
    """

    def __init__(self, edit_dir: Path, roots: Sequence[Path] = ()) -> None:
        self.edit_dir = edit_dir
        self.roots = [*roots, edit_dir]
        self._indexes: dict[Path, _FolderIndex] = {}

    def find(self, hint: MediaHint) -> Path:
        """The file for ``hint``.

        Raises:
            MediaNotFound: nothing matched; the message lists the reference and the names tried.
        """
        if hint.target:
            direct = self._direct(hint.target)
            if direct is not None:
                return direct
        for root in self.roots:
            index = self._index(root)
            for name in hint.names:
                found = index.lookup(name)
                if found is not None:
                    return found
        tried = [f"reference {hint.target!r}"] if hint.target else []
        if hint.names:
            tried.append(f"names {', '.join(repr(n) for n in hint.names)}")
        where = ", ".join(str(r) for r in self.roots)
        what = " and ".join(tried) or "nothing (the clip names no media)"
        raise MediaNotFound(f"media not found: tried {what} under {where}")

    def _direct(self, target: str) -> Path | None:
        path = Path(otio.url_utils.filepath_from_url(target) if "://" in target else target)
        if not path.is_absolute():
            path = self.edit_dir / path
        return path if path.is_file() else None

    def _index(self, root: Path) -> _FolderIndex:
        key = root.resolve() if root.exists() else root
        if key not in self._indexes:
            self._indexes[key] = _FolderIndex(root)
        return self._indexes[key]


class _FolderIndex:
    """Every file under a folder by name, by video stem, and both ignoring case (first found wins)."""

    def __init__(self, root: Path) -> None:
        self.by_name: dict[str, Path] = {}
        self.by_stem: dict[str, Path] = {}
        self.by_name_folded: dict[str, Path] = {}
        self.by_stem_folded: dict[str, Path] = {}
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                path = Path(folder) / name
                self.by_name.setdefault(name, path)
                self.by_name_folded.setdefault(name.casefold(), path)
                if path.suffix.lower() in VIDEO_SUFFIXES:
                    self.by_stem.setdefault(path.stem, path)
                    self.by_stem_folded.setdefault(path.stem.casefold(), path)

    def lookup(self, name: str) -> Path | None:
        """The file called ``name``, or a video file whose stem is ``name``, exact case first."""
        return (
            self.by_name.get(name)
            or self.by_stem.get(name)
            or self.by_name_folded.get(name.casefold())
            or self.by_stem_folded.get(name.casefold())
        )
