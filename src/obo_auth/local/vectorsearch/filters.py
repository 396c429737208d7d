"""``filters_json`` of a vector search query: parsing and matching, no HTTP.

The subset of the documented filter syntax the local workspace serves:
``{"col": v}`` (equals), ``{"col": [v1, v2]}`` (in), ``{"col NOT": v}``, ``{"col <": v}``,
``{"col <=": v}``, ``{"col >": v}``, ``{"col >=": v}`` and ``{"col LIKE": "text"}`` (contains).
Anything else is a 400 that lists what is supported.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from typing import Any

from obo_auth.local._base import BadRequest

Predicate = Callable[[dict[str, Any]], bool]

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_SUPPORTED = "'col', 'col NOT', 'col <', 'col <=', 'col >', 'col >=', 'col LIKE'"


def parse_filters(filters_json: str | None, columns: set[str]) -> list[Predicate]:
    if filters_json is None:
        return []
    try:
        filters = json.loads(filters_json)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"filters_json is not valid JSON ({exc.msg}); send a JSON object such as {{\"title\": \"Travel\"}}.") from None
    if not isinstance(filters, dict):
        raise BadRequest("filters_json must encode a JSON object mapping column (and operator) to value.")
    return [_predicate(key, value, columns) for key, value in filters.items()]


def matches(row: dict[str, Any], predicates: list[Predicate]) -> bool:
    return all(p(row) for p in predicates)


def _predicate(key: str, value: Any, columns: set[str]) -> Predicate:
    column, _, op = key.strip().partition(" ")
    op = op.strip().upper()
    if column not in columns:
        raise BadRequest(f"Filter on unknown column {column[:80]!r}; the index has columns {sorted(columns)}.")
    if isinstance(value, (dict,)) or (isinstance(value, list) and op):
        raise BadRequest(f"Filter {key[:80]!r} has an unsupported value {json.dumps(value)[:80]}.")
    if op == "":
        allowed = value if isinstance(value, list) else [value]
        return lambda row: row.get(column) in allowed
    if op == "NOT":
        return lambda row: row.get(column) != value
    if op == "LIKE":
        if not isinstance(value, str):
            raise BadRequest(f"Filter {key[:80]!r} needs a string value.")
        return lambda row: isinstance(row.get(column), str) and value.lower() in row[column].lower()
    if op in _COMPARISONS:
        compare = _COMPARISONS[op]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise BadRequest(f"Filter {key[:80]!r} needs a number.")
        return lambda row: isinstance(row.get(column), (int, float)) and compare(row[column], value)
    raise BadRequest(f"Unsupported filter operator {op[:20]!r} in {key[:80]!r}; supported: {_SUPPORTED}.")
