"""The body of ``POST /api/2.0/external-function``, read into the request the upstream gets.

databricks-sdk sends (``serving_endpoints.http_request``, sdk/mixins/open_ai_client.py)
``{connection_name, method, path, headers, json, params}``, the last three JSON *strings* or
null; the generated client may add ``sub_domain``. Everything is checked here, each problem a
400 naming the field: the path stays under the connection's base (no '..', no '//host', no
URL), headers are plain header names and values, and nothing the caller sends may carry the
caller's own Databricks token (the platform would forward it; here it is refused, so an agent
that leaks its token fails its tests rather than reaching a real service).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field as dataclass_field
from typing import Any
from urllib.parse import unquote, urlencode

from obo_auth.http_edge import BadRequest, json_type, parse_json
from obo_auth.local._base import field
from obo_auth.local.connections.models import CREDENTIAL_OF_HEADER

# ExternalFunctionRequestHttpMethod, and what the http_request SQL function accepts.
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
MAX_PATH_CHARS = 2048
MAX_HEADERS = 64
MAX_HEADER_CHARS = 8192
MAX_PARAMS = 256
# RFC 9110 token characters.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}", re.ASCII)
# Visible ASCII, spaces and tabs: what every HTTP library sends unchanged (no CR, LF or NUL).
# Visible ASCII with inner spaces: a value with leading or trailing blanks is refused by HTTP clients.
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?", re.ASCII)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# The workspace sets these (the connection's credential, who it belongs to) or the HTTP client
# does (one hop's framing): a caller's are dropped, never forwarded.
NOT_FORWARDED = frozenset(
    {
        "authorization", "proxy-authorization", CREDENTIAL_OF_HEADER.lower(),
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection",
        "te", "trailer", "upgrade", "expect",
    }
)  # fmt: skip


@dataclass(frozen=True)
class UpstreamRequest:
    connection_name: str
    method: str
    path: str  # "" or "/..." to append to the connection's base path; percent-encoding kept
    # Not in the repr: a caller may send an API key of its own in the query, a header or the body.
    query: str = dataclass_field(repr=False)  # already encoded, "" for none
    headers: dict[str, str] = dataclass_field(repr=False)  # the caller's, less NOT_FORWARDED
    body: bytes | None = dataclass_field(repr=False)  # the `json` field's text, as sent

    @property
    def shown_path(self) -> str:
        """The path without its query, whose values may be secrets (an API key in ?key=)."""
        return self.path or "/"


def parse(body: dict[str, Any], caller_token: str | None) -> UpstreamRequest:
    if field(body, "sub_domain", str, None) is not None:
        raise BadRequest("Field 'sub_domain' is not supported by the local workspace: its connections reach loopback servers, which have no subdomains.")
    name = field(body, "connection_name", str)
    method = field(body, "method", str)
    if method.upper() not in METHODS:
        raise BadRequest(f"Field 'method' must be one of {', '.join(METHODS)}, got {method[:20]!r}.")
    raw_path = field(body, "path", str)
    path, path_query = _path(raw_path)
    given_headers = _json_field(body, "headers")
    headers = _headers(given_headers)
    params = _params(_json_field(body, "params"))
    json_text = field(body, "json", str, None)
    # A 400 if it is not JSON; sent as the caller wrote it.
    parsed_json = parse_json(json_text, "Field 'json'") if json_text is not None else None
    # The headers as given: one that would be dropped (Authorization) still shows an agent
    # handing its Databricks token on.
    _refuse_caller_token(
        caller_token,
        [raw_path, unquote(raw_path), json_text or "", *_strings(parsed_json), *_strings(given_headers), *_strings(params)],
    )
    query = "&".join(part for part in (path_query, urlencode(params)) if part)
    content = json_text.encode("utf-8") if json_text is not None else None
    if content is not None and not any(h.lower() == "content-type" for h in headers):
        headers["Content-Type"] = "application/json"
    return UpstreamRequest(name, method.upper(), path, query, headers, content)


def _strings(value: Any) -> list[str]:
    """Every key and string value in a parsed JSON value: where a token could hide."""
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (str(key), *_strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [value] if isinstance(value, str) else []


def _refuse_caller_token(caller_token: str | None, sent: list[str]) -> None:
    if caller_token and any(caller_token in value for value in sent):
        raise BadRequest(
            "The request carries the caller's own Databricks token in its path, headers, params or json; "
            "a connection sends its own credential upstream, never the caller's."
        )


def _path(path: str) -> tuple[str, str]:
    """``(path, query)``: the path to append to the base, or a 400 saying why it cannot stay under it."""
    shown = repr(path.partition("?")[0][:120])  # never the query: it may hold the caller's secrets
    if len(path) > MAX_PATH_CHARS:
        raise BadRequest(f"Field 'path' is longer than {MAX_PATH_CHARS} characters.")
    if not path.isascii() or not path.isprintable() or " " in path or "\\" in path:
        raise BadRequest(f"Field 'path' must be printable ASCII without spaces or backslashes (percent-encode the rest), got {shown}.")
    if _SCHEME.match(path) or "://" in path or path.startswith("//"):
        raise BadRequest(f"Field 'path' must be a path under the connection's base URL, not a URL or '//host', got {shown}.")
    if "#" in path:
        raise BadRequest(f"Field 'path' must not have a fragment ('#'), got {shown}.")
    path, _, query = path.partition("?")
    path = "/" + path.lstrip("/") if path else ""
    # Checked decoded too, as appended: '%2e%2e' is '..' to most servers, and '%2F' a '/'.
    decoded = unquote(path)
    # A segment's ';' parameters are dropped too: some servers read '..;' as '..'.
    segments = [segment.split(";", 1)[0] for segment in decoded.strip("/").split("/")]
    if any(s in (".", "..") for s in segments) or "//" in decoded or not decoded.isprintable() or "\\" in decoded:
        raise BadRequest(f"Field 'path' must stay under the connection's base: no '.' or '..' segments, no '//' (encoded or not), got {shown}.")
    return path, query


def _json_field(body: dict[str, Any], name: str) -> Any:
    """A field the SDK sends as a JSON string (``json.dumps`` of a dict), parsed; None if absent."""
    text = field(body, name, str, None)
    return None if text is None else parse_json(text, f"Field '{name}'")


def _headers(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"Field 'headers' must hold a JSON object of header names to string values, got {json_type(value)}.")
    if len(value) > MAX_HEADERS:
        raise BadRequest(f"Field 'headers' has {len(value)} headers; the limit is {MAX_HEADERS}.")
    headers = {}
    for name, text in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise BadRequest(f"Field 'headers' has a name that is not an HTTP header name: {name[:60]!r}.")
        # Values are never shown: a header may hold a credential.
        if not isinstance(text, str):
            raise BadRequest(f"Field 'headers' must map each name to a string; '{name}' has {json_type(text)}.")
        if len(text) > MAX_HEADER_CHARS or not _HEADER_VALUE.fullmatch(text):
            raise BadRequest(f"Field 'headers': the value of '{name}' must be at most {MAX_HEADER_CHARS} visible ASCII characters (no line breaks).")
        if name.lower() not in NOT_FORWARDED:
            headers[name] = text
    return headers


def _params(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"Field 'params' must hold a JSON object of query parameter names to values, got {json_type(value)}.")
    if len(value) > MAX_PARAMS:
        raise BadRequest(f"Field 'params' has {len(value)} parameters; the limit is {MAX_PARAMS}.")
    params = {}
    for name, text in value.items():
        # bool is an int in Python, never in JSON; a number is sent as written.
        if isinstance(text, bool) or not isinstance(text, (str, int, float)):
            raise BadRequest(f"Field 'params' must map each name to a string or a number; {name[:60]!r} has {json_type(text)}.")
        params[name] = text if isinstance(text, str) else str(text)
    return params
