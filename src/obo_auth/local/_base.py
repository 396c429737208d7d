"""What every service of the local workspace shares: its errors, body parsing and paging.

Errors carry their HTTP status and Databricks ``error_code`` on the class (as moto's
exceptions do), and serialise to the ``{"error_code": ..., "message": ...}`` shape that
databricks-sdk, the vector-search client and the openai client all parse.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

MAX_BODY_BYTES = 1024 * 1024

# Unity Catalog three-level names: catalog.schema.name, each part a plain identifier.
# The seed schema uses the same patterns, so every seeded name is reachable over HTTP.
UC_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]*\.[A-Za-z0-9_][A-Za-z0-9_-]*\.[A-Za-z0-9_][A-Za-z0-9_-]*$"
# Serving and vector-search endpoint names: letters, digits, dashes and underscores.
ENDPOINT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
# fullmatch, not match: Python's "$" also matches before a trailing newline.
_UC_NAME = re.compile(UC_NAME_PATTERN)
_ENDPOINT_NAME = re.compile(ENDPOINT_NAME_PATTERN)


class ApiError(Exception):
    """An error the workspace answers with; the message must say what was wrong and what to do."""

    status = 500
    error_code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, error_code: str | None = None):
        super().__init__(message)
        self.message = message
        if error_code:
            self.error_code = error_code

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


async def read_json(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    body = await read_body(request)
    if not body.strip():
        if required:
            raise MalformedRequest("The request body is empty; send a JSON object.")
        return {}
    parsed = parse_json(body, "The request body")
    if not isinstance(parsed, dict):
        raise MalformedRequest(f"The request body must be a JSON object, not {_json_type(parsed)}.")
    return parsed


def parse_json(text: str | bytes, what: str) -> Any:
    """``json.loads``, or a 400 that names ``what`` was not JSON.

    Besides JSONDecodeError, json.loads raises a plain ValueError for integers over Python's
    4300-digit limit and RecursionError for deeply nested arrays: all are the client's fault.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise MalformedRequest(f"{what} is nested too deeply to parse; send a flatter JSON value.") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors too
        raise MalformedRequest(f"{what} is not valid JSON ({_short(exc)}).") from None


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


def _too_large(size: int) -> str:
    return f"The request body is {size} bytes or more; the limit is {MAX_BODY_BYTES} bytes."


_MISSING = object()


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, or None."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


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
        expected = " or ".join(_type_name(k) for k in kinds)
        raise BadRequest(f"Field '{name}' must be {expected}, got {_json_type(value)}.")
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


_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def _json_type(value: Any) -> str:
    return _type_name(type(value))


def _type_name(kind: type) -> str:
    return _JSON_TYPE_NAMES.get(kind, kind.__name__)


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:160]
