"""What check_isolation finds: (a) calls as a user outside that user's request, by the audit;
(b) answers given with other users at once that differ from the same user's answer alone.
Each finding is one readable problem, naming the request, the user and the question."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from obo_auth.testing.asking import Reply, custom_outputs
from obo_auth.testing.audit import AuditCall, AuditView, principal_names

_EXCERPT_CHARS = 110


@dataclass(frozen=True)
class Asked:
    """One request of the check and what came back; never its token."""

    user: str  # as the test named them
    principal: str  # their name in the workspace
    question: str
    round: int  # 0: asked alone; 1 and up: with the others at once
    reply: Reply
    start: float  # on the workspace's clock, before the request was sent
    end: float  # after its answer was back
    fingerprint: str | None  # in-process: the request's own token; served: serving mints it, unseen

    @property
    def label(self) -> str:
        when = "alone" if self.round == 0 else f"in round {self.round}"
        return f"{self.user}'s request {self.question!r} ({when})"


def call_problems(asked: list[Asked], calls: AuditView, users: set[str], agent: str, *, tokens_known: bool) -> list[str]:
    """(a): each call as a user, attributed to a request by its token, ran in that request."""
    by_token = {a.fingerprint: a for a in asked if a.fingerprint}
    groups: dict[str | None, list[AuditCall]] = {}
    for call in calls:
        if call.token_fingerprint in by_token or call.principal in users:
            groups.setdefault(call.token_fingerprint, []).append(call)
    problems = []
    for token, group in groups.items():
        owner = by_token.get(token)
        principal = group[0].principal
        if owner is not None:
            late = [c for c in group if not owner.start <= c.time <= owner.end]
            if late:
                problems.append(f"{_calls(late)} used the token of {owner.label} after that request had ended, e.g. {late[0]}")
        elif tokens_known:
            problems.append(f"{_calls(group)} ran as {principal} with a token that no request of the check was given, e.g. {group[0]}")
        elif any(agent not in principal_names(c.actor) for c in group):
            problems.append(f"{_calls(group)} ran as {principal} with a token not minted for the agent {agent}, e.g. {group[0]}")
        elif not any(a.principal == principal and all(a.start <= c.time <= a.end for c in group) for a in asked):
            problems.append(
                f"{_calls(group)} ran as {principal} with one token at times that no single request of theirs spans: "
                f"serving mints a token per request, so it was used beyond its request, e.g. {group[-1]}"
            )
    return problems


def answer_problems(asked: list[Asked], users: tuple[str, ...], compare: Callable[[Reply], Any]) -> list[str]:
    """(b): each answer asked with others equals the same user's answer alone."""

    def key(reply: Reply) -> str:
        return json.dumps(compare(reply), sort_keys=True, default=repr)

    alone = {(a.user, a.question): a.reply for a in asked if a.round == 0}
    differing: dict[tuple[str, str, str], list[Asked]] = {}
    for a in asked:
        if a.round and key(a.reply) != key(alone[a.user, a.question]):
            differing.setdefault((a.user, a.question, key(a.reply)), []).append(a)
    problems = []
    for (user, question, got), group in differing.items():
        whose = [other for other in users if other != user and key(alone[other, question]) == got]
        rounds = ("round " if len(group) == 1 else "rounds ") + ", ".join(str(a.round) for a in group)
        got_what = f"the answer {' and '.join(whose)} got alone, not {user}'s own" if whose else f"another answer than {user} got alone"
        problems.append(
            f"{user} asked {question!r} with other users at once ({rounds}) and got {got_what}:\n"
            + "\n".join(f"    {line}" for line in _differences(group[0].reply, alone[user, question]))
        )
    return problems


def what_a_user_sees(reply: Reply) -> Any:
    return [reply.status, reply.text, custom_outputs(reply.body)]


def _differences(got: Reply, alone: Reply) -> list[str]:
    lines = []
    if got.status != alone.status:
        lines.append(f"status {got.status}, alone {alone.status}")
    if got.text != alone.text:
        at = next((i for i, (a, b) in enumerate(zip(got.text, alone.text)) if a != b), min(len(got.text), len(alone.text)))
        lines.append(f"with others: {_excerpt(got.text, at)!r}")
        lines.append(f"alone:       {_excerpt(alone.text, at)!r}")
    got_outputs, alone_outputs = custom_outputs(got.body) or {}, custom_outputs(alone.body) or {}
    if isinstance(got_outputs, dict) and isinstance(alone_outputs, dict):
        for name in sorted(set(got_outputs) | set(alone_outputs)):
            if got_outputs.get(name) != alone_outputs.get(name):
                lines.append(f"custom_outputs[{name!r}]: with others {_short(got_outputs.get(name))}; alone {_short(alone_outputs.get(name))}")
    return lines or ["(they differ in what compare= looks at)"]


def _excerpt(text: str, at: int) -> str:
    """``text`` around character ``at``, where two answers part."""
    start = max(0, at - 30)
    end = start + _EXCERPT_CHARS
    return ("..." if start else "") + text[start:end] + ("..." if end < len(text) else "")


def _short(value: Any) -> str:
    shown = json.dumps(value, default=repr)
    return shown if len(shown) <= _EXCERPT_CHARS else shown[: _EXCERPT_CHARS - 3] + "..."


def _calls(calls: list[AuditCall]) -> str:
    return count(calls, "call")


def count(items: Sequence[Any], noun: str) -> str:
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")
