"""``chat-model``: a deterministic scripted chat model, so tests can assert on what an agent says.

What it says is its script (script.py: which tools it calls with which arguments, how it
answers from their results). ``complete`` then decodes that answer as a model would under the
request's options: formatted as JSON (``response_format``), ended at a stop sequence, cut
after ``max_tokens`` tokens (here a token is a word: a run of non-whitespace).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from obo_auth.local.serving.json_instance import instance
from obo_auth.local.serving.script import respond

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
