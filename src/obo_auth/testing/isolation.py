"""``check_isolation``: the same questions asked as several users at once, and proof that no
call and no answer crossed users.

Each user first asks each question alone: that answer is theirs. Then, in each of ``rounds``
rounds, every (user, question) is asked again, shuffled, ``concurrency`` at a time, one round
after another (what a round leaves in the agent meets the next), and two things must hold:

(a) Every call the workspace answered as a user belongs to a request of that user that was
    in flight. Calls are attributed to requests by their token: in-process, each request
    gets a token of its own (with the agent as actor, as Model Serving mints one), revoked
    when the request ends, so the audit's fingerprint names the request exactly; a call as
    a user with any other token, or with a request's token after that request ended, fails
    the check. Served, serving mints each request's token unseen, so the check asks of each
    token seen that it was minted for the agent and that one request of its user spans
    every call made with it. Not visible to the audit: a request borrowing a token of
    another request of the same user, or of another user's request still in flight; (b)
    sees the second, as a changed answer.
(b) Every answer asked with others equals the same user's answer asked alone (status, text
    and custom_outputs; ``compare`` chooses otherwise), so no answer holds what only another
    user may see. Answers must be deterministic for this, as the local chat model's are.

What an agent keeps between requests must not shape any user's answer alone: an agent
object is copied for each user's answers alone (or made anew, given its class or a
function that makes it), while the concurrent rounds share one. A served model is asked in
its one process, so state it kept from earlier requests is in every answer alike; check
that in-process. State outside the agent object (a module-level cache) is shared by all.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from obo_auth.redact import fingerprint, scrub
from obo_auth.testing import inprocess
from obo_auth.testing.asking import Reply
from obo_auth.testing.audit import AuditView
from obo_auth.testing.findings import Asked, answer_problems, call_problems, count, what_a_user_sees
from obo_auth.testing.served import ServedAgent

if TYPE_CHECKING:
    from obo_auth.local import LocalWorkspace

_SHOWN_PROBLEMS = 12


@dataclass(frozen=True, repr=False)
class IsolationResult:
    users: tuple[str, ...]
    questions: tuple[str, ...]
    rounds: int
    concurrency: int
    requests: int  # every request made, the answers asked alone included
    calls: int  # calls the workspace answered as these users
    answers: dict[str, dict[str, str]]  # answers[user][question]: the user's answer asked alone
    audit: AuditView  # every call the workspace answered during the check
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def __repr__(self) -> str:
        return f"IsolationResult({len(self.users)} users, {len(self.questions)} questions, {self.requests} requests, {len(self.problems)} problems)"

    def __str__(self) -> str:
        plan = (
            f"{self.requests} requests: {count(self.users, 'user')} x {count(self.questions, 'question')}, each asked alone, "
            f"then {count(range(self.rounds), 'round')} {self.concurrency} at a time"
        )
        if self.ok:
            return f"check_isolation passed, {plan}; {self.calls} calls as those users, each in its own request"
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
    stream: bool = False,
    scopes: Iterable[str] | None = None,
    compare: Callable[[Reply], Any] | None = None,
) -> IsolationResult:
    """See the module docstring; raises IsolationError listing every problem."""
    __tracebackhide__ = True
    questions = (questions,) if isinstance(questions, str) else tuple(questions)
    names = tuple(users) if users is not None else tuple(name.split("@", 1)[0] for name in workspace.users())
    if not questions or not names or rounds < 1 or concurrency < 1:
        raise ValueError("check_isolation needs at least one question and one user, rounds >= 1 and concurrency >= 1")
    principals = {user: _user_principal(workspace, user) for user in names}
    asker = _asker(target, workspace, agent=agent, scopes=scopes, stream=stream)
    position = len(workspace.audit())

    with asker.environment():
        asked = [asker.ask(asker.alone(), user, principals[user], question, 0) for user in names for question in questions]
        shared = asker.shared()
        shuffle = random.Random(rounds).shuffle  # interleaved differently each round; the same every run
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="obo-isolation") as pool:
            # Round after round: what one round leaves in the agent (a cache, a kept client)
            # meets the next round's requests, which within a round would all miss it.
            for number in range(1, rounds + 1):
                plan = [(user, question) for user in names for question in questions]
                shuffle(plan)
                asked += pool.map(lambda p, n=number: asker.ask(shared, p[0], principals[p[0]], p[1], n), plan)

    calls = AuditView(workspace.state.audit.since(position)[0])
    users_here = {p.name for p in workspace.state.identity.users}
    secrets = asker.tokens  # scrubbed from everything shown: an agent's error may quote one
    asked = [replace(a, reply=replace(a.reply, text=scrub(a.reply.text, secrets))) for a in asked]
    problems = call_problems(asked, calls, users_here, agent, tokens_known=asker.in_process)
    problems += answer_problems(asked, names, compare or what_a_user_sees)
    result = IsolationResult(
        users=names,
        questions=questions,
        rounds=rounds,
        concurrency=concurrency,
        requests=len(asked),
        calls=sum(1 for c in calls if c.principal in users_here),
        answers={user: {a.question: a.reply.text for a in asked if a.user == user and a.round == 0} for user in names},
        audit=calls,
        problems=tuple(scrub(problem, secrets) for problem in problems),
    )
    if not result.ok:
        raise IsolationError(result)
    return result


def _user_principal(workspace: LocalWorkspace, user: str) -> str:
    principal = workspace.state.identity.find(user)  # NotFound, naming who exists, for an unknown name
    if principal.kind != "user":
        raise ValueError(f"{user} is a service principal; check_isolation asks as users")
    return principal.name


def _asker(target: Any, workspace: LocalWorkspace, *, agent: str, scopes, stream: bool) -> _ServedAsker | _InProcessAsker:
    """How the check asks: a served model over HTTP, or an agent object in this process."""
    if isinstance(target, ServedAgent):
        return _ServedAsker(workspace, target, stream)
    return _InProcessAsker(workspace, target, agent, scopes, stream)


class _ServedAsker:
    """One serving process answers every request; serving mints each request's token."""

    in_process = False

    def __init__(self, workspace: LocalWorkspace, served: ServedAgent, stream: bool):
        if served.workspace is not workspace:
            raise ValueError(f"{served!r} serves the workspace at {served.workspace.url}, not this test's at {workspace.url}")
        self.workspace, self._served, self._stream = workspace, served, stream
        self.tokens: list[str] = []  # none minted here

    def environment(self) -> AbstractContextManager[None]:
        return nullcontext()  # the agent's identity is the serving process's own

    def alone(self) -> ServedAgent:
        return self._served

    shared = alone

    def ask(self, to: ServedAgent, user: str, principal: str, question: str, round_: int) -> Asked:
        clock = self.workspace.state.identity.clock
        start = clock()
        reply = to.ask(user, question, stream=self._stream)
        return Asked(user, principal, question, round_, reply, start, clock(), None)


class _InProcessAsker:
    """Agent objects in this process, each request with a token of its own."""

    in_process = True

    def __init__(self, workspace: LocalWorkspace, target: Any, agent: str, scopes, stream: bool):
        self.workspace, self._agent, self._scopes, self._stream = workspace, agent, scopes, stream
        self.tokens: list[str] = []  # every token minted for a request, to scrub (list.append is thread-safe)
        if isinstance(target, type) or (callable(target) and not hasattr(target, "predict")):
            self._make = lambda: _checked(target())  # a class, or a function that makes an agent
            self._one = None
        else:
            self._one = _checked(target)
            self._make = lambda: _copied(target)

    def environment(self) -> AbstractContextManager[None]:
        return inprocess.agent_environment(self.workspace, self._agent)

    def alone(self) -> Any:
        """A fresh agent for one user's requests asked alone."""
        return self._make()

    def shared(self) -> Any:
        """The one agent every concurrent request goes to."""
        return self._one if self._one is not None else self._make()

    def ask(self, to: Any, user: str, principal: str, question: str, round_: int) -> Asked:
        clock = self.workspace.state.identity.clock
        with inprocess.user_token(self.workspace, user, agent=self._agent, scopes=self._scopes) as token:
            self.tokens.append(token)
            start = clock()
            try:
                reply = inprocess.predict(to, question, stream=self._stream)
            except Exception as error:  # an answer too: the user's answer alone says whether it should be
                reply = Reply(500, f"{type(error).__name__}: {error}", None)
            end = clock()
        return Asked(user, principal, question, round_, reply, start, end, fingerprint(token))


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
