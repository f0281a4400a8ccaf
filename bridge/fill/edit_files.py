"""Editorial files in and out: any installed OpenTimelineIO adapter reads; OUT's suffix picks the writer.

Reading never touches the input file beyond opening it. Writing is atomic: the adapter writes a hidden
temporary file (or bundle folder) next to the target, which is then renamed over it, so a crash leaves
either the old file or the complete new one. The temporary name is fresh, so adapters that refuse to
overwrite (``otioz``, ``otiod``) never see an existing file; replacing an existing output is the
caller's decision (``--force``). The bundle adapters (``otioz``, ``otiod``) copy the media they can find
into the bundle; references to files that do not exist on this machine become ``MissingReference``
values that keep their name, ``available_range`` and the original URL (OTIO's own ``MissingIfNotFile``
policy drops the range, which leaves clips without a ``source_range`` with no duration).

`probe_write` writes an edit to a scratch folder and reads it back, so a caller can learn before hours
of generation whether the chosen format can hold what it is going to write. When a writer fails on a
shape it is known not to hold (the FCP 7 XML writer: clips without a source range, media without an
available range, generators that did not come from FCP XML), the error names those items.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import opentimelineio as otio
from opentimelineio.adapters import file_bundle_utils

from visage.model.files.output_files import fsync_file, fsync_folder, part_path, publish

from .media_timecode import smpte_rate

# Adapters whose reader needs the frame rate, which their files do not record.
_RATE_ARGUMENT = {"cmx_3600": "rate"}
_BUNDLES = ("otioz", "otiod")
_FCM = re.compile(r"^\s*FCM\s*:\s*(NON[\s-]*DROP|DROP)", re.IGNORECASE | re.MULTILINE)
_EVENT_TIMECODE = re.compile(r"\b\d\d[:;.]\d\d[:;.]\d\d([:;.])\d\d\b")


class EditFileError(ValueError):
    """An edit cannot be read or written (unknown suffix, adapter error, existing output)."""


def read_edit(path: Path, *, rate: float | None = None) -> otio.schema.Timeline:
    """The timeline in ``path``, read by the adapter its suffix names.

    Args:
        path: the edit file.
        rate: frame rate for formats that do not record one (CMX 3600 EDL; the adapter's default is 24);
            23.976 and 29.97 mean the NTSC rates (the EDL reader refuses the rounded values).

    Raises:
        EditFileError: no adapter for the suffix, the adapter failed, or the file holds no single
            timeline.
    """
    adapter = _adapter(path, "read")
    kwargs = {}
    if rate is not None and adapter.name in _RATE_ARGUMENT:
        kwargs[_RATE_ARGUMENT[adapter.name]] = smpte_rate(rate)
    try:
        result = otio.adapters.read_from_file(str(path), adapter_name=adapter.name, **kwargs)
    except Exception as exc:  # adapters raise anything from OTIOError to KeyError on bad input
        raise EditFileError(f"{path}: cannot read as {adapter.name}: {exc}") from exc
    if isinstance(result, otio.schema.Timeline):
        return result
    timelines = list(result.find_children(descended_from_type=otio.schema.Timeline))
    if len(timelines) != 1:
        raise EditFileError(f"{path}: holds {len(timelines)} timelines; expected one")
    return timelines[0]


def drop_frame_of(path: Path) -> bool | None:
    """Whether the edit in ``path`` counts its timecodes drop-frame, where its format records that: a
    CMX 3600 EDL's ``FCM:`` line, else a ``;`` before the frames of its timecodes. None when the format
    does not say (OTIO then assumes drop-frame at 29.97 and 59.94)."""
    try:
        if otio.adapters.from_filepath(str(path)).name != "cmx_3600":
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
    except (otio.exceptions.NoKnownAdapterForExtensionError, OSError):
        return None
    fcm = _FCM.search(text)
    if fcm is not None:
        return not fcm.group(1).upper().startswith("NON")
    return any(match.group(1) == ";" for match in _EVENT_TIMECODE.finditer(text))


def check_writable(path: Path, *, force: bool) -> str:
    """The adapter that will write ``path``; checked before any work is done.

    Raises:
        EditFileError: no writer for the suffix, the folder is missing, or the file exists without
            ``force``.
    """
    adapter = _adapter(path, "write")
    if not path.parent.is_dir():
        raise EditFileError(f"{path}: folder {path.parent} does not exist")
    if path.exists() and not force:
        raise EditFileError(f"{path} exists; use --force to replace it")
    return str(adapter.name)


def write_edit(timeline: otio.schema.Timeline, path: Path, *, force: bool = False) -> None:
    """Write ``timeline`` to ``path`` in the format its suffix names, atomically.

    Raises:
        EditFileError: see `check_writable`, or the adapter failed (the target is then unchanged).
    """
    name = check_writable(path, force=force)
    temp = part_path(path, keep_suffix=True)  # the adapter picks its format by the suffix
    try:
        _write(timeline, temp, name, path)
        if temp.is_file():
            fsync_file(temp)
        _replace(temp, path, force=force)
        fsync_folder(path.parent)
    finally:
        _remove(temp)


def probe_write(timeline: otio.schema.Timeline, path: Path) -> otio.schema.Timeline | None:
    """Write ``timeline`` as ``path``'s format into a scratch folder and read it back.

    Returns:
        What the format kept, or None when the adapter cannot read its own files back.

    Raises:
        EditFileError: the adapter cannot write this timeline.
    """
    adapter = _adapter(path, "write")
    with tempfile.TemporaryDirectory(prefix="visage-probe-") as folder:
        probe = Path(folder) / f"probe{path.suffix}"
        _write(timeline, probe, str(adapter.name), path)
        if not adapter.has_feature("read"):
            return None
        return read_edit(probe)


def _write(timeline: otio.schema.Timeline, temp: Path, name: str, path: Path) -> None:
    kwargs = {}
    if name in _BUNDLES:
        timeline = _missing_media_kept(timeline)
        kwargs["media_policy"] = file_bundle_utils.MediaReferencePolicy.MissingIfNotFile
    try:
        otio.adapters.write_to_file(timeline, str(temp), adapter_name=name, **kwargs)
    except Exception as exc:  # adapters raise anything on shapes they do not support
        reasons = _cannot_hold(timeline, name)
        if not reasons:
            raise EditFileError(f"{path}: cannot write as {name}: {exc}") from exc
        listed = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
        raise EditFileError(
            f"{path}: cannot write as {name}: its writer cannot hold {listed}; write .otio or .otioz "
            f"instead (the writer said: {exc})"
        ) from exc


def _cannot_hold(timeline: otio.schema.Timeline, adapter: str) -> list[str]:
    """The items of ``timeline`` the adapter's writer is known to fail on (otio-fcp-adapter 1.0 reads a
    clip's ``source_range`` and its reference's ``available_range``, and writes only generators that
    carry the FCP ``effecttype`` it read), described for the user."""
    if adapter != "fcp_xml":
        return []
    found = []
    for clip in timeline.find_clips():
        reel = (clip.metadata.get("cmx_3600") or {}).get("reel")
        where = f"clip {clip.name!r}" + (f" (EDL reel {reel})" if reel else "")
        ref = clip.media_reference
        if clip.source_range is None:
            found.append(f"{where}, which has no source range")
        elif isinstance(ref, otio.schema.GeneratorReference):
            if "effecttype" not in (ref.metadata.get("fcp_xml") or {}):
                kind = ref.generator_kind or "of no kind"
                found.append(f"{where}, a generated picture ({kind}) that did not come from FCP XML")
        elif not isinstance(ref, otio.schema.MissingReference) and ref.available_range is None:
            found.append(f"{where}, whose media reference has no available range")
    return found


def _missing_media_kept(timeline: otio.schema.Timeline) -> otio.schema.Timeline:
    """A copy whose references to absent local files are ``MissingReference`` with their range kept."""
    result = timeline.deepcopy()
    for clip in result.find_clips():
        ref = clip.media_reference
        if not isinstance(ref, otio.schema.ExternalReference) or not ref.target_url:
            continue
        url = ref.target_url
        local = otio.url_utils.filepath_from_url(url) if url.startswith("file:") else url
        if "://" in local or Path(local).is_file():
            continue  # a file to bundle, or another scheme the bundle policy reports
        metadata = dict(ref.metadata)
        metadata["original_target_url"] = url
        clip.media_reference = otio.schema.MissingReference(
            name=ref.name, available_range=ref.available_range, metadata=metadata
        )
    return result


def _adapter(path: Path, verb: str) -> otio.adapters.Adapter:
    try:
        adapter = otio.adapters.from_filepath(str(path))
    except otio.exceptions.NoKnownAdapterForExtensionError:
        raise EditFileError(
            f"{path}: no installed OpenTimelineIO adapter for {path.suffix or 'files without a suffix'} "
            f"(install opentimelineio-plugins for EDL, FCP XML, AAF, ...)"
        ) from None
    if not adapter.has_feature(verb):
        raise EditFileError(f"{path}: the {adapter.name} adapter cannot {verb} files")
    return adapter


def _replace(temp: Path, path: Path, *, force: bool) -> None:
    """Move ``temp`` to ``path``; an existing folder (an ``.otiod`` bundle) is moved aside first.

    Without ``force`` an existing ``path`` (even one made since `check_writable`) is never replaced.
    """
    if force and path.is_dir() and not path.is_symlink():
        aside = part_path(path)
        os.replace(path, aside)
        try:
            os.replace(temp, path)
        except OSError:
            os.replace(aside, path)
            raise
        _remove(aside)
        return
    try:
        publish(temp, path, overwrite=force)
    except FileExistsError:
        raise EditFileError(f"{path} exists; use --force to replace it") from None


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
