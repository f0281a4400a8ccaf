"""Who may talk to the web page, pure: the Host, Origin and CSRF checks (tokens: `security.token_ok`).

* Host: the bound address, ``localhost`` or ``127.0.0.1``, with the bound port. A page on another site
  that rebinds its DNS name to 127.0.0.1 sends its own name as Host and is refused (DNS rebinding).
  A wildcard bind (``0.0.0.0``, ``::``) cannot know the names it is reached by and accepts any Host;
  it is off loopback, so `security.check_bind` has made the token mandatory.
* Origin: every state-changing request must carry ``Origin`` equal to the page's own origin
  (``http://`` + its Host); a missing Origin is refused too, so no other page in the user's browser,
  and no form or image on it, can submit or cancel.
* Fetch metadata: a browser names where an API request comes from (``Sec-Fetch-Site``); only the page
  itself (``same-origin``) and the user (``none``: a typed URL, a bookmark) may read through the API, so
  that another page, even one on another port of this machine, cannot make the browser fetch media or
  results into it (``<video src>``, ``<img>``). Clients that are not browsers send no such header.
* CSRF: the ``X-Visage-CSRF`` header must equal the token bound to the session cookie.
* Token (when the daemon has one): the ``X-Visage-Token`` header, or for GETs a session cookie that was
  made with it.
"""

from __future__ import annotations

import hmac

from ..errors import ErrorCode
from .web_errors import CSRF, FORBIDDEN_HOST, FORBIDDEN_ORIGIN, WebError

_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def _with_port(name: str, port: int) -> str:
    return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"


def allowed_hosts(bound_host: str, port: int) -> frozenset[str] | None:
    """The Host header values the server answers (lower case); None when any is accepted."""
    if bound_host in _WILDCARDS:
        return None
    names = {bound_host.lower(), "localhost", "127.0.0.1"}
    hosts = {_with_port(name, port) for name in names}
    if port == 80:  # browsers leave the default port out
        hosts |= {f"[{name}]" if ":" in name else name for name in names}
    return frozenset(hosts)


def check_host(host: str | None, allowed: frozenset[str] | None) -> None:
    """Refuse (``forbidden_host``) a Host header the server is not reached by."""
    if allowed is None:
        return
    if host is None or host.lower() not in allowed:
        raise WebError(FORBIDDEN_HOST, f"requests must name this daemon as Host, got {host!r}")


def check_origin(origin: str | None, host: str | None) -> None:
    """Refuse (``forbidden_origin``) a state-changing request that does not come from the page itself."""
    if origin is None:
        raise WebError(FORBIDDEN_ORIGIN, "state-changing requests must carry an Origin header")
    if host is None or origin.lower() != f"http://{host.lower()}":
        raise WebError(FORBIDDEN_ORIGIN, f"requests from {origin!r} may not change anything here")


def check_fetch_site(site: str | None) -> None:
    """Refuse (``forbidden_origin``) an API request a browser made for another page."""
    if site is not None and site.lower() not in ("same-origin", "none"):
        raise WebError(FORBIDDEN_ORIGIN, f"the API answers only its own page, not a {site!r} request")


def check_csrf(given: str | None, expected: str | None) -> None:
    """Refuse (``csrf``) a state-changing request without the session's CSRF token."""
    if expected is None:
        raise WebError(CSRF, "no session: GET /api/session first")
    if given is None or not _same_secret(given, expected):
        raise WebError(CSRF, "missing or wrong X-Visage-CSRF header")


def _same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of header text (which may hold any code point)."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def token_matches(given: str | None, expected: str | None) -> bool:
    """Whether a request's ``X-Visage-Token`` satisfies the daemon's token (always, without one)."""
    return expected is None or (given is not None and _same_secret(given, expected))


def check_token(given: str | None, expected: str | None) -> None:
    """Refuse (``unauthorized``) a request without the daemon's token."""
    if not token_matches(given, expected):
        raise WebError(ErrorCode.UNAUTHORIZED.value, "missing or wrong X-Visage-Token header")
