"""``chat-model``: a deterministic scripted chat model, so tests can assert on what an agent says.

Its script, for an OpenAI-style chat request:
- offered tools and ending with a user question: it calls the retrieval tool with the question;
- given tool results after the question: it answers from them and cites their ``doc_uri``s;
- offered no tools: it answers briefly that it has nothing to look the question up with.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from obo_auth.local._base import BadRequest

_DOC_URI = re.compile(r"""['"]?doc_uri['"]?\s*[:=]\s*['"]([^'"]+)['"]""")
_PAGE_CONTENT = re.compile(r"""page_content['"]?\s*[:=]\s*(['"])(.*?)(?<!\\)\1""", re.S)
_RETRIEVAL_HINTS = ("retriev", "search", "vector", "index", "lookup")


def respond(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The assistant message for ``messages``: ``{"content": str}`` or ``{"tool_calls": [...]}``."""
    question = _last_user_question(messages)
    tool_results = _tool_results_after_question(messages)
    if tool_results is not None:
        return {"content": _answer_from(question, tool_results)}
    if tools:
        tool = _retrieval_tool(tools)
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


def _retrieval_tool(tools: list[dict[str, Any]]) -> dict[str, Any]:
    functions = [t for t in tools if isinstance(t, dict) and isinstance(t.get("function"), dict) and t["function"].get("name")]
    if not functions:
        raise BadRequest("Each entry of 'tools' must be {'type': 'function', 'function': {'name': ..., 'parameters': ...}}.")
    for tool in functions:
        described = f"{tool['function']['name']} {tool['function'].get('description', '')}".lower()
        if any(hint in described for hint in _RETRIEVAL_HINTS):
            return tool
    return functions[0]


def _query_parameter(tool: dict[str, Any]) -> str:
    parameters = tool["function"].get("parameters") or {}
    properties = parameters.get("properties") or {}
    if "query" in properties or not properties:
        return "query"
    required = [p for p in parameters.get("required", []) if properties.get(p, {}).get("type") == "string"]
    return required[0] if required else next(iter(properties))


def _answer_from(question: str, tool_results: list[str]) -> str:
    joined = "\n".join(tool_results)
    uris = list(dict.fromkeys(_DOC_URI.findall(joined)))
    if not uris:
        return f"I found nothing in the documents available to you about {question!r}."
    passages = [m[1] for m in _PAGE_CONTENT.findall(joined)]
    summary = passages[0].replace("\\n", " ").strip() if passages else "see the sources below"
    return f"{summary}\n\nSources: " + ", ".join(uris)
