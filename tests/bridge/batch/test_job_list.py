"""The job list parser: generated CSV and JSON Lines files read back to the values they were written from,
and every kind of bad value, header and row reported with its file, line and field."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from visage.bridge.batch.job_list import (
    FIELDS,
    BatchJob,
    JobListError,
    job_list_format,
    parse_job_list,
    read_job_list,
)

FOLDER = Path("/jobs")
FUZZ = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def wrapped(yaw: float) -> float:
    """Oracle for the yaw convention: the same direction in [-180, 180)."""
    return (yaw + 180.0) % 360.0 - 180.0


# --- generated job lists ----------------------------------------------------------------------------

names = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), exclude_characters="/\\~"
    ),
    min_size=1,
    max_size=12,
)
seconds = st.floats(min_value=0.0, max_value=1e4, allow_nan=False)


@st.composite
def rows(draw: st.DrawFn, index: int) -> dict[str, Any]:
    """One job as field -> value (given fields only), output names unique by ``index``."""
    row: dict[str, Any] = {
        "media": draw(names) + draw(st.sampled_from([".mp4", ".mov", " take 2.MP4", ",x.mp4"]))
    }
    if draw(st.booleans()):
        row["start"] = draw(seconds)
    if draw(st.booleans()):
        start = row.get("start", 0.0)
        row["end"] = start + draw(st.floats(min_value=1e-3, max_value=1e3))
    if draw(st.booleans()):
        row["direction_curve"] = "curves/" + draw(names) + ".json"
    else:
        if draw(st.booleans()):
            row["yaw"] = draw(st.floats(min_value=-1e5, max_value=1e5))
        if draw(st.booleans()):
            row["pitch"] = draw(st.floats(min_value=-90.0, max_value=90.0))
    if draw(st.booleans()):
        row["seed"] = draw(st.integers(min_value=0, max_value=2**63 - 1))
    if draw(st.booleans()):
        folder = draw(st.sampled_from(["", "sub/", "a/b/"]))
        row["output"] = f"{folder}clip {index}.{draw(st.sampled_from(['wav', 'WAV']))}"
    return row


@st.composite
def job_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=1, max_value=6))
    return [draw(rows(i)) for i in range(count)]


def expected_job(line: int, row: dict[str, Any]) -> BatchJob:
    """What the parser must make of a generated row (independent of its code)."""
    return BatchJob(
        line=line,
        media=FOLDER / row["media"],
        start_s=float(row.get("start", 0.0)),
        end_s=row.get("end"),
        yaw_deg=wrapped(row["yaw"]) if "yaw" in row else None,
        pitch_deg=row.get("pitch"),
        curve=FOLDER / row["direction_curve"] if "direction_curve" in row else None,
        seed=row.get("seed"),
        output=PurePosixPath(row["output"]) if "output" in row else None,
    )


def assert_jobs_equal(got: list[BatchJob], want: list[BatchJob]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if w.yaw_deg is not None:
            assert g.yaw_deg is not None and -180.0 <= g.yaw_deg < 180.0
            assert (
                math.isclose(g.yaw_deg, w.yaw_deg, abs_tol=1e-9)
                or abs(abs(g.yaw_deg - w.yaw_deg) - 360) < 1e-9
            )
            g = BatchJob(**{**g.__dict__, "yaw_deg": w.yaw_deg})
        assert g == w


def write_csv(job_rows: list[dict[str, Any]], draw: st.DrawFn) -> tuple[str, list[int]]:
    """A CSV of the rows (random column order, quoting, blank lines, line ends, BOM); each row's line."""
    given_fields = {f for row in job_rows for f in row} | {"media"}
    unused = [f for f in FIELDS if f not in given_fields]
    extra = draw(st.lists(st.sampled_from(unused), unique=True)) if unused else []  # empty columns
    header = draw(st.permutations(sorted(given_fields | set(extra))))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    out = io.StringIO()
    writer = csv.writer(out, quoting=quoting, lineterminator=ending)
    lines: list[int] = []
    if draw(st.booleans()):
        out.write(ending)  # a blank line before the header
    writer.writerow(header)
    for row in job_rows:
        while draw(st.integers(0, 3)) == 3:  # blank lines between rows (the simplest example has none)
            out.write(ending)
        lines.append(out.getvalue().count("\n") + 1)
        writer.writerow([_cell(row.get(f), draw) for f in header])
    text = out.getvalue()
    return ("\ufeff" + text if draw(st.booleans()) else text), lines


def _cell(value: Any, draw: st.DrawFn) -> str:
    if value is None:
        return draw(st.sampled_from(["", " "]))
    text = repr(value) if isinstance(value, float) else str(value)
    return draw(st.sampled_from([text, f" {text}", f"{text}  "])) if not isinstance(value, str) else text


@FUZZ
@given(job_rows=job_lists(), data=st.data())
def test_a_generated_csv_reads_back_to_its_rows(job_rows: list[dict[str, Any]], data: st.DataObject) -> None:
    text, lines = write_csv(job_rows, data.draw)
    jobs = parse_job_list(text, "csv", name="jobs.csv", folder=FOLDER)
    assert_jobs_equal(jobs, [expected_job(line, row) for line, row in zip(lines, job_rows, strict=True)])


@FUZZ
@given(job_rows=job_lists(), data=st.data())
def test_a_generated_jsonl_reads_back_to_its_rows(
    job_rows: list[dict[str, Any]], data: st.DataObject
) -> None:
    parts, lines = [], []
    for row in job_rows:
        parts += [""] * data.draw(st.integers(0, 2))
        nulls = {f: None for f in data.draw(st.sets(st.sampled_from(FIELDS[1:]))) if f not in row}
        document = {**row, **nulls}
        lines.append(len(parts) + 1)
        parts.append(json.dumps(document, ensure_ascii=data.draw(st.booleans())))
    jobs = parse_job_list("\n".join(parts) + "\n", "jsonl", name="jobs.jsonl", folder=FOLDER)
    assert_jobs_equal(jobs, [expected_job(line, row) for line, row in zip(lines, job_rows, strict=True)])


# --- one bad value, reported with its line and field ------------------------------------------------

BAD_CELLS: dict[str, list[str]] = {
    "start": ["abc", "-1", "nan", "inf", "1_0", "0x10", "1,5"],
    "end": ["soon", "1e400", "NaN"],
    "yaw": ["left", "inf", "--3", "30deg"],
    "pitch": ["91", "-90.5", "up", "1e3"],
    "seed": ["-1", "1.5", "1e3", "seven", str(2**63), "0x1"],
    "output": ["../x.wav", "/abs.wav", "x.mp3", "a\\b.wav", "sub/", ".wav"],
}


@FUZZ
@given(job_rows=job_lists(), data=st.data())
def test_a_bad_cell_is_reported_with_its_line_and_field(
    job_rows: list[dict[str, Any]], data: st.DataObject
) -> None:
    field = data.draw(st.sampled_from(sorted(BAD_CELLS)))
    index = data.draw(st.integers(0, len(job_rows) - 1))
    bad = data.draw(st.sampled_from(BAD_CELLS[field]))
    row = {k: v for k, v in job_rows[index].items() if k not in ("direction_curve", "yaw", "pitch", "end")}
    job_rows[index] = {**row, field: bad}
    text, lines = write_csv(job_rows, data.draw)
    with pytest.raises(JobListError) as caught:
        parse_job_list(text, "csv", name="jobs.csv", folder=FOLDER)
    assert caught.value.problems == [
        p for p in caught.value.problems if p.startswith(f"jobs.csv:{lines[index]}: field '{field}': ")
    ]
    assert len(caught.value.problems) == 1 and repr(bad) in caught.value.problems[0]


def test_the_message_names_file_line_field_expectation_and_value() -> None:
    text = "media,yaw\na.mp4,10\nb.mp4,20\n\nc.mp4,30\nd.mp4,40\ne.mp4,abc\n"
    with pytest.raises(JobListError) as caught:
        parse_job_list(text, "csv", name="jobs.csv", folder=FOLDER)
    assert str(caught.value) == "jobs.csv:7: field 'yaw': expected a number, got 'abc'"


def test_every_problem_is_collected() -> None:
    text = "media,start,end,pitch,seed\na.mp4,x,1,0,1\nb.mp4,2,1,100,-3\n,1,2,0,0\nc.mp4,1,2,0,0\n"
    with pytest.raises(JobListError) as caught:
        parse_job_list(text, "csv", name="j.csv", folder=FOLDER)
    assert caught.value.problems == [
        "j.csv:2: field 'start': expected a number, got 'x'",
        "j.csv:3: field 'end': must be after start (2 s), got 1",
        "j.csv:3: field 'pitch': expected a number in [-90, 90], got '100'",
        "j.csv:3: field 'seed': expected an integer in [0, 2**63 - 1], got '-3'",
        "j.csv:4: field 'media': required, got an empty value",
    ]


# --- CSV structure ----------------------------------------------------------------------------------


def test_header_problems_name_the_column_and_the_known_ones() -> None:
    with pytest.raises(JobListError) as caught:
        parse_job_list("\ufeffvideo,yaw,Yaw,yaw\nclip.mp4,1,2,3\n", "csv", name="j.csv", folder=FOLDER)
    known = ", ".join(FIELDS)
    assert caught.value.problems == [
        f"j.csv:1: unknown column 'video'; known columns: {known}",
        f"j.csv:1: unknown column 'Yaw'; known columns: {known} (names are lower case: did you mean 'yaw'?)",
        "j.csv:1: column 'yaw' appears more than once",
        "j.csv:1: missing column 'media' (required)",
    ]


def test_line_numbers_count_blank_lines_and_quoted_newlines() -> None:
    text = '\n\nmedia,output\n"two\nlines.mp4",a.wav\n\n,,\n"x, ""y"".mp4",b.wav\nbad.mp4,c.mp3\n'
    with pytest.raises(JobListError) as caught:
        parse_job_list(text, "csv", name="j.csv", folder=FOLDER)
    assert caught.value.problems == [
        "j.csv:9: field 'output': expected a file name ending in .wav, got 'c.mp3'"
    ]
    jobs = parse_job_list(text.replace("c.mp3", "c.wav"), "csv", name="j.csv", folder=FOLDER)
    assert [(j.line, j.media.name) for j in jobs] == [
        (4, "two\nlines.mp4"),
        (8, 'x, "y".mp4'),
        (9, "bad.mp4"),
    ]


def test_rows_of_the_wrong_width_and_broken_quoting() -> None:
    with pytest.raises(JobListError) as caught:
        parse_job_list("media,yaw\na.mp4\nb.mp4,1,2\nc.mp4,3\n", "csv", name="j.csv", folder=FOLDER)
    assert caught.value.problems == [
        "j.csv:2: expected 2 values (media,yaw), got 1",
        "j.csv:3: expected 2 values (media,yaw), got 3",
    ]
    with pytest.raises(JobListError) as caught:
        parse_job_list('media\na.mp4\n"open quote\n', "csv", name="j.csv", folder=FOLDER)
    (problem,) = caught.value.problems
    assert problem.startswith("j.csv:3: not valid CSV: ")


def test_empty_lists() -> None:
    for text, problem in [
        ("", "j.csv: empty file; expected a header row naming the columns"),
        ("\ufeff\n\n", "j.csv: empty file"),
        ("media,yaw\n\n,\n", "j.csv: no jobs"),
    ]:
        with pytest.raises(JobListError) as caught:
            parse_job_list(text, "csv", name="j.csv", folder=FOLDER)
        assert caught.value.problems[0].startswith(problem)
    with pytest.raises(JobListError, match="j.jsonl: no jobs"):
        parse_job_list("\n  \n", "jsonl", name="j.jsonl", folder=FOLDER)


# --- JSON Lines -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"media": 3}', "field 'media': expected a file path, got 3 (an integer)"),
        ('{"media": "a.mp4", "yaw": "30"}', """field 'yaw': expected a number, got "30" (a string)"""),
        ('{"media": "a.mp4", "pitch": true}', "field 'pitch': expected a number, got true (a boolean)"),
        (
            '{"media": "a.mp4", "seed": 1.0}',
            "field 'seed': expected an integer in [0, 2**63 - 1], got 1.0 (a number)",
        ),
        (
            '{"media": "a.mp4", "seed": false}',
            "field 'seed': expected an integer in [0, 2**63 - 1], got false",
        ),
        ('{"media": "a.mp4", "end": [1]}', "field 'end': expected a number, got [1] (a list)"),
        ('{"media": "a.mp4", "output": {"a": 1}}', "field 'output': expected a file name ending in .wav"),
        ('{"media": "a.mp4", "start": NaN}', "field 'start': expected a finite number, got nan"),
        (
            '{"media": "a.mp4", "yaw": 1, "direction_curve": "c.csv"}',
            "field 'direction_curve': give yaw/pitch",
        ),
        ('{"media": "a.mp4", "Seed": 1}', "unknown field 'Seed'; known fields: media, start"),
        (
            '{"media": "a.mp4", "SEED": 1}',
            f"unknown field 'SEED'; known fields: {', '.join(FIELDS)} "
            "(names are lower case: did you mean 'seed'?)",
        ),
        ('{"start": 1}', "missing field 'media' (required)"),
        ('{"media": null}', "field 'media': required, got an empty value"),
        ('["a.mp4"]', 'expected a JSON object, got ["a.mp4"] (a list)'),
        ('{"media": "a.mp4",}', "not valid JSON: "),
    ],
)
def test_jsonl_values_must_have_their_json_type(line: str, problem: str) -> None:
    text = '{"media": "ok.mp4"}\n\n' + line + "\n"
    with pytest.raises(JobListError) as caught:
        parse_job_list(text, "jsonl", name="j.jsonl", folder=FOLDER)
    (found,) = caught.value.problems
    assert found.startswith(f"j.jsonl:3: {problem}")


def test_nulls_and_missing_keys_are_not_given() -> None:
    text = '{"media": "a.mp4", "start": null, "end": null, "yaw": null, "seed": null, "output": null}\r\n'
    assert parse_job_list(text, "jsonl", name="j.jsonl", folder=FOLDER) == [BatchJob(1, FOLDER / "a.mp4")]


# --- values -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaw", "expected"), [(180, -180.0), (540, -180.0), (-190, 170.0), (-180, -180.0), (359.5, -0.5)]
)
def test_yaw_wraps_into_the_ambix_interval(yaw: float, expected: float) -> None:
    (job,) = parse_job_list(f"media,yaw\na.mp4,{yaw}\n", "csv", name="j.csv", folder=FOLDER)
    assert job.yaw_deg == expected


def test_paths_resolve_against_the_folder_and_outputs_are_unique_ignoring_case() -> None:
    text = "media,direction_curve,output\n/abs/a.mp4,pan.csv,A.wav\nsub/b.mp4,,x/./y.wav\nc.mp4,,a.WAV\n"
    with pytest.raises(JobListError) as caught:
        parse_job_list(text, "csv", name="j.csv", folder=FOLDER)
    assert caught.value.problems == ["j.csv:4: field 'output': a.WAV is also written by line 2"]
    first, second = parse_job_list(text.rsplit("c.mp4", 1)[0], "csv", name="j.csv", folder=FOLDER)
    assert (first.media, first.curve, first.output) == (
        Path("/abs/a.mp4"),
        FOLDER / "pan.csv",
        PurePosixPath("A.wav"),
    )
    assert (second.media, second.output) == (FOLDER / "sub/b.mp4", PurePosixPath("x/y.wav"))


def test_end_must_follow_start() -> None:
    with pytest.raises(JobListError, match=r"j.csv:2: field 'end': must be after start \(1.5 s\), got 1.5"):
        parse_job_list("media,start,end\na.mp4,1.5,1.5\n", "csv", name="j.csv", folder=FOLDER)


# --- files ------------------------------------------------------------------------------------------


def test_the_suffix_picks_the_format(tmp_path: Path) -> None:
    assert [job_list_format(Path(f"j{s}")) for s in (".csv", ".CSV", ".jsonl", ".ndjson")] == [
        "csv",
        "csv",
        "jsonl",
        "jsonl",
    ]
    with pytest.raises(JobListError, match=r"j.json: a job list ends in .csv, .jsonl, .ndjson; got '.json'"):
        job_list_format(Path("j.json"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "j.ndjson").write_text('{"media": "clip.mp4"}\n', encoding="utf-8")
    assert read_job_list(tmp_path / "sub" / "j.ndjson") == [BatchJob(1, tmp_path / "sub" / "clip.mp4")]


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(JobListError, match="no such job list"):
        read_job_list(tmp_path / "missing.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("media\ncaf\xe9.mp4\n".encode("latin-1"))
    with pytest.raises(JobListError, match=r"latin.csv: not UTF-8 text \(byte 9\)"):
        read_job_list(latin)
