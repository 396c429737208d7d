"""A JSON value for a JSON Schema, the same every time: what the local chat model answers under
``response_format: json_schema``, and the non-text arguments it fills for a tool call.
"""

from __future__ import annotations

import math
from typing import Any

from obo_auth.http_edge import BadRequest


_MAX_SCHEMA_DEPTH = 32
_MAX_SCHEMA_VALUES = 10_000  # a schema whose $refs fan out would otherwise build an exponential value
_MAX_REPEAT = 1_000  # minItems / minLength beyond this are not a reply, they are a request for memory
_FORMATS = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


def instance(schema: Any, text: str, what: str = "The 'response_format' JSON schema", root: Any = None) -> Any:
    """A JSON value valid for the JSON Schema ``schema``, the same every time: its ``const`` or
    first ``enum`` value if it has one, the first ``anyOf``/``oneOf`` branch, ``allOf`` merged,
    every property of an object, ``minItems`` (at least one) items of an array, the first number
    within the bounds, ``text`` for a string (a fixed example for a known ``format``), ``true``.
    ``$ref``s within the schema are followed. Not honoured: ``pattern``, ``uniqueItems``,
    ``not`` and ``if``/``then``. A schema no value can satisfy is a 400 naming ``what`` it is.
    ``root``: the whole schema ``schema`` is part of, where its ``$ref``s point (default: itself).
    """
    try:
        return _Instance(schema if root is None else root, text).of(schema, 0)
    except _Unsatisfiable as unsatisfiable:
        raise BadRequest(f"{what} {unsatisfiable}.") from None


class _Unsatisfiable(Exception):
    """Why no value fits the schema; ``instance`` says whose schema it is."""


def _schema_error(why: str) -> _Unsatisfiable:
    return _Unsatisfiable(why)


class _Instance:
    def __init__(self, root: Any, text: str):
        self.root, self.text, self.values = root, text, 0

    def of(self, schema: Any, depth: int) -> Any:
        self.values += 1
        if self.values > _MAX_SCHEMA_VALUES or depth > _MAX_SCHEMA_DEPTH:
            raise _schema_error(f"describes a value too large or too deep (over {_MAX_SCHEMA_DEPTH} levels; a recursive $ref?)")
        if schema is False:
            raise _schema_error("is false somewhere: no value satisfies it")
        if schema is True:
            return self.text
        if not isinstance(schema, dict):
            raise _schema_error(f"must be made of objects and booleans, found {type(schema).__name__}")
        return self._chosen(schema, depth)

    def _chosen(self, schema: dict[str, Any], depth: int) -> Any:
        if "$ref" in schema:
            return self.of(self._resolve(schema["$ref"]), depth + 1)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return self.of(schema[key][0], depth + 1)
        if isinstance(schema.get("allOf"), list):
            return self.of(self._merged(schema, depth), depth + 1)
        return getattr(self, "_" + _type_of(schema))(schema, depth)

    def _resolve(self, ref: Any) -> Any:
        """A ``#/...`` JSON pointer into the schema (``#/$defs/Name``, as pydantic writes them)."""
        if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
            raise _schema_error(f"has a $ref other than '#/...' within the schema: {str(ref)[:80]!r}")
        target = self.root
        for part in ref[2:].split("/") if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                raise _schema_error(f"has a $ref to nothing: {ref[:80]!r}")
            target = target[part]
        return target

    def _merged(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        """The ``allOf`` parts as one schema: their properties and required names together."""
        merged = {key: value for key, value in schema.items() if key != "allOf"}
        for part in schema["allOf"]:
            while isinstance(part, dict) and "$ref" in part and depth < _MAX_SCHEMA_DEPTH:
                part, depth = self._resolve(part["$ref"]), depth + 1
            for key, value in part.items() if isinstance(part, dict) else ():
                if key == "properties" and isinstance(value, dict):
                    merged["properties"] = {**_mapping(merged.get("properties")), **value}
                elif key == "required" and isinstance(value, list):
                    merged["required"] = [*_names(merged.get("required")), *value]
                else:
                    merged.setdefault(key, value)
        return merged

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        value = {name: self.of(sub, depth + 1) for name, sub in _mapping(schema.get("properties")).items()}
        extra = schema.get("additionalProperties")
        for name in _names(schema.get("required")):
            if name not in value:
                value[name] = self.of(extra if isinstance(extra, dict) else True, depth + 1)
        return value

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        prefix, items = schema.get("prefixItems"), schema.get("items", True)
        if isinstance(items, list):  # the older tuple form of prefixItems
            prefix, items = items, schema.get("additionalItems", True)
        prefix = prefix if isinstance(prefix, list) else []
        count = max(_count(schema, "minItems", 0), 1, len(prefix))
        count = min(count, _count(schema, "maxItems", count))
        return [self.of(prefix[i] if i < len(prefix) else items, depth + 1) for i in range(count)]

    def _string(self, schema: dict[str, Any], depth: int) -> str:
        form = schema.get("format")
        value = _FORMATS.get(form, self.text) if isinstance(form, str) else self.text
        value = value[: _count(schema, "maxLength", len(value))]
        return value + "." * max(_count(schema, "minLength", 0) - len(value), 0)

    def _integer(self, schema: dict[str, Any], depth: int) -> int:
        return _first_within(schema, integer=True)

    def _number(self, schema: dict[str, Any], depth: int) -> float | int:
        return _first_within(schema, integer=False)

    def _boolean(self, schema: dict[str, Any], depth: int) -> bool:
        return True

    def _null(self, schema: dict[str, Any], depth: int) -> None:
        return None


_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]: the first type that is not null
        kind = next((k for k in kind if k != "null"), "null" if kind else None)
    if kind is None:  # untyped: what its keywords describe, else anything (a string will do)
        if "properties" in schema or "required" in schema:
            return "object"
        return "array" if "items" in schema or "prefixItems" in schema else "string"
    if kind not in _TYPES:
        raise _schema_error(f"has an unknown type {str(kind)[:40]!r} (expected one of {', '.join(_TYPES)})")
    return kind


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _names(value: Any) -> list[str]:
    return [name for name in value if isinstance(name, str)] if isinstance(value, list) else []


def _count(schema: dict[str, Any], key: str, default: int) -> int:
    value = schema.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return default
    if value > _MAX_REPEAT and key.startswith("min"):
        raise _schema_error(f"asks for {key} {value}, over {_MAX_REPEAT}")
    return value


def _first_within(schema: dict[str, Any], *, integer: bool) -> float | int:
    """0 if the bounds allow it, else the first of a few values at or next to them that they allow."""
    bounds = {key: schema[key] for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum") if _is_number(schema.get(key))}
    step = schema.get("multipleOf") if _is_number(schema.get("multipleOf")) and schema["multipleOf"] > 0 else None
    near = [0, bounds.get("minimum"), bounds.get("maximum")]
    near += [bounds["exclusiveMinimum"] + 1] if "exclusiveMinimum" in bounds else []
    near += [bounds["exclusiveMaximum"] - 1] if "exclusiveMaximum" in bounds else []
    low, high = bounds.get("minimum", bounds.get("exclusiveMinimum")), bounds.get("maximum", bounds.get("exclusiveMaximum"))
    near += [(low + high) / 2] if low is not None and high is not None else []
    candidates = [c for c in near if c is not None]
    if integer:
        candidates = [m(c) for c in candidates for m in (math.ceil, math.floor)]
    if step:
        candidates = [step * m(c / step) for c in candidates for m in (math.ceil, math.floor)]
    for value in candidates:
        if _within(value, bounds) and (not integer or float(value).is_integer()):
            return int(value) if integer else value
    raise _schema_error(f"bounds {'an integer' if integer else 'a number'} so that no value fits: {bounds}")


def _is_number(value: Any) -> bool:
    # Finite and of a sane size (JSON may carry 1e999 or a 400-digit integer): bounds to compute with.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e300


def _within(value: float, bounds: dict[str, float]) -> bool:
    return (
        value >= bounds.get("minimum", -math.inf)
        and value > bounds.get("exclusiveMinimum", -math.inf)
        and value <= bounds.get("maximum", math.inf)
        and value < bounds.get("exclusiveMaximum", math.inf)
    )
