"""What the local workspace and local serving share at their HTTP edge: the Databricks error
vocabulary and shape, a bounded request body and its JSON, the bearer token, a loopback socket.

Neutral ground (neither side imports the other for it). Errors carry their HTTP status and
Databricks ``error_code`` on the class (as moto's exceptions do), and serialise to the
``{"error_code": ..., "message": ...}`` shape that databricks-sdk, the vector-search client
and the openai client all parse.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

MAX_BODY_BYTES = 1024 * 1024


class ApiError(Exception):
    """An error the workspace answers with; the message must say what was wrong and what to do."""

    status = 500
    error_code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, error_code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if error_code:
            self.error_code = error_code
        if status:  # an error relayed from another service keeps that service's status
            self.status = status

    def to_response(self) -> JSONResponse:
        return JSONResponse({"error_code": self.error_code, "message": self.message}, status_code=self.status)


class BadRequest(ApiError):
    status = 400
    error_code = "INVALID_PARAMETER_VALUE"


class MalformedRequest(BadRequest):
    error_code = "MALFORMED_REQUEST"


class Unauthenticated(ApiError):
    status = 401
    error_code = "UNAUTHENTICATED"


class PermissionDenied(ApiError):
    status = 403
    error_code = "PERMISSION_DENIED"


class NotFound(ApiError):
    status = 404
    error_code = "RESOURCE_DOES_NOT_EXIST"


class EndpointNotFound(NotFound):
    """No API at this method and path (Databricks answers ENDPOINT_NOT_FOUND)."""

    error_code = "ENDPOINT_NOT_FOUND"


class ServiceUnavailable(ApiError):
    status = 503
    error_code = "TEMPORARILY_UNAVAILABLE"


def parse_json(text: str | bytes, what: str) -> Any:
    """``json.loads``, or a 400 that names ``what`` was not JSON.

    Besides JSONDecodeError, json.loads raises a plain ValueError for integers over Python's
    4300-digit limit and RecursionError for deeply nested arrays: all are the client's fault.
    ``NaN`` and ``Infinity``, which Python accepts and JSON does not, are refused too: echoed
    back, they would make an answer no JSON encoder writes.
    """
    try:
        parsed = json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise MalformedRequest(f"{what} is nested too deeply to parse; send a flatter JSON value.") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors too
        raise MalformedRequest(f"{what} is not valid JSON ({_short(exc)}).") from None
    if not _is_text(parsed):
        raise MalformedRequest(f"{what} holds a lone UTF-16 surrogate escape (such as \\udfff), which is not text; send valid Unicode.")
    return parsed


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def reject_declared_oversize(request: Request) -> None:
    """A 400 before anything else when Content-Length already says the body is too large."""
    declared = request.headers.get("content-length", "")
    # isascii: str.isdigit() is also true for digits such as '²' that int() refuses.
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequest(_too_large(int(declared)), error_code="REQUEST_ENTITY_TOO_LARGE")


async def read_body(request: Request) -> bytes:
    """The body, at most MAX_BODY_BYTES of it (a chunked body declares no length up front)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequest(_too_large(size), error_code="REQUEST_ENTITY_TOO_LARGE")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, *, required: bool = True, expected: str = "a JSON object") -> dict[str, Any]:
    """The request body as a JSON object (the one body reader of the workspace and local
    serving), or a 400 that says what is wrong with it and what to send: ``expected``."""
    body = await read_body(request)
    if not body.strip():
        if required:
            raise MalformedRequest(f"The request body is empty; send {expected}.")
        return {}
    parsed = parse_json(body, "The request body")
    if not isinstance(parsed, dict):
        raise MalformedRequest(f"The request body must be {expected}, not {json_type(parsed)}.")
    return parsed


def _is_text(value: Any) -> bool:
    """False if a string in ``value`` (keys too) holds a lone surrogate: JSON's \\u escapes allow
    one, but it cannot be encoded again, so every later message or record holding it would fail."""
    if isinstance(value, str):
        return value.isascii() or not any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, dict):
        return all(_is_text(key) and _is_text(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_is_text(item) for item in value)
    return True


_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def json_type(value: Any) -> str:
    """What JSON calls the type of ``value``: 'an object', 'a string', ..."""
    return type_name(type(value))


def type_name(kind: type) -> str:
    return _JSON_TYPE_NAMES.get(kind, kind.__name__)


def _too_large(size: int) -> str:
    return f"The request body is {size} bytes or more; the limit is {MAX_BODY_BYTES} bytes."


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, or None."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:160]


# How long the servers on a loopback socket (the workspace, local serving, the App front door)
# keep an idle keep-alive connection open. uvicorn's default (5 s) equals httpx's pool expiry
# (5 s): a client reusing a connection just as the server closes it gets "connection reset"
# (local serving's admin calls did, about once in 50,000 under load, failing a request with a 503).
# Clients drop idle connections well before this, as they do with the platform's front ends.
KEEP_ALIVE_SECONDS = 75


def loopback_socket(port: int = 0, host: str = "127.0.0.1") -> socket.socket:
    """A bound TCP socket for uvicorn (port 0: a free one), or an OSError that says what to do."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without
    # it every response waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"Cannot listen on {host}:{port} ({exc.strerror}); choose another port or 0 for a free one.") from None
    return sock
