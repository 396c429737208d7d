"""What check_isolation finds in the answers: (b) an answer given with other users at once
that differs from the same user's answer alone; and answers alone that differ between two
runs, which say the agent is not deterministic rather than that it leaks.

By default the whole answer is compared: every message or output item, every stream event,
custom_outputs, the status and, for a failure, its message. Generated ids (``id`` and
``*_id`` fields: message, item and tool call ids) are renamed in order of appearance, so
answers alike but for fresh uuids are equal; inside custom_outputs they are the agent's data
(a document's id) and are compared as they are.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from obo_auth.testing.asking import Reply, custom_outputs
from obo_auth.testing.findings import Asked, names

_EXCERPT_CHARS = 110
_DATA = frozenset({"custom_outputs", "custom_inputs"})  # the agent's own values, ids included
_ABSENT = object()  # where one answer has a field or item the other lacks


def what_a_user_sees(reply: Reply) -> Any:
    return [reply.status, reply.text, normalised(reply.body)]


def normalised(body: Any) -> Any:
    """``body`` with each generated id renamed ``<id N>``, N in order of first appearance."""
    renamed: dict[str, str] = {}

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {name: item if name in _DATA else walk(item, str(name)) for name, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, str) and (key == "id" or key.endswith("_id")):
            return renamed.setdefault(value, f"<id {len(renamed) + 1}>")
        return value

    return walk(body)


def answer_problems(asked: list[Asked], users: Sequence[str], compare: Callable[[Reply], Any]) -> list[str]:
    """(b): each answer asked with others equals the same user's answer alone, for every
    (user, question, way of asking) whose two answers alone agree; the others are reported once."""

    def key(reply: Reply) -> str:
        return json.dumps(compare(reply), sort_keys=True, default=repr)

    alone = {(a.user, a.question, a.stream): a.reply for a in asked if a.round == 0 and not a.rerun}
    again = {(a.user, a.question, a.stream): a.reply for a in asked if a.rerun}
    unstable = {k for k in alone if k in again and key(again[k]) != key(alone[k])}
    problems = []
    for question, stream in dict.fromkeys((q, s) for _, q, s in unstable):
        who = [user for user in users if (user, question, stream) in unstable]
        first = (who[0], question, stream)
        problems.append(
            f"answers of {names(who)} to {question!r}{_streamed(stream)} differ between two runs alone: the agent is not "
            f"deterministic; pass compare= to compare what should be stable:\n"
            + _indented(_differences(again[first], alone[first], ("second run", "first run")))
        )
    differing: dict[tuple[str, str, bool, str], list[Asked]] = {}
    for a in asked:
        mine = (a.user, a.question, a.stream)
        if a.round and mine not in unstable and key(a.reply) != key(alone[mine]):
            differing.setdefault((*mine, key(a.reply)), []).append(a)
    for (user, question, stream, got), group in differing.items():
        whose = [other for other in users if other != user and key(alone[other, question, stream]) == got]
        rounds = ("round " if len(group) == 1 else "rounds ") + ", ".join(str(a.round) for a in group)
        got_what = f"the answer {' and '.join(whose)} got alone, not {user}'s own" if whose else f"another answer than {user} got alone"
        problems.append(
            f"{user} asked {question!r}{_streamed(stream)} with other users at once ({rounds}) and got {got_what}:\n"
            + _indented(_differences(group[0].reply, alone[user, question, stream]))
        )
    return problems


def _differences(got: Reply, alone: Reply, labels: tuple[str, str] = ("with others", "alone")) -> list[str]:
    this, that = labels
    width = max(len(label) for label in labels) + 1
    lines = []
    if got.status != alone.status:
        lines.append(f"status: {this} {got.status}; {that} {alone.status}")
    if got.text != alone.text:
        at = next((i for i, (a, b) in enumerate(zip(got.text, alone.text)) if a != b), min(len(got.text), len(alone.text)))
        lines.append(f"{this + ':':<{width}} {_excerpt(got.text, at)!r}")
        lines.append(f"{that + ':':<{width}} {_excerpt(alone.text, at)!r}")
    got_outputs, alone_outputs = custom_outputs(got.body) or {}, custom_outputs(alone.body) or {}
    if isinstance(got_outputs, dict) and isinstance(alone_outputs, dict):
        for name in sorted(set(got_outputs) | set(alone_outputs)):
            if got_outputs.get(name) != alone_outputs.get(name):
                lines.append(f"custom_outputs[{name!r}]: {this} {_short(got_outputs.get(name))}; {that} {_short(alone_outputs.get(name))}")
    if not lines:  # elsewhere in the answer: an earlier message, a stream event before the last
        found = _first_difference(normalised(got.body), normalised(alone.body), "events" if isinstance(got.body, list) else "")
        if found is not None:
            path, one, other = found
            lines.append(f"{path or 'the answer'}: {this} {_short(one)}; {that} {_short(other)}")
    return lines or ["(they differ in what compare= looks at)"]


def _first_difference(got: Any, alone: Any, path: str, data: bool = False) -> tuple[str, Any, Any] | None:
    """The path of the first value that differs between two decoded answers, and both values;
    within custom_outputs (``data``), each field's value is shown whole."""
    if isinstance(got, dict) and isinstance(alone, dict):
        parts = [(f"{path}.{name}" if path else str(name), got.get(name, _ABSENT), alone.get(name, _ABSENT), name in _DATA) for name in {**got, **alone}]
    elif isinstance(got, list) and isinstance(alone, list):
        parts = [
            (f"{path}[{i}]", got[i] if i < len(got) else _ABSENT, alone[i] if i < len(alone) else _ABSENT, False)
            for i in range(max(len(got), len(alone)))
        ]
    else:
        return None if got == alone else (path, got, alone)
    for where, one, other, fields in parts:
        found = ((where, one, other) if one != other else None) if data else _first_difference(one, other, where, fields)
        if found is not None:
            return found
    return None


def _streamed(stream: bool) -> str:
    return " (streamed)" if stream else ""


def _indented(lines: list[str]) -> str:
    return "\n".join(f"    {line}" for line in lines)


def _excerpt(text: str, at: int) -> str:
    """``text`` around character ``at``, where two answers part."""
    start = max(0, at - 30)
    end = start + _EXCERPT_CHARS
    return ("..." if start else "") + text[start:end] + ("..." if end < len(text) else "")


def _short(value: Any) -> str:
    if value is _ABSENT:
        return "nothing"
    shown = json.dumps(value, default=repr)
    return shown if len(shown) <= _EXCERPT_CHARS else shown[: _EXCERPT_CHARS - 3] + "..."
