"""``chat-model``: a deterministic scripted chat model, so tests can assert on what an agent says.

Its script, for an OpenAI-style chat request:
- offered tools and ending with a user question: it calls the retrieval tool with the question;
- given tool results after the question: it answers from them and cites their ``doc_uri``s;
- offered no tools (or ``tool_choice: "none"``): it answers briefly that it has nothing to look
  the question up with. ``tool_choice`` naming a function makes it call that one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from typing import Any

from obo_auth.http_edge import BadRequest

_DOC_URI = re.compile(r"""['"]?doc_uri['"]?\s*[:=]\s*['"]([^'"]+)['"]""")
_PAGE_CONTENT = re.compile(r"""page_content['"]?\s*[:=]\s*(['"])(.*?)(?<!\\)\1""", re.S)
_RETRIEVAL_HINTS = ("retriev", "search", "vector", "index", "lookup")


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
