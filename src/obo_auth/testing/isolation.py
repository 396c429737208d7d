"""``check_isolation``: the same questions asked as several users at once, and proof that no
call and no answer crossed users.

Each user first asks each question alone, twice, each time of a fresh agent: the first
answer is theirs, and the second tells a nondeterministic agent from a leaking one. Then, in
each of ``rounds`` rounds, every (user, question) is asked again, shuffled, ``concurrency``
at a time, one round after another (what a round leaves in the agent meets the next). An
agent object that implements ``predict_stream`` is asked both ways (``stream`` chooses one).
Three things must hold:

(a) Every call the workspace answered as a user belongs to a request of that user that was
    in flight. Calls are attributed to requests by their token: in-process, each request
    gets a token of its own (with the agent as actor, as Model Serving mints one), revoked
    when the request ends, so the audit's fingerprint names the request exactly; a call as
    a user with any other token, or with a request's token after that request ended, fails
    the check. In-process, every call sent through requests or httpx with a request's token
    must also have been sent by that request (sending.py): a client kept from another
    request still in flight, or a thread that did not copy the request's context, fails.
    Served, serving mints each request's token unseen, so the check asks of each token seen
    that it was minted for the agent and that one request of its user spans every call made
    with it; which request sent a call it cannot see (a token borrowed from a request still
    in flight shows only if it changes an answer).
(b) Every answer asked with others equals the same user's answer alone: the whole answer
    (every message or stream event, custom_outputs; generated ids aside, answers.py), or
    what ``compare`` picks. Answers alone that differ between the two runs are reported
    once, as an agent that is not deterministic, instead of being compared.
(c) The users' requests made calls as them: none at all means the agent acted as itself for
    everyone (in-process, ``ModelServingUserCredentials`` falls back to the environment's
    identity, the agent's); a first answer alone that made no call as its user, where
    another user's for the same question did, came from state outside the fresh agent
    object it was asked of.

Limits. What an agent keeps between requests must not shape any user's answer alone: an
agent object is deep-copied for each answer alone (or made anew, given its class or a
function that makes it), while the concurrent rounds share one. State outside the object (a
module-level dict, a class attribute, ``functools.lru_cache``) is shared by all, and so is
what the object passed in kept from before the check: (c) finds it when it spares a user's
calls, not when the agent makes the same calls and still answers from the cache; an object
that already answered ``obo.ask`` in the test is refused, one used directly in an
``as_user`` block cannot be told. A served model is asked in its one process, so state it
kept from earlier requests is in every answer alike; check that in-process. Calls through
other HTTP clients than requests and httpx are attributed by the audit alone.
"""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from obo_auth.redact import fingerprint, scrub
from obo_auth.testing import inprocess
from obo_auth.testing.answers import answer_problems, what_a_user_sees
from obo_auth.testing.asking import Reply
from obo_auth.testing.audit import AuditCall, AuditView
from obo_auth.testing.findings import Asked, call_problems, count, send_problems, silent_problems
from obo_auth.testing.sending import SendLog, Sent, recording, sending_as
from obo_auth.testing.served import ServedAgent

if TYPE_CHECKING:
    from obo_auth.local import LocalWorkspace
    from obo_auth.testing.session import MintedTokens

_SHOWN_PROBLEMS = 12


@dataclass(frozen=True, repr=False)
class IsolationResult:
    users: tuple[str, ...]
    questions: tuple[str, ...]
    rounds: int
    concurrency: int
    requests: int  # every request made, the answers asked alone included
    calls: int  # calls the workspace answered as these users
    answers: dict[str, dict[str, str]]  # answers[user][question]: the user's (first) answer alone
    audit: AuditView  # every call the workspace answered during the check
    problems: tuple[str, ...]
    streams: tuple[bool, ...] = (False,)  # how each was asked: predict (False), predict_stream (True)
    in_process: bool = True  # an agent object in this process, not a served model

    @property
    def ok(self) -> bool:
        return not self.problems

    def __repr__(self) -> str:
        return f"IsolationResult({len(self.users)} users, {len(self.questions)} questions, {self.requests} requests, {len(self.problems)} problems)"

    def __str__(self) -> str:
        ways = {(False,): "", (True,): " streamed", (False, True): " x predict and predict_stream"}[self.streams]
        plan = (
            f"{self.requests} requests: {count(self.users, 'user')} x {count(self.questions, 'question')}{ways}, "
            f"each asked alone twice, then {count(range(self.rounds), 'round')} {self.concurrency} at a time"
        )
        if self.ok:
            calls = (
                "each with its own request's token while that request ran, and sent by that request (as requests and httpx show)"
                if self.in_process
                else "each with a token serving minted for the agent, within one request of its user"
            )
            return f"check_isolation passed, {plan}: every answer with others was the user's own answer alone; {self.calls} calls as those users, {calls}"
        shown = [f"- {problem}" for problem in self.problems[:_SHOWN_PROBLEMS]]
        if len(self.problems) > _SHOWN_PROBLEMS:
            shown.append(f"- ... and {len(self.problems) - _SHOWN_PROBLEMS} more")
        return "\n".join([f"check_isolation found {len(self.problems)} problem(s) in {plan}:", *shown])


class IsolationError(AssertionError):
    """check_isolation failed; ``result`` holds the answers, the audit and every problem."""

    def __init__(self, result: IsolationResult):
        super().__init__(str(result))
        self.result = result


def check_isolation(
    workspace: LocalWorkspace,
    target: Any,
    questions: str | Sequence[str],
    *,
    agent: str,
    users: Iterable[str] | None = None,
    rounds: int = 3,
    concurrency: int = 8,
    stream: bool | None = None,
    scopes: Iterable[str] | None = None,
    compare: Callable[[Reply], Any] | None = None,
    tokens: MintedTokens | None = None,
) -> IsolationResult:
    """See the module docstring; raises IsolationError listing every problem. ``tokens``: the
    test's, which the check's are added to; calls with an earlier test's are not the check's."""
    __tracebackhide__ = True
    questions = (questions,) if isinstance(questions, str) else tuple(questions)
    names = tuple(users) if users is not None else tuple(name.split("@", 1)[0] for name in workspace.users())
    if not questions or not names or rounds < 1 or concurrency < 1:
        raise ValueError("check_isolation needs at least one question and one user, rounds >= 1 and concurrency >= 1")
    principals = {user: _user_principal(workspace, user) for user in names}
    asker = _asker(target, workspace, agent=agent, scopes=scopes, stream=stream, tokens=tokens)
    position = len(workspace.audit())

    with asker.environment():
        asked = [
            asker.ask(asker.alone(), user, principals[user], question, 0, way, rerun)
            for user in names
            for question in questions
            for way in asker.streams
            for rerun in (False, True)
        ]
        shared = asker.shared()
        shuffle = random.Random(rounds).shuffle  # interleaved differently each round; the same every run
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="obo-isolation") as pool:
            # Round after round: what one round leaves in the agent (a cache, a kept client)
            # meets the next round's requests, which within a round would all miss it.
            for number in range(1, rounds + 1):
                plan = [(user, question, way) for user in names for question in questions for way in asker.streams]
                shuffle(plan)
                asked += pool.map(lambda p, n=number: asker.ask(shared, p[0], principals[p[0]], p[1], n, p[2]), plan)

    calls = AuditView(c for c in map(AuditCall.of, workspace.state.audit.since(position)[0]) if tokens is None or tokens.ours(c))
    users_here = {p.name for p in workspace.state.identity.users}
    secrets = asker.tokens  # scrubbed from everything shown: an agent's error may quote one
    asked = [replace(a, reply=replace(a.reply, text=scrub(a.reply.text, secrets))) for a in asked]
    problems = call_problems(asked, calls, users_here, agent, tokens_known=asker.in_process)
    problems += send_problems(asked, asker.sent)
    problems += silent_problems(asked, calls, names, in_process=asker.in_process)
    problems += answer_problems(asked, names, compare or what_a_user_sees)
    answers: dict[str, dict[str, str]] = {user: {} for user in names}
    for a in asked:
        if a.round == 0 and not a.rerun:
            answers[a.user].setdefault(a.question, a.reply.text)  # predict's, when both ways were asked
    result = IsolationResult(
        users=names,
        questions=questions,
        rounds=rounds,
        concurrency=concurrency,
        requests=len(asked),
        calls=sum(1 for c in calls if c.principal in users_here),
        answers=answers,
        audit=calls,
        problems=tuple(scrub(problem, secrets) for problem in problems),
        streams=asker.streams,
        in_process=asker.in_process,
    )
    if not result.ok:
        raise IsolationError(result)
    return result


def _user_principal(workspace: LocalWorkspace, user: str) -> str:
    principal = workspace.state.identity.find(user)  # NotFound, naming who exists, for an unknown name
    if principal.kind != "user":
        raise ValueError(f"{user} is a service principal; check_isolation asks as users")
    return principal.name


def _asker(target: Any, workspace: LocalWorkspace, *, agent: str, scopes, stream: bool | None, tokens: MintedTokens | None):
    """How the check asks: a served model over HTTP, or an agent object in this process."""
    if isinstance(target, ServedAgent):
        return _ServedAsker(workspace, target, bool(stream))
    return _InProcessAsker(workspace, target, agent, scopes, stream, tokens)


class _ServedAsker:
    """One serving process answers every request; serving mints each request's token."""

    in_process = False

    def __init__(self, workspace: LocalWorkspace, served: ServedAgent, stream: bool):
        if served.workspace is not workspace:
            raise ValueError(f"{served!r} serves the workspace at {served.workspace.url}, not this test's at {workspace.url}")
        self.workspace, self._served = workspace, served
        self.streams = (stream,)  # whether the model streams by itself, the check cannot tell
        self.tokens: list[str] = []  # none minted here
        self.sent: list[Sent] = []  # which request sent a call, serving's process does not say

    def environment(self) -> nullcontext[None]:
        return nullcontext()  # the agent's identity is the serving process's own

    def alone(self) -> ServedAgent:
        return self._served

    shared = alone

    def ask(self, to: ServedAgent, user: str, principal: str, question: str, round_: int, stream: bool, rerun: bool = False) -> Asked:
        clock = self.workspace.state.identity.clock
        start = clock()
        reply = to.ask(user, question, stream=stream)
        return Asked(user, principal, question, round_, reply, start, clock(), None, stream, rerun)


class _InProcessAsker:
    """Agent objects in this process, each request with a token of its own."""

    in_process = True

    def __init__(self, workspace: LocalWorkspace, target: Any, agent: str, scopes, stream: bool | None, tokens: MintedTokens | None):
        self.workspace, self._agent, self._scopes, self._minted = workspace, agent, scopes, tokens
        self.tokens: list[str] = []  # every token minted for a request, to scrub (list.append is thread-safe)
        self._sends = SendLog(workspace.state.identity.clock)
        if isinstance(target, type) or (callable(target) and not hasattr(target, "predict")):
            self._make = lambda: _checked(target())  # a class, or a function that makes an agent
            self._one = None
        else:
            self._one = _checked(target)
            self._make = lambda: _copied(target)
        self._stream = stream

    @functools.cached_property
    def streams(self) -> tuple[bool, ...]:
        """predict (False), predict_stream (True) or both; first asked inside ``environment``,
        where an agent made to look at may build its clients."""
        if self._stream is not None:
            return (self._stream,)
        return (False, True) if inprocess.has_own_stream(self._one if self._one is not None else self._make()) else (False,)

    @property
    def sent(self) -> list[Sent]:
        return self._sends.sent

    @contextmanager
    def environment(self) -> Iterator[None]:
        with inprocess.agent_environment(self.workspace, self._agent), recording(self._sends):
            yield

    def alone(self) -> Any:
        """A fresh agent for one answer asked alone."""
        return self._make()

    def shared(self) -> Any:
        """The one agent every concurrent request goes to."""
        return self._one if self._one is not None else self._make()

    def ask(self, to: Any, user: str, principal: str, question: str, round_: int, stream: bool, rerun: bool = False) -> Asked:
        clock = self.workspace.state.identity.clock
        with inprocess.user_token(self.workspace, user, agent=self._agent, scopes=self._scopes) as token:
            self.tokens.append(token)
            self._sends.watch(token)
            if self._minted is not None:
                self._minted.claim([fingerprint(token)])
            start = clock()
            try:
                with sending_as(token):
                    reply = inprocess.predict(to, question, stream=stream)
            except Exception as error:  # an answer too: the user's answer alone says whether it should be
                reply = Reply(500, f"{type(error).__name__}: {error}", None)
            end = clock()
        return Asked(user, principal, question, round_, reply, start, end, fingerprint(token), stream, rerun)


def _checked(agent: Any) -> Any:
    inprocess.interface_of(agent)  # TypeError in one line for anything but a ChatAgent or ResponsesAgent
    return agent


def _copied(agent: Any) -> Any:
    try:
        return copy.deepcopy(agent)
    except Exception as error:
        raise TypeError(
            f"cannot copy the {type(agent).__name__} for each user's answer alone ({type(error).__name__}: {error}); "
            "pass its class, or a function that makes one, instead"
        ) from None
