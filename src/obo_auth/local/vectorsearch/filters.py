"""``filters_json`` of a vector search query: parsing and matching, no HTTP.

The subset of the documented filter syntax for standard endpoints (Databricks "Vector Search
filtering guide") the local workspace serves: ``{"col": v}`` (equals), ``{"col": [v1, v2]}``
(any of), ``{"col NOT": v}``, ``{"col <": v}``, ``{"col <=": v}``, ``{"col >": v}``,
``{"col >=": v}``, ``{"col LIKE": "token"}`` (a whole whitespace-separated token),
``{"col LIKE": "%part%"}`` (a SQL pattern, ``%`` = any text) and
``{"col1 OR col2": [v1, v2]}`` (col1 == v1 or col2 == v2). Keys are ANDed.
Anything else is a 400 that lists what is supported.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from typing import Any

from obo_auth.http_edge import BadRequest, parse_json

Predicate = Callable[[dict[str, Any]], bool]

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_SUPPORTED = "'col', 'col NOT', 'col <', 'col <=', 'col >', 'col >=', 'col LIKE', 'col1 OR col2'"


def parse_filters(filters_json: str | None, columns: set[str]) -> list[Predicate]:
    if filters_json is None:
        return []
    filters = parse_json(filters_json, 'filters_json (send a JSON object such as {"title": "Travel"})')
    if not isinstance(filters, dict):
        raise BadRequest("filters_json must encode a JSON object mapping column (and operator) to value.")
    return [_predicate(key, value, columns) for key, value in filters.items()]


def matches(row: dict[str, Any], predicates: list[Predicate]) -> bool:
    return all(p(row) for p in predicates)


def _predicate(key: str, value: Any, columns: set[str]) -> Predicate:
    if " OR " in key.upper():
        return _or_predicate(key, value, columns)
    column, _, op = key.strip().partition(" ")
    op = op.strip().upper()
    _known(column, columns)
    if isinstance(value, dict) or (isinstance(value, list) and op):
        raise BadRequest(f"Filter {key[:80]!r} has an unsupported value {json.dumps(value)[:80]}.")
    if op == "":
        allowed = value if isinstance(value, list) else [value]
        return lambda row: row.get(column) in allowed
    if op == "NOT":
        return lambda row: row.get(column) != value
    if op == "LIKE":
        if not isinstance(value, str) or not value.strip("%"):
            raise BadRequest(f"Filter {key[:80]!r} needs a non-empty string value.")
        return _like(column, value)
    if op in _COMPARISONS:
        compare = _COMPARISONS[op]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise BadRequest(f"Filter {key[:80]!r} needs a number.")
        return lambda row: isinstance(row.get(column), (int, float)) and compare(row[column], value)
    raise BadRequest(f"Unsupported filter operator {op[:20]!r} in {key[:80]!r}; supported: {_SUPPORTED}.")


def _known(column: str, columns: set[str]) -> None:
    if column not in columns:
        raise BadRequest(f"Filter on unknown column {column[:80]!r}; the index has columns {sorted(columns)}.")


def _like(column: str, value: str) -> Predicate:
    # Without '%', LIKE matches a whole token (as the filtering guide says), so "leave"
    # does not match "leaves". Matching is case-insensitive here; the guide does not say.
    if "%" in value:
        parts = value.lower().split("%")
        return lambda row: isinstance(row.get(column), str) and _wildcard_match(row[column].lower(), parts)
    token = value.lower()
    return lambda row: isinstance(row.get(column), str) and token in row[column].lower().split()


def _wildcard_match(text: str, parts: list[str]) -> bool:
    """``text`` matches ``parts`` joined by '%' wildcards: a greedy left-to-right scan, linear
    in the text (a regex of many '.*' backtracks exponentially on a crafted pattern)."""
    first, *middle, last = parts
    if not text.startswith(first) or len(text) < len(first) + len(last):
        return False
    position = len(first)
    end = len(text) - len(last)
    for part in middle:
        found = text.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return text.endswith(last) and position <= end


def _or_predicate(key: str, value: Any, columns: set[str]) -> Predicate:
    # {"col1 OR col2": [v1, v2]}: positional, col1 == v1 or col2 == v2.
    ors = [c.strip() for c in re.split(r"\s+OR\s+", key.strip(), flags=re.IGNORECASE)]
    for column in ors:
        if " " in column or not column:
            raise BadRequest(f"Filter {key[:80]!r}: OR joins plain column names, as in 'col1 OR col2'.")
        _known(column, columns)
    if not isinstance(value, list) or len(value) != len(ors):
        raise BadRequest(f"Filter {key[:80]!r} needs an array of {len(ors)} values, one per column.")
    pairs = list(zip(ors, value))
    return lambda row: any(row.get(column) == wanted for column, wanted in pairs)
