"""What the local chat model says: a short script an author can predict, for any agent.

For an OpenAI-style chat request (the Responses route is turned into one):

1. **Tool results after the last user message: answer from them.**
   - Documents (a retriever's: each with a ``page_content``, and their ``doc_uri``s): the first
     passage, then ``Sources:`` and every ``doc_uri``; an empty list from a retrieval tool
     (named with retriev, search, vector, index or lookup): "I found nothing ...".
   - Anything else (text, JSON, a table, an empty list from another tool) is quoted as it came,
     one paragraph per tool: ``The <tool> tool returned: <result>`` (``A tool returned: ...``
     for a result whose call it cannot find).
   - A question asking for the result only ("respond with ONLY the raw result", "return only
     ...", "just the output", "nothing else") gets exactly the results, nothing around them.
2. **Offered tools (and ``tool_choice`` is not "none"): call them** (at most 128 tools).
   Which ones, in order: ``tool_choice`` naming a function; else every tool the question names
   (its function name of 3 or more characters, or the name with ``_`` as spaces, as whole
   words); else the tool whose description shares the most words with the question; else a
   retrieval tool; else the first tool whose parameters the question can fill; else the first
   tool. Arguments come from each tool's JSON schema (``$ref``s followed): a parameter named
   ``query``, ``question``, ``q``, ``prompt``, ``text`` or ``input`` gets the whole question;
   other required strings get the question's quoted values in turn ('...' or "...", not an
   apostrophe inside a word), else the question; a parameter with an ``enum`` its first value;
   numbers the first number of the question the schema allows (bounds, ``multipleOf``,
   integer), else its default if allowed, else the first value within bounds; booleans their
   default, else false; other types a value valid for their schema; a tool with no parameters
   ``{}``.
3. **No tools: say so** ("You asked: ... I have no tools to look that up ...").

The same input gives the same output, streamed or not: call ids are hashes of the call.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import deque
from typing import Any

from obo_auth.http_edge import BadRequest
from obo_auth.local.serving.json_instance import instance

_DOC_URI = re.compile(r"""['"]?doc_uri['"]?\s*[:=]\s*['"]([^'"]+)['"]""")
_PAGE_CONTENT = re.compile(r"""page_content['"]?\s*[:=]\s*(['"])(.*?)(?<!\\)\1""", re.S)
_RETRIEVAL_HINTS = ("retriev", "search", "vector", "index", "lookup")
# A quoted value: quotes not inside a word, so "What's in Alice's table?" holds none.
_QUOTED = re.compile(r"""(?<!\w)'([^'\n]{1,200})'(?!\w)|(?<!\w)"([^"\n]{1,200})"(?!\w)""")
_NUMBER = re.compile(r"(?<![\w.])-?\d{1,300}(?:\.\d{1,300})?(?!\.?\d|\w)")
_WORD = re.compile(r"[a-z0-9]+")
# "Respond with ONLY the raw result", "return only ...", "just the output", "nothing else".
_ONLY_THE_RESULT = re.compile(
    r"\b(?:respond|reply|answer|return)\b[^.?!\n]{0,30}\bonly\b|\b(?:only|just) the (?:raw )?(?:result|output)s?\b|\bnothing else\b", re.I
)
MAX_TOOLS = 128  # as the OpenAI API: more is a 400, not minutes of matching
_MIN_NAME_CHARS = 3  # a tool named "a" is not named by every question holding the word "a"
# Words too common to say which tool a question is about.
_COMMON = frozenset(
    "a an and are as at be by can do does for from get give has have how i in is it its me my of on or "
    "please show tell that the their them this to use using what when where which who why with you your tool tools".split()
)


def respond(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, tool_choice: Any = None) -> dict[str, Any]:
    """The assistant message for ``messages``: ``{"content": str}`` or ``{"content": None, "tool_calls": [...]}``."""
    question = _last_user_question(messages)
    results = _tool_results_after_question(messages)
    if results is not None:
        return {"content": _answer_from(question, results)}
    if tools and tool_choice != "none":
        calls = [_call(tool, question, index) for index, tool in enumerate(_chosen_tools(tools, tool_choice, question))]
        return {"content": None, "tool_calls": calls}
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


def _tool_results_after_question(messages: list[dict[str, Any]]) -> list[tuple[str | None, str]] | None:
    """``(tool name or None, result)`` of each tool message after the last user message, in order."""
    names: dict[str, str] = {}  # call id -> function name, from the assistant's tool calls
    results: list[tuple[str, str]] = []
    for message in reversed(messages):
        role = message.get("role")
        if role == "user":
            break
        if role == "tool":
            results.append((str(message.get("tool_call_id") or ""), text_of(message.get("content"))))
        calls = message.get("tool_calls") if role == "assistant" else None
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict) and isinstance(call.get("function"), dict) and _is_name(call["function"].get("name")):
                names[str(call.get("id") or "")] = call["function"]["name"]
    if not results:
        return None
    return [(names.get(call_id), text) for call_id, text in reversed(results)]


# -- which tools, with which arguments ------------------------------------------------------------


def _chosen_tools(tools: list[Any], tool_choice: Any, question: str) -> list[dict[str, Any]]:
    functions = [t for t in tools if isinstance(t, dict) and isinstance(t.get("function"), dict) and _is_name(t["function"].get("name"))]
    if not functions:
        raise BadRequest("Field 'tools' must hold {'type': 'function', 'function': {'name': ..., 'parameters': ...}} entries.")
    if len(tools) > MAX_TOOLS:
        raise BadRequest(f"Field 'tools' holds {len(tools)} tools; at most {MAX_TOOLS} are served.")
    if isinstance(tool_choice, dict):
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        chosen = [t for t in functions if t["function"]["name"] == name]
        if not chosen:
            offered = ", ".join(t["function"]["name"] for t in functions)
            raise BadRequest(f"'tool_choice' names the function {str(name)[:80]!r}, which is not among the offered tools: {offered}.")
        return chosen[:1]
    lowered = question.lower()
    words = " " + " ".join(re.findall(r"\w+", lowered)) + " "  # matched with str.find: fast whatever the question
    named = [t for t in functions if _named_in(t["function"]["name"], words)]
    if named:
        return named
    asked = set(_WORD.findall(lowered)) - _COMMON
    overlaps = [len(asked & _description_words(t)) for t in functions]
    if max(overlaps) > 0:
        return [functions[overlaps.index(max(overlaps))]]
    for tool in functions:
        if any(hint in f"{tool['function']['name']} {tool['function'].get('description', '')}".lower() for hint in _RETRIEVAL_HINTS):
            return [tool]
    return [next((t for t in functions if _fillable(t, question)), functions[0])]


def _named_in(name: str, words: str) -> bool:
    """The function name, or its words (``_`` and ``-`` as spaces), as whole words of the question
    (``words``: the question's words, each between spaces)."""
    if len(name) < _MIN_NAME_CHARS:
        return False
    spellings = {" ".join(re.findall(r"\w+", name.lower())), " ".join(re.findall(r"[^\W_]+", name.lower()))}
    return any(spelling and f" {spelling} " in words for spelling in spellings)


def _description_words(tool: dict[str, Any]) -> set[str]:
    described = f"{tool['function']['name'].replace('_', ' ')} {tool['function'].get('description') or ''}".lower()
    return set(_WORD.findall(described)) - _COMMON


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _schema(tool: dict[str, Any]) -> Any:
    """The tool's parameters schema, a ``$ref`` at its top followed (``#/$defs/Args``, as pydantic writes it)."""
    parameters = tool["function"].get("parameters")
    ref = parameters.get("$ref") if isinstance(parameters, dict) else None
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = parameters
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        if isinstance(target, dict):
            return {**parameters, **target}
    return parameters


def _parameters(tool: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The tool's properties and required names; the request is client input, so nothing is assumed of its shape."""
    parameters = _schema(tool)
    properties = parameters.get("properties") if isinstance(parameters, dict) else None
    properties = {k: v for k, v in properties.items() if isinstance(k, str)} if isinstance(properties, dict) else {}
    required = parameters.get("required") if isinstance(parameters, dict) else None
    return properties, [n for n in required if isinstance(n, str) and n in properties] if isinstance(required, list) else []


def _fillable(tool: dict[str, Any], question: str) -> bool:
    """Every required parameter can be filled from the question or the schema alone."""
    properties, required = _parameters(tool)
    strings = sum(1 for name in required if _is_plain_string(properties[name]))
    return strings <= max(1, len(_QUOTED.findall(question)))


def _is_plain_string(spec: Any) -> bool:
    return isinstance(spec, dict) and spec.get("type") == "string" and "enum" not in spec and "const" not in spec


_QUESTION_NAMES = ("query", "question", "q", "prompt", "text", "input")


def _query_parameter(properties: dict[str, Any], required: list[str]) -> str | None:
    """The parameter the whole question goes to: one named like a question, else none."""
    return next((name for name in _QUESTION_NAMES if name in properties), None)


def _arguments(tool: dict[str, Any], question: str) -> dict[str, Any]:
    properties, required = _parameters(tool)
    root = _schema(tool)
    if not properties:
        parameters = root
        declared = parameters.get("properties", {}) if isinstance(parameters, dict) else {} if parameters is None else None
        # No parameters, or none declared: a zero-argument tool, {} (OpenAI: omitted parameters are an
        # empty list). Properties that are not an object: nothing can be read, the question as "query".
        return {} if isinstance(declared, dict) else {"query": question}
    query = _query_parameter(properties, required)
    quoted = [a or b for a, b in _QUOTED.findall(question)]
    numbers = [float(n) if "." in n else int(n) for n in _NUMBER.findall(question)]  # at most 300 digits: finite
    arguments: dict[str, Any] = {}
    for name in dict.fromkeys([*([query] if query else []), *required]):
        spec = properties[name] if isinstance(properties[name], dict) else {}
        if name == query and _is_plain_string(spec):
            arguments[name] = question
        elif _is_plain_string(spec):
            arguments[name] = quoted.pop(0) if quoted else question
        elif spec.get("type") in ("integer", "number") and "enum" not in spec and "const" not in spec:
            arguments[name] = _number(spec, numbers, _what(name, tool), root)
        elif spec.get("type") == "boolean" and isinstance(spec.get("default"), bool):
            arguments[name] = spec["default"]
        elif spec.get("type") == "boolean":
            arguments[name] = False
        else:
            arguments[name] = instance(spec, question, _what(name, tool), root=root)
    return arguments


def _what(name: str, tool: dict[str, Any]) -> str:
    return f"The parameter {name!r} of the tool {tool['function']['name']!r}"


def _number(spec: dict[str, Any], numbers: list[float], what: str, root: Any) -> float:
    """The first number of the question the schema allows, else its default if allowed, else the first value within its bounds."""
    for value in [*numbers, spec.get("default")]:
        if _allowed(value, spec):
            return int(value) if spec.get("type") == "integer" else value
    return instance(spec, "", what, root=root)


def _allowed(value: Any, spec: dict[str, Any]) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return False
    if spec.get("type") == "integer" and not float(value).is_integer():
        return False
    bounds = [(spec.get(k), test) for k, test in _BOUNDS]
    if not all(test(value, bound) for bound, test in bounds if isinstance(bound, (int, float)) and not isinstance(bound, bool)):
        return False
    step = spec.get("multipleOf")
    return not (isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0 and not math.isclose(value / step, round(value / step)))


_BOUNDS = (
    ("minimum", lambda v, b: v >= b),
    ("maximum", lambda v, b: v <= b),
    ("exclusiveMinimum", lambda v, b: v > b),
    ("exclusiveMaximum", lambda v, b: v < b),
)


def _call(tool: dict[str, Any], question: str, index: int) -> dict[str, Any]:
    name = tool["function"]["name"]
    try:
        arguments = json.dumps(_arguments(tool, question), allow_nan=False)
    except ValueError:  # NaN or Infinity from the tool's own schema (a const, an enum): no JSON carries it
        raise BadRequest(f"The tool {name[:80]!r} has a parameter whose only values are NaN or Infinity, which JSON cannot carry.") from None
    call_id = "call_" + hashlib.sha256(f"{index}:{name}:{arguments}".encode()).hexdigest()[:16]
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# -- answering from the results -------------------------------------------------------------------


def _answer_from(question: str, results: list[tuple[str | None, str]]) -> str:
    if _ONLY_THE_RESULT.search(question):
        return "\n".join(text for _, text in results)
    documents = [_documents(text, _is_retrieval(name)) for name, text in results]
    if all(found is not None for found in documents):
        return _from_documents(question, documents)  # type: ignore[arg-type]
    return "\n\n".join(f"The {name} tool returned: {text}" if name else f"A tool returned: {text}" for name, text in results)


def _is_retrieval(name: str | None) -> bool:
    return name is not None and any(hint in name.lower() for hint in _RETRIEVAL_HINTS)


def _documents(result: str, from_retriever: bool) -> tuple[list[str], list[str]] | None:
    """``(page_contents, doc_uris)`` of a retriever's result, or None when it holds no documents:
    documents have a ``page_content``. JSON (the openai retriever tool's
    ``[{"page_content": ..., "metadata": {"doc_uri": ...}}]``) is parsed; otherwise langchain's
    ``str([Document(...)])`` is read by pattern. An empty list is no documents only from a
    retrieval tool (by its name); from any other tool it is a result like any other."""
    found = _documents_in_json(result)
    if found is None:
        found = ([m[1] for m in _PAGE_CONTENT.findall(result)], _DOC_URI.findall(result))
    passages, uris = found
    if passages:
        return passages, uris
    if from_retriever and _is_empty_list(result):
        return [], []
    return None


def _is_empty_list(result: str) -> bool:
    return "".join(result.split()) == "[]"


def _from_documents(question: str, found: list[tuple[list[str], list[str]]]) -> str:
    passages = [p for ps, _ in found for p in ps]
    uris = list(dict.fromkeys(u for _, us in found for u in us))
    if not uris:
        return f"I found nothing in the documents available to you about {question!r}."
    # The regex path leaves repr escapes such as a literal backslash-n; either way, one line.
    summary = " ".join(passages[0].replace("\\n", " ").split()) if passages else "see the sources below"
    return f"{summary}\n\nSources: " + ", ".join(uris)


def _documents_in_json(result: str) -> tuple[list[str], list[str]] | None:
    """``(page_contents, doc_uris)`` of a JSON tool result; None when it is not JSON.

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
