"""``chat-model``: a deterministic scripted chat model, so tests can assert on what an agent says.

Its script, for an OpenAI-style chat request:
- offered tools and ending with a user question: it calls the retrieval tool with the question;
- given tool results after the question: it answers from them and cites their ``doc_uri``s;
- offered no tools (or ``tool_choice: "none"``): it answers briefly that it has nothing to look
  the question up with. ``tool_choice`` naming a function makes it call that one.

``complete`` then decodes that answer as a model would under the request's options: formatted as
JSON (``response_format``), ended at a stop sequence, cut after ``max_tokens`` tokens (here a
token is a word: a run of non-whitespace).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

from obo_auth.http_edge import BadRequest

_DOC_URI = re.compile(r"""['"]?doc_uri['"]?\s*[:=]\s*['"]([^'"]+)['"]""")
_PAGE_CONTENT = re.compile(r"""page_content['"]?\s*[:=]\s*(['"])(.*?)(?<!\\)\1""", re.S)
_RETRIEVAL_HINTS = ("retriev", "search", "vector", "index", "lookup")
_TOKEN = re.compile(r"\S+")


@dataclass(frozen=True)
class JsonOutput:
    """A reply that must be JSON: any object (``schema`` None), or a value valid for ``schema``."""

    schema: Any = None


@dataclass(frozen=True)
class Completion:
    message: dict[str, Any]  # {"content": str} or {"content": None, "tool_calls": [...]}
    finish_reason: str  # "stop" (the answer or a stop sequence ended it), "length" (max_tokens), "tool_calls"

    @property
    def tokens(self) -> int:
        return count_tokens(self.message.get("content"))


def complete(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    *,
    max_tokens: int | None = None,
    stop: tuple[str, ...] = (),
    output: JsonOutput | None = None,
) -> Completion:
    """``respond``'s answer, decoded as the request asks: JSON if ``output`` says so, ended before
    the first of the ``stop`` sequences, cut after ``max_tokens`` tokens.

    A tool call is never cut: the script's calls are a few tokens, below any useful limit.
    """
    reply = respond(messages, tools, tool_choice)
    if reply.get("tool_calls"):
        return Completion(reply, "tool_calls")
    text = _before_stop(_formatted(reply["content"], output), stop)
    kept = _first_tokens(text, max_tokens)
    return Completion({"content": kept}, "length" if kept != text else "stop")


def count_tokens(text: str | None) -> int:
    return len(_TOKEN.findall(text or ""))


def _formatted(answer: str, output: JsonOutput | None) -> str:
    if output is None:
        return answer
    value = {"answer": answer} if output.schema is None else instance(output.schema, answer)
    return json.dumps(value, ensure_ascii=False)


def _before_stop(text: str, stop: tuple[str, ...]) -> str:
    found = [text.find(sequence) for sequence in stop if sequence in text]
    return text[: min(found)] if found else text


def _first_tokens(text: str, limit: int | None) -> str:
    """``text`` up to the end of its ``limit``-th token, the whitespace between tokens as it was."""
    if limit is None:
        return text
    tokens = list(_TOKEN.finditer(text))
    return text if len(tokens) <= limit else text[: tokens[limit - 1].end()]


def respond(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, tool_choice: Any = None) -> dict[str, Any]:
    """The assistant message for ``messages``: ``{"content": str}`` or ``{"tool_calls": [...]}``."""
    question = _last_user_question(messages)
    tool_results = _tool_results_after_question(messages)
    if tool_results is not None:
        return {"content": _answer_from(question, tool_results)}
    if tools and tool_choice != "none":
        tool = _chosen_tool(tools, tool_choice)
        arguments = {_query_parameter(tool): question}
        call_id = "call_" + hashlib.sha256(f"{tool['function']['name']}:{question}".encode()).hexdigest()[:16]
        return {
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": tool["function"]["name"], "arguments": json.dumps(arguments)}}
            ],
        }
    return {"content": f"You asked: {question!r}. I have no tools to look that up, so I cannot answer from your documents."}


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _last_user_question(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return text_of(message.get("content")).strip()
    raise BadRequest("The chat request has no user message; send at least one message with role 'user'.")


def _tool_results_after_question(messages: list[dict[str, Any]]) -> list[str] | None:
    results: list[str] = []
    for message in reversed(messages):
        role = message.get("role")
        if role == "user":
            break
        if role == "tool":
            results.append(text_of(message.get("content")))
    return list(reversed(results)) if results else None


def _chosen_tool(tools: list[Any], tool_choice: Any) -> dict[str, Any]:
    """The tool ``tool_choice`` names (``{"type": "function", "function": {"name": ...}}``), else the retrieval tool."""
    functions = [t for t in tools if isinstance(t, dict) and isinstance(t.get("function"), dict) and _is_name(t["function"].get("name"))]
    if not functions:
        raise BadRequest("Field 'tools' must hold {'type': 'function', 'function': {'name': ..., 'parameters': ...}} entries.")
    if isinstance(tool_choice, dict):
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        for tool in functions:
            if tool["function"]["name"] == name:
                return tool
        offered = ", ".join(t["function"]["name"] for t in functions)
        raise BadRequest(f"'tool_choice' names the function {str(name)[:80]!r}, which is not among the offered tools: {offered}.")
    for tool in functions:
        described = f"{tool['function']['name']} {tool['function'].get('description', '')}".lower()
        if any(hint in described for hint in _RETRIEVAL_HINTS):
            return tool
    return functions[0]


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _query_parameter(tool: dict[str, Any]) -> str:
    """The string parameter to put the question in; the request is client input, so nothing is assumed of its shape."""
    parameters = tool["function"].get("parameters")
    properties = parameters.get("properties") if isinstance(parameters, dict) else None
    if not isinstance(properties, dict) or not properties or "query" in properties:
        return "query"
    required = parameters.get("required")
    for name in required if isinstance(required, list) else []:
        spec = properties.get(name) if isinstance(name, str) else None
        if isinstance(spec, dict) and spec.get("type") == "string":
            return name
    return next(iter(properties))


def _answer_from(question: str, tool_results: list[str]) -> str:
    passages: list[str] = []
    uris: list[str] = []
    for result in tool_results:
        found = _documents_in_json(result)
        if found is None:  # not JSON, e.g. langchain's str([Document(...)]): read the repr
            found = ([m[1] for m in _PAGE_CONTENT.findall(result)], _DOC_URI.findall(result))
        passages += found[0]
        uris += found[1]
    uris = list(dict.fromkeys(uris))
    if not uris:
        return f"I found nothing in the documents available to you about {question!r}."
    # The regex path leaves repr escapes such as a literal backslash-n; either way, one line.
    summary = " ".join(passages[0].replace("\\n", " ").split()) if passages else "see the sources below"
    return f"{summary}\n\nSources: " + ", ".join(uris)


def _documents_in_json(result: str) -> tuple[list[str], list[str]] | None:
    """``(page_contents, doc_uris)`` of a JSON tool result such as the openai retriever tool's
    ``[{"page_content": ..., "metadata": {"doc_uri": ...}}]``; None when it is not JSON.

    Parsed rather than pattern-matched, so escaped quotes and non-ASCII text come back as written.
    """
    try:
        value = json.loads(result)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to be a tool's documents
        return None
    passages: list[str] = []
    uris: list[str] = []
    queue = deque([value])  # breadth first, so documents keep their order
    while queue:
        item = queue.popleft()
        if isinstance(item, dict):
            if isinstance(item.get("page_content"), str):
                passages.append(item["page_content"])
            if isinstance(item.get("doc_uri"), str):
                uris.append(item["doc_uri"])
            queue.extend(item.values())
        elif isinstance(item, list):
            queue.extend(item)
    return passages, uris


# -- a JSON value for a JSON Schema (response_format json_schema) ------------------------------------

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


def instance(schema: Any, text: str) -> Any:
    """A JSON value valid for the JSON Schema ``schema``, the same every time: its ``const`` or
    first ``enum`` value if it has one, the first ``anyOf``/``oneOf`` branch, ``allOf`` merged,
    every property of an object, ``minItems`` (at least one) items of an array, the first number
    within the bounds, ``text`` for a string (a fixed example for a known ``format``), ``true``.
    ``$ref``s within the schema are followed. Not honoured: ``pattern``, ``uniqueItems``,
    ``not`` and ``if``/``then``. A schema no value can satisfy is a 400.
    """
    return _Instance(schema, text).of(schema, 0)


def _schema_error(why: str) -> BadRequest:
    return BadRequest(f"The 'response_format' JSON schema {why}.")


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
        value = _FORMATS.get(schema.get("format"), self.text)
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
