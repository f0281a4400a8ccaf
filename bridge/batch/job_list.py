"""The job list of `visage batch`: one clip per row of a CSV file or per line of a JSON Lines file.

Fields (CSV: a header row names the columns, in any order; JSON Lines: one object per line):

=============== ======== ==================================================================================
field           required meaning
=============== ======== ==================================================================================
media           yes      the video; a relative path counts from the job list's folder
start           no       media seconds where the clip starts, >= 0; default 0
end             no       media seconds where it ends, > start; default: the end of the media
yaw             no       camera yaw in degrees, positive left (AmbiX); any finite value, wrapped into
                         [-180, 180); default ``--yaw``
pitch           no       camera pitch in degrees, positive up, in [-90, 90]; default ``--pitch``
direction_curve no       a direction-curve file (``time,yaw,pitch`` CSV or JSON), instead of yaw/pitch
seed            no       sampling seed, an integer in [0, 2**63 - 1]; default ``--seed``, else one derived
                         from the clip's content
output          no       the WAV to write, relative to the output folder (subfolders allowed), ending in
                         ``.wav``, unique in the list; default ``<media stem>_<key prefix>.wav``
=============== ======== ==================================================================================

An empty CSV cell, a JSON ``null`` and a missing JSON key all mean "not given"; spaces around a CSV cell
are ignored; blank lines are skipped; a UTF-8 byte-order mark is allowed. JSON values must have their
JSON type (a number for ``yaw``, not the string ``"30"``). Parsing is pure and strict: every problem is
collected, one line each, ``FILE:LINE: field 'NAME': expected ..., got ...``, and reported together in
one `JobListError` before anything runs.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from visage.bridge.const import MAX_SEED  # the daemon's limit
from visage.model.files.result_files import wrap_yaw

FIELDS = ("media", "start", "end", "yaw", "pitch", "direction_curve", "seed", "output")
REQUIRED_FIELDS = frozenset({"media"})
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_INTEGER = re.compile(r"[+]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


class JobListError(ValueError):
    """A job list that cannot run; ``problems`` holds one line per problem found, ``jobs`` the rows that
    parsed (so that checking their files can report its problems in the same go)."""

    def __init__(self, problems: list[str], jobs: list[BatchJob] | None = None) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.jobs = jobs or []


@dataclass(frozen=True)
class BatchJob:
    """One clip of a job list; None = not given (the run's defaults apply).

    Attributes:
        line: where its row starts in the job list (1 = the first line).
        media: the video, resolved against the job list's folder.
        start_s: media seconds where the clip starts.
        end_s: media seconds where it ends; None = the end of the media.
        yaw_deg: camera yaw in [-180, 180) degrees, positive left.
        pitch_deg: camera pitch in [-90, 90] degrees, positive up.
        curve: a direction-curve file, resolved against the job list's folder.
        seed: sampling seed.
        output: the WAV's path relative to the output folder.
    """

    line: int
    media: Path
    start_s: float = 0.0
    end_s: float | None = None
    yaw_deg: float | None = None
    pitch_deg: float | None = None
    curve: Path | None = None
    seed: int | None = None
    output: PurePosixPath | None = None


def job_list_format(path: Path) -> str:
    """ "csv" or "jsonl", from the file's suffix.

    Raises:
        JobListError: another suffix.
    """
    file_format = FORMATS.get(path.suffix.lower())
    if file_format is None:
        known = ", ".join(FORMATS)
        raise JobListError([f"{path}: a job list ends in {known}; got {path.suffix or 'no suffix'!r}"])
    return file_format


def read_job_list(path: Path) -> list[BatchJob]:
    """The jobs of a ``.csv``, ``.jsonl`` or ``.ndjson`` file; relative paths count from its folder.

    Raises:
        JobListError: unreadable file, unknown suffix, or any bad row (all of them listed).
    """
    file_format = job_list_format(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise JobListError([f"{path}: no such job list"]) from None
    except OSError as exc:
        raise JobListError([f"{path}: cannot read the job list: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise JobListError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None
    return parse_job_list(text, file_format, name=str(path), folder=path.absolute().parent)


def parse_job_list(text: str, file_format: str, *, name: str, folder: Path) -> list[BatchJob]:
    """The jobs of a job list's text.

    Args:
        text: the whole file.
        file_format: "csv" or "jsonl".
        name: what errors call the file.
        folder: where relative media and curve paths count from.

    Raises:
        JobListError: every problem found, one line each.
    """
    text = text.removeprefix("\ufeff")  # spreadsheet programs start UTF-8 CSV with a byte-order mark
    records = _csv_records(text, name) if file_format == "csv" else _jsonl_records(text, name)
    problems: list[str] = []
    jobs: list[BatchJob] = []
    outputs: dict[str, int] = {}  # case-folded output path -> line that writes it
    for line, record in records:
        if isinstance(record, str):
            problems.append(record)
            continue
        parsed = _job(line, record, name, folder, problems, text=file_format == "csv")
        if parsed is None:
            continue
        if parsed.output is not None:
            folded = parsed.output.as_posix().casefold()  # one file on case-insensitive file systems
            if folded in outputs:
                first = outputs[folded]
                problems.append(
                    f"{name}:{line}: field 'output': {parsed.output} is also written by line {first}"
                )
                continue
            outputs[folded] = line
        jobs.append(parsed)
    if not jobs and not problems:
        problems.append(f"{name}: no jobs; expected one row per clip")
    if problems:
        raise JobListError(problems, jobs)
    return jobs


# A record is (line, {field: raw value}) or (line, problem text) when the row itself is unusable.
_Record = tuple[int, "dict[str, Any] | str"]


def _csv_records(text: str, name: str) -> list[_Record]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[_Record] = []
    header: list[str] | None = None
    previous_end = 0
    try:
        for row in reader:
            line, previous_end = previous_end + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # a blank line, or a spreadsheet's row of empty cells
            if header is None:
                header = [cell.strip() for cell in row]
                problems = _header_problems(header, name, line)
                if problems:
                    return [(line, p) for p in problems]
                continue
            if len(row) != len(header):
                records.append(
                    (
                        line,
                        f"{name}:{line}: expected {len(header)} values ({','.join(header)}), got {len(row)}",
                    )
                )
                continue
            records.append((line, {k: v.strip() for k, v in zip(header, row, strict=True) if v.strip()}))
    except csv.Error as exc:
        records.append((previous_end + 1, f"{name}:{previous_end + 1}: not valid CSV: {exc}"))
    if header is None:
        return [(1, f"{name}: empty file; expected a header row naming the columns ({', '.join(FIELDS)})")]
    return records


def _header_problems(header: list[str], name: str, line: int) -> list[str]:
    known = ", ".join(FIELDS)
    problems = [
        f"{name}:{line}: unknown column {c!r}; known columns: {known}{_lower_case_hint(c)}"
        for c in header
        if c not in FIELDS
    ]
    problems += [
        f"{name}:{line}: column {c!r} appears more than once"
        for c in sorted({c for c in header if header.count(c) > 1})
    ]
    problems += [
        f"{name}:{line}: missing column {c!r} (required)" for c in sorted(REQUIRED_FIELDS - set(header))
    ]
    return problems


def _lower_case_hint(name: str) -> str:
    """A hint for a known name written in other case (``Media``, ``START`` from a spreadsheet)."""
    folded = name.strip().lower()
    return f" (names are lower case: did you mean {folded!r}?)" if folded in FIELDS else ""


def _jsonl_records(text: str, name: str) -> list[_Record]:
    records: list[_Record] = []
    known = ", ".join(FIELDS)
    for line, content in enumerate(text.split("\n"), start=1):
        if not content.strip():
            continue
        try:
            document = json.loads(content)
        except json.JSONDecodeError as exc:
            records.append((line, f"{name}:{line}: not valid JSON: {exc.msg} (column {exc.colno})"))
            continue
        if not isinstance(document, dict):
            records.append((line, f"{name}:{line}: expected a JSON object, got {_json_type(document)}"))
            continue
        unknown = [
            f"{name}:{line}: unknown field {k!r}; known fields: {known}{_lower_case_hint(k)}"
            for k in document
            if k not in FIELDS
        ]
        missing = [
            f"{name}:{line}: missing field {k!r} (required)" for k in sorted(REQUIRED_FIELDS - set(document))
        ]
        if unknown or missing:
            records.extend((line, p) for p in unknown + missing)
            continue
        records.append((line, {k: v for k, v in document.items() if v is not None}))
    return records


def _job(
    line: int, record: Mapping[str, Any], name: str, folder: Path, problems: list[str], *, text: bool
) -> BatchJob | None:
    """The job of one record, or None after adding its problems to ``problems``; ``text``: its values are
    CSV cells (strings), else JSON values (which must have their type)."""
    found: list[str] = []

    def value(field: str, convert: Callable[[Any], Any]) -> Any:
        if field not in record:
            return None
        try:
            return convert(record[field])
        except ValueError as exc:
            found.append(f"{name}:{line}: field {field!r}: {exc}")
            return None

    media = value("media", lambda v: _path(v, folder))
    if media is None and "media" not in record:
        found.append(f"{name}:{line}: field 'media': required, got an empty value")
    start = value("start", lambda v: _number(v, text, minimum=0.0))
    end = value("end", lambda v: _number(v, text))
    if start is not None and end is not None and not end > start:
        found.append(f"{name}:{line}: field 'end': must be after start ({start:g} s), got {end:g}")
    yaw = value("yaw", lambda v: wrap_yaw(_number(v, text)))
    pitch = value("pitch", lambda v: _number(v, text, minimum=-90.0, maximum=90.0))
    curve = value("direction_curve", lambda v: _path(v, folder))
    if "direction_curve" in record and ("yaw" in record or "pitch" in record):
        found.append(f"{name}:{line}: field 'direction_curve': give yaw/pitch or direction_curve, not both")
    seed = value("seed", lambda v: _seed(v, text))
    output = value("output", _output)
    problems.extend(found)
    if found:
        return None
    return BatchJob(line, media, start or 0.0, end, yaw, pitch, curve, seed, output)


def _number(value: Any, text: bool, *, minimum: float = -math.inf, maximum: float = math.inf) -> float:
    if text:
        if not _DECIMAL.fullmatch(value):
            raise ValueError(f"expected a number, got {value!r}")
        number = float(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ValueError(f"expected a number, got {_json_type(value)}")
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    if not minimum <= number <= maximum:
        bounds = f">= {minimum:g}" if maximum == math.inf else f"in [{minimum:g}, {maximum:g}]"
        raise ValueError(
            f"expected a number {bounds}, got {value!r}"
            if text
            else f"expected a number {bounds}, got {number:g}"
        )
    return number


def _seed(value: Any, text: bool) -> int:
    if text:
        if not _INTEGER.fullmatch(value):
            raise ValueError(f"expected an integer in [0, 2**63 - 1], got {value!r}")
        seed = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        seed = value
    else:
        raise ValueError(f"expected an integer in [0, 2**63 - 1], got {_json_type(value)}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"expected an integer in [0, 2**63 - 1], got {value!r}")
    return seed


def _path(value: Any, folder: Path) -> Path:
    if not isinstance(value, str):
        raise ValueError(f"expected a file path, got {_json_type(value)}")
    if not value.strip():
        raise ValueError("expected a file path, got an empty value")
    path = Path(os.path.expanduser(value))  # "~user" with no such user stays as written
    return path if path.is_absolute() else folder / path


def _output(value: Any) -> PurePosixPath:
    if not isinstance(value, str):
        raise ValueError(f"expected a file name ending in .wav, got {_json_type(value)}")
    path = PurePosixPath(value)
    if path.is_absolute() or "\\" in value or ".." in path.parts or not path.parts:
        raise ValueError(f"expected a path inside the output folder (relative, no '..'), got {value!r}")
    if path.suffix.lower() != ".wav":
        raise ValueError(f"expected a file name ending in .wav, got {value!r}")
    return path


def _json_type(value: Any) -> str:
    """A JSON value as the user wrote it, with its type: ``"30" (a string)``."""
    kinds = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "an object",
    }
    kind = kinds.get(type(value), type(value).__name__)
    return f"{json.dumps(value)[:40]} ({kind})"
