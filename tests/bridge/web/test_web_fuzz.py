"""Generated bodies for ``POST /api/jobs`` (and a few other routes): every answer is a job or a refusal with
the contract's error object (a 4xx), never a server error; and upload names never leave their folder.

``VISAGE_FUZZ_EXAMPLES`` runs them longer (README, "Tests").
"""

from __future__ import annotations

import json
import os
import unicodedata
from typing import Any
from urllib.parse import quote

from conftest import WebDaemon
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_client import PageSession, request

from visage.bridge.web.job_request import FIELDS
from visage.bridge.web.uploads import MAX_NAME_BYTES, safe_file_name

EXAMPLES = int(os.environ.get("VISAGE_FUZZ_EXAMPLES", "150"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
ANSWERS = {202, 400, 403, 404, 409, 413}

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(10**400), 10**400),
    st.floats(allow_nan=False),
    st.sampled_from([0, 0.5, 1.0, -1.0, 90.0, 91.0, 360.0, 361.0, 1e308, 2**63, -(2**63)]),
    st.text(max_size=12),
    st.sampled_from(["/", "/etc/passwd", "relative.wav", "\ud800", "joint", "dual", "/tmp/x.wav"]),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
)
_bodies = st.dictionaries(st.sampled_from([*sorted(FIELDS), "extra", ""]), _json, max_size=len(FIELDS))


def _check(reply: Any) -> None:
    assert reply.status in ANSWERS, (reply.status, reply.body)
    if reply.status != 202:
        reply.error()


@FUZZ_SETTINGS
@given(body=_bodies, with_media=st.booleans())
def test_job_bodies_get_a_job_or_a_4xx_with_an_error_object(
    web_daemon: WebDaemon, body: dict[str, Any], with_media: bool
) -> None:
    page = PageSession(web_daemon.url).open()
    if with_media:
        body = {**body, "media": str(web_daemon.media)}
    _check(page.post("/api/jobs", json.dumps(body).encode(), **{"Content-Type": "application/json"}))


@FUZZ_SETTINGS
@given(raw=st.one_of(st.binary(max_size=64), _json.map(lambda v: json.dumps(v).encode())))
def test_any_bytes_as_a_job_body_are_refused_cleanly(web_daemon: WebDaemon, raw: bytes) -> None:
    page = PageSession(web_daemon.url).open()
    reply = page.post("/api/jobs", raw)
    assert reply.status != 202 or raw.lstrip().startswith(b"{")
    _check(reply)


@FUZZ_SETTINGS
@given(path=st.text(max_size=40), route=st.sampled_from(["/api/media", "/api/probe"]))
def test_any_path_query_is_refused_cleanly(web_daemon: WebDaemon, path: str, route: str) -> None:
    reply = request(web_daemon.url, "GET", f"{route}?path={quote(path, safe='')}")
    assert reply.status in {200, 400, 403, 404}, (reply.status, reply.body)
    if reply.status != 200:
        reply.error()


@settings(max_examples=max(EXAMPLES, 500), deadline=None, database=None)
@given(name=st.text(max_size=300))
def test_upload_names_stay_one_plain_file_name(name: str) -> None:
    safe = safe_file_name(name)
    assert safe and len(safe.encode()) <= MAX_NAME_BYTES <= 255 - len("..part")  # the temporary name too
    assert "/" not in safe and "\\" not in safe and safe not in (".", "..")
    assert not safe.startswith((".", " ")) and not safe.endswith((".", " "))
    assert all(unicodedata.category(c)[0] != "C" for c in safe)
    safe.encode("utf-8")  # no lone surrogates: every file system takes it
