"""The body of ``POST /api/2.0/sql/statements``, checked field by field.

Anything wrong here is the request's fault and an HTTP 400, as on the platform; what is wrong
with the SQL itself only shows when the statement runs (a FAILED statement, failures.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from obo_auth.http_edge import BadRequest
from obo_auth.local._base import field
from obo_auth.local.catalog.sql_text import DIALECT

# The platform takes 16 MiB of SQL; the local warehouse parses in-process, so it takes less.
MAX_STATEMENT_CHARS = 100_000
MAX_PARAMETERS = 256
DEFAULT_WAIT_SECONDS = 10
_WAIT_TIMEOUT = re.compile(r"(\d{1,3})s")
_NAME_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,254}")
_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
# The types a parameter may have: the platform's scalar types (it refuses ARRAY, MAP and STRUCT).
_PARAMETER_TYPE = re.compile(
    r"(STRING|INT|INTEGER|BIGINT|LONG|SMALLINT|SHORT|TINYINT|BYTE|DOUBLE|FLOAT|REAL|BOOLEAN|DATE|TIMESTAMP|TIMESTAMP_NTZ"
    r"|BINARY|VOID|DECIMAL(\(\s*\d{1,2}\s*(,\s*\d{1,2}\s*)?\))?)",
    re.IGNORECASE,
)
# Values the platform accepts that the local warehouse does not serve, and why.
_NOT_SERVED = {
    "disposition": ({"EXTERNAL_LINKS"}, "the local SQL warehouse returns results INLINE only"),
    "format": ({"ARROW_STREAM", "CSV"}, "results come INLINE, and INLINE results are JSON_ARRAY only"),
}


@dataclass(frozen=True)
class Parameter:
    """A named parameter marker's value, bound as a typed literal: never spliced into SQL text."""

    name: str
    value: str | None  # None: SQL NULL
    type: str

    def literal(self) -> exp.Expression:
        value = exp.null() if self.value is None else exp.Literal.string(self.value)
        return exp.cast(value, exp.DataType.build(self.type, dialect=DIALECT))


@dataclass(frozen=True)
class StatementRequest:
    statement: str
    warehouse_id: str
    catalog: str | None
    schema: str | None
    parameters: tuple[Parameter, ...]
    row_limit: int | None
    byte_limit: int | None
    wait_seconds: int  # 0: answer at once, the statement runs when first polled
    cancel_on_timeout: bool  # on_wait_timeout=CANCEL


def statement_request(body: dict[str, Any]) -> StatementRequest:
    statement = field(body, "statement", str)
    if not statement.strip():
        raise BadRequest("Field 'statement' is empty; send the SQL statement to run.")
    if len(statement) > MAX_STATEMENT_CHARS:
        raise BadRequest(f"Field 'statement' is {len(statement)} characters; the local SQL warehouse takes at most {MAX_STATEMENT_CHARS}.")
    _choice(body, "disposition", ("INLINE",))
    _choice(body, "format", ("JSON_ARRAY",))
    on_wait_timeout = _choice(body, "on_wait_timeout", ("CONTINUE", "CANCEL"))
    return StatementRequest(
        statement=statement,
        warehouse_id=field(body, "warehouse_id", str),
        catalog=_name_part(body, "catalog"),
        schema=_name_part(body, "schema"),
        parameters=_parameters(field(body, "parameters", list, [])),
        row_limit=_positive(body, "row_limit"),
        byte_limit=_positive(body, "byte_limit"),
        wait_seconds=_wait_seconds(field(body, "wait_timeout", str, f"{DEFAULT_WAIT_SECONDS}s")),
        cancel_on_timeout=on_wait_timeout == "CANCEL",
    )


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    """``body[name]``, one of ``allowed`` (the first is the default)."""
    value = field(body, name, str, allowed[0])
    not_served, why = _NOT_SERVED.get(name, (set(), ""))
    if value in not_served:
        raise BadRequest(f"Field '{name}' {value} is not supported: {why}.")
    if value not in allowed:
        raise BadRequest(f"Field '{name}' must be one of {', '.join(sorted({*allowed, *not_served}))}, got {value[:40]!r}.")
    return value


def _name_part(body: dict[str, Any], name: str) -> str | None:
    value = field(body, name, str, None)
    if value is not None and not _NAME_PART.fullmatch(value):
        raise BadRequest(f"Field '{name}' must be a {name} name of letters, digits, '_' and '-', got {value[:80]!r}.")
    return value


def _positive(body: dict[str, Any], name: str) -> int | None:
    value = field(body, name, int, None)
    if value is not None and not 0 < value <= 2**53:
        raise BadRequest(f"Field '{name}' must be a positive integer, got {value}.")
    return value


def _wait_seconds(text: str) -> int:
    match = _WAIT_TIMEOUT.fullmatch(text)
    seconds = int(match.group(1)) if match else None
    if seconds is None or not (seconds == 0 or 5 <= seconds <= 50):
        raise BadRequest(f"Field 'wait_timeout' must be '0s' or between '5s' and '50s' (such as '10s'), got {text[:40]!r}.")
    return seconds


def _parameters(items: list[Any]) -> tuple[Parameter, ...]:
    if len(items) > MAX_PARAMETERS:
        raise BadRequest(f"Field 'parameters' has {len(items)} items; at most {MAX_PARAMETERS} are supported.")
    parameters: dict[str, Parameter] = {}
    for i, item in enumerate(items):
        where = f"parameters[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"Field '{where}' must be an object with 'name', 'value' and optionally 'type'.")
        name = field(item, "name", str)
        if not _PARAMETER_NAME.fullmatch(name):
            raise BadRequest(f"Field '{where}.name' must be a parameter marker name (letters, digits and '_'), got {name[:80]!r}.")
        if name in parameters:
            raise BadRequest(f"Field '{where}.name': the parameter {name!r} is given twice.")
        kind = field(item, "type", str, "STRING").strip()
        if not _PARAMETER_TYPE.fullmatch(kind):
            raise BadRequest(
                f"Field '{where}.type' must be a scalar SQL type such as STRING, INT, BIGINT, DOUBLE, BOOLEAN, DATE, "
                f"TIMESTAMP or DECIMAL(10,2), got {kind[:40]!r}."
            )
        parameters[name] = Parameter(name, field(item, "value", str, None), kind.upper())
    return tuple(parameters.values())
