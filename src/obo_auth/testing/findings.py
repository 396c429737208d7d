"""What check_isolation finds in the calls: (a) calls as a user outside that user's request,
by the audit and, in this process, by which request sent them; (c) requests that made no
call as their user where others did. Answers are compared in answers.py. Each finding is
one readable problem, naming the request, the user and the question."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from obo_auth.testing.asking import Reply
from obo_auth.testing.audit import AuditCall, AuditView, principal_names
from obo_auth.testing.sending import Sent


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
    stream: bool = False  # asked with predict_stream
    rerun: bool = False  # the second answer alone: two that differ mean the agent is not deterministic

    @property
    def label(self) -> str:
        when = ("alone, again" if self.rerun else "alone") if self.round == 0 else f"in round {self.round}"
        return f"{self.user}'s request {self.question!r} ({when}{', streamed' if self.stream else ''})"


def call_problems(asked: list[Asked], calls: AuditView, users: set[str], agent: str, *, tokens_known: bool) -> list[str]:
    """(a) by the audit: each call as a user, attributed to a request by its token, ran in that request."""
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


def send_problems(asked: list[Asked], sent: list[Sent]) -> list[str]:
    """(a) by the sender, in this process: each call carrying a request's token while that request
    ran was sent by that request. (Calls after it ended: the audit's problems say so already.)"""
    by_token = {a.fingerprint: a for a in asked if a.fingerprint}
    groups: dict[tuple[str | None, str], list[Sent]] = {}
    for call in sent:
        owner = by_token.get(call.bearer)
        if owner is not None and call.sender != call.bearer and call.time <= owner.end:
            groups.setdefault((call.sender, call.bearer), []).append(call)
    problems = []
    for (sender, bearer), group in groups.items():
        owner, by = by_token[bearer], by_token.get(sender)
        sent_by = f"sent by {by.label}" if by else "sent outside every request of the check (by a thread that did not copy the request's context)"
        problems.append(f"{_calls(group)} {sent_by} ran as {owner.principal}, with the token of {owner.label}, while that request was in flight")
    return problems


def silent_problems(asked: list[Asked], calls: AuditView, users: Sequence[str], *, in_process: bool) -> list[str]:
    """(c) An agent that made no call as a user answers from something else: its own identity,
    or what it kept. Each first answer alone comes from a fresh agent object, so one that made
    no call as its user, where another user's for the same question did, came from state kept
    outside that object (or in the object passed in, before the check)."""
    principals = {a.principal for a in asked}
    via_agent = [c for c in calls if c.principal in principals and c.on_behalf_of_user]
    if not via_agent:
        who = users[0] if len(users) == 1 else f"any of {names(users)}"
        if in_process:
            why = "(ModelServingUserCredentials outside serving falls back to the environment's identity), or answering from what it kept before the check"
        else:
            why = "for every user"
        return [f"no call ran as {who}: the agent may be acting as itself {why}"]

    def made_calls(a: Asked) -> bool:
        if a.fingerprint:
            return any(c.token_fingerprint == a.fingerprint for c in via_agent)
        return any(c.principal == a.principal and a.start <= c.time <= a.end for c in via_agent)  # served: alone, one at a time

    first = [a for a in asked if a.round == 0 and not a.rerun]
    calling = [a for a in first if made_calls(a)]
    problems = []
    for a in first:
        others = [b.user for b in calling if (b.question, b.stream) == (a.question, a.stream) and b.user != a.user]
        if others and not made_calls(a):
            problems.append(
                f"{a.label} made no call as {a.user}, while the same question asked alone by {names(others)} made calls as them: "
                "its answer came from state kept outside the fresh agent object it was asked of "
                "(a module-level, class-level or functools cache), or from before the check"
            )
    return problems


def names(items: Sequence[str]) -> str:
    """``alice``, ``alice and bob``, ``alice, bob and carol``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _calls(calls: Sequence[Any]) -> str:
    return count(calls, "call")


def count(items: Sequence[Any], noun: str) -> str:
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")
