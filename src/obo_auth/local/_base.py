"""What every service of the local workspace shares beyond the HTTP edge (obo_auth.http_edge):
typed request fields, Unity Catalog and endpoint names, loopback URLs, paging. The body itself
is read by the HTTP edge's ``read_json``, the one body reader of the workspace and local serving."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from obo_auth.http_edge import BadRequest, json_type, type_name

# Unity Catalog three-level names: catalog.schema.name, each part a plain identifier.
# The seed schema uses the same patterns, so every seeded name is reachable over HTTP.
UC_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]*\.[A-Za-z0-9_][A-Za-z0-9_-]*\.[A-Za-z0-9_][A-Za-z0-9_-]*$"
# Serving and vector-search endpoint names: letters, digits, dashes and underscores.
ENDPOINT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
# fullmatch, not match: Python's "$" also matches before a trailing newline.
_UC_NAME = re.compile(UC_NAME_PATTERN)
_ENDPOINT_NAME = re.compile(ENDPOINT_NAME_PATTERN)
# Where the workspace may send callers' tokens (an agent served locally, a local App): loopback
# only, written exactly so (scheme, host, port, at most a "/"), nothing else in it.
_LOOPBACK_URL = re.compile(r"http://(127\.0\.0\.1|localhost|\[::1\])(?::([0-9]{1,5}))?([/?#].*)?", re.ASCII | re.DOTALL)


_MISSING = object()


def field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = _MISSING) -> Any:
    """``body[name]`` checked against ``kind``; a missing required field or a wrong type is a 400."""
    if name not in body or body[name] is None:
        if default is _MISSING:
            raise BadRequest(f"Missing required field '{name}'.")
        return default
    value = body[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int in Python, never in JSON.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        expected = " or ".join(type_name(k) for k in kinds)
        raise BadRequest(f"Field '{name}' must be {expected}, got {json_type(value)}.")
    return value


def int_field(body: dict[str, Any], name: str, default: int, *, low: int, high: int) -> int:
    value = field(body, name, int, default)
    if not low <= value <= high:
        raise BadRequest(f"Field '{name}' must be between {low} and {high}, got {value}.")
    return value


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Query parameter '{name}' must be an integer, got {raw[:40]!r}.") from None
    if not low <= value <= high:
        raise BadRequest(f"Query parameter '{name}' must be between {low} and {high}, got {value}.")
    return value


def uc_name(name: str, what: str) -> str:
    """A Unity Catalog ``catalog.schema.name``, or a 400 that shows the expected form."""
    if not _UC_NAME.fullmatch(name):
        raise BadRequest(
            f"Invalid {what} name {name[:120]!r}: expected a three-level name 'catalog.schema.name' "
            "of letters, digits, '_' and '-'."
        )
    return name


def endpoint_name(name: str, what: str) -> str:
    if not _ENDPOINT_NAME.fullmatch(name):
        raise BadRequest(
            f"Invalid {what} name {name[:120]!r}: use 1-63 letters, digits, '-' and '_', starting with a letter or digit."
        )
    return name


def page(items: list[Any], start: int, count: int) -> list[Any]:
    """SCIM-style paging: ``start`` is 1-based, as in ``startIndex``."""
    return items[start - 1 : start - 1 + count]


def token_page(request: Request, items: list[Any], default_size: int = 100, max_size: int = 1000) -> tuple[list[Any], dict[str, str]]:
    """One page of ``items`` for ``page_size`` / ``page_token`` (the offset of the page, as this
    workspace hands it out) and, if more follow, ``{"next_page_token": ...}``; a token it did not
    hand out is a 400."""
    size = query_int(request, "page_size", default_size, low=1, high=max_size)
    token = request.query_params.get("page_token") or "0"
    # isascii: str.isdigit() is also true for digits such as '²' that int() refuses.
    if not (token.isascii() and token.isdigit() and len(token) <= 9):
        raise BadRequest(f"Query parameter 'page_token' {token[:40]!r} is not a token this API returned.")
    start = int(token)
    following = {"next_page_token": str(start + size)} if start + size < len(items) else {}
    return items[start : start + size], following


def loopback_url(url: str | None, *, example: str, root: str) -> str | None:
    """``http://HOST:PORT`` rebuilt from ``url`` if it is a loopback URL (HOST: ``127.0.0.1``,
    ``localhost`` or ``[::1]``), else a 400 saying why. ``None``: nothing listens.

    ``example`` shows a good URL and what listens there; ``root`` says why a path is refused
    (what answers at the root). The URL is rebuilt, never stored as given: callers' tokens go there.
    """
    if url is None:
        return None
    why = loopback_url_problem(url, root=root)
    if why:
        raise BadRequest(f"Field 'url' must be a loopback URL such as {example}: {why}, got {url[:120]!r}.")
    match = _LOOPBACK_URL.fullmatch(url)
    assert match is not None  # loopback_url_problem said it matches
    return f"http://{match.group(1)}:{int(match.group(2))}"


def loopback_url_problem(url: str, *, root: str) -> str | None:
    """Why ``url`` is not a loopback ``http://HOST:PORT`` (``root``: why a path is refused), or None."""
    if not url.isprintable() or any(char.isspace() for char in url):
        return "it has control characters or spaces"
    match = _LOOPBACK_URL.fullmatch(url)
    if match is None:
        return "only http:// to 127.0.0.1, localhost or [::1] and a port, without user info"
    if match.group(2) is None:
        return "it has no port"
    if not 1 <= int(match.group(2)) <= 65535:
        return "its port is not between 1 and 65535"
    rest = match.group(3) or ""
    if "?" in rest:
        return "it has a query"
    if "#" in rest:
        return "it has a fragment"
    if rest not in ("", "/"):
        return f"it has a path ({root})"
    return None
