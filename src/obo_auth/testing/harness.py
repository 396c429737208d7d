"""``Obo``, what the ``obo`` fixture gives a test: act as users of the test's local workspace,
ask agents (in this process or served) as them, read this test's audit, check isolation."""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from obo_auth.redact import fingerprint
from obo_auth.serving import ServedEndpoint
from obo_auth.testing import inprocess
from obo_auth.testing.asking import Reply
from obo_auth.testing.audit import AuditCall, AuditView
from obo_auth.testing.findings import count
from obo_auth.testing.isolation import IsolationResult, check_isolation
from obo_auth.testing.served import ServedAgent

if TYPE_CHECKING:
    from obo_auth.local import LocalWorkspace
    from obo_auth.testing.session import MintedTokens, SessionResources


class TokenOutlivedItsTest(UserWarning):
    """Calls during a test carried a token an earlier test minted for the agent, after that test ended."""


class UserBlock:
    """What ``with obo.as_user(...) as block`` gives: who the block acts as, and its calls."""

    def __init__(self, user: str, workspace: LocalWorkspace, tokens: MintedTokens):
        self.user = user  # the user's name in the workspace, e.g. alice@example.com
        self._workspace = workspace
        self._tokens = tokens
        self._start = len(workspace.audit())
        self._end: int | None = None  # set when the block ends

    def __repr__(self) -> str:
        return f"UserBlock({self.user}, {len(self.audit)} calls)"

    @property
    def audit(self) -> AuditView:
        """The calls the workspace answered during the block (so far, while it runs), but those
        made with a token an earlier test minted."""
        return AuditView(c for c in map(AuditCall.of, self._workspace.audit()[self._start : self._end]) if self._tokens.ours(c))

    def _close(self) -> None:
        self._end = len(self._workspace.audit())


class Obo:
    """The ``obo`` fixture: this test's local workspace, acted on as its users.

    ``agent`` is the service principal an agent acts as (``obo-agent`` in the default seed):
    tokens minted for users name it as actor, and ``req.system_client`` authenticates as it.
    """

    def __init__(self, workspace: LocalWorkspace, *, agent: str, session: SessionResources, test: str = ""):
        self.workspace = workspace
        self.agent = agent
        self._session = session
        self._tokens = session.minted_tokens(test)  # test: its pytest node id
        self._start = len(workspace.audit())
        self._asked: list[weakref.ref] = []  # agent objects obo.ask asked, which check_isolation refuses

    def __repr__(self) -> str:
        return f"Obo({self.workspace.url}, agent={self.agent!r})"

    @property
    def audit(self) -> AuditView:
        """The calls the workspace answered during this test, oldest first, but those made with a
        token an earlier test minted (``close`` warns of them)."""
        return AuditView(c for c in self._calls() if self._tokens.ours(c))

    def close(self) -> None:
        """At the test's end (the plugin calls it): its tokens for the agent are recorded as its
        own, and calls made with an earlier test's are shown as a warning, once, naming that test."""
        calls = self._calls()
        self._tokens.claim(c.token_fingerprint for c in calls if c.on_behalf_of_user and c.token_fingerprint)
        strays: dict[str, list[AuditCall]] = {}
        for call in calls:
            earlier = self._tokens.earlier_test(call)
            if earlier is not None:
                strays.setdefault(earlier, []).append(call)
        for test, group in strays.items():
            warnings.warn(
                TokenOutlivedItsTest(
                    f"{count(group, 'call')} during this test carried a token minted for the agent in {test}, after that "
                    f"test had ended (e.g. {group[0]}): something of it (a thread, a kept client) still uses it. "
                    "Left out of this test's obo.audit."
                ),
                stacklevel=2,
            )

    def _calls(self) -> list[AuditCall]:
        return [AuditCall.of(record) for record in self.workspace.audit()[self._start :]]

    @contextmanager
    def as_user(self, user: str, *, scopes: Iterable[str] | None = None) -> Iterator[UserBlock]:
        """Decorated calls in the block run as ``user`` (a short or full name), the agent's own
        identity in the environment for ``req.system_client``.

        The token is minted for the agent with ``scopes`` (default: unrestricted; pass the
        scopes the model's auth policy will hold, e.g. ``obo_auth.required_scopes(*RESOURCES)``,
        to be refused as serving would refuse) and revoked when the block ends: a tool that
        kept it fails from then on, and the audit says why.
        """
        block = UserBlock(self.workspace.state.identity.find(user).name, self.workspace, self._tokens)
        try:
            with inprocess.agent_environment(self.workspace, self.agent):
                with inprocess.user_token(self.workspace, user, agent=self.agent, scopes=scopes) as token:
                    self._tokens.claim([fingerprint(token)])
                    yield block
        finally:
            block._close()

    def ask(self, target: Any, user: str, question: str, *, stream: bool = False, scopes: Iterable[str] | None = None) -> Reply:
        """Asks ``question`` as ``user``: of an agent object (a ChatAgent or ResponsesAgent), in this
        process as in ``obo.as_user(user, scopes=scopes)``, its errors raised; or of a served agent
        (``obo.serve``) over HTTP, which downscopes to the model's logged scopes, its errors in
        the reply's status and text."""
        served = self._served(target)
        if served is not None:
            return served.ask(user, question, stream=stream)
        inprocess.interface_of(target)  # a one-line TypeError before any token is minted
        self._remember(target)
        with self.as_user(user, scopes=scopes):
            return inprocess.predict(target, question, stream=stream)

    def serve(self, model_uri: str, *, endpoint: str = "agent") -> ServedAgent:
        """The logged model ``model_uri`` served by local serving for this workspace, as the
        agent; started once, kept for the session's later tests, stopped when the session
        ends, or at the end of ``with obo.serve(...) as served:``."""
        return self._session.serve(self.workspace, model_uri, endpoint, self.agent)

    def check_isolation(
        self,
        target: Any,
        questions: str | Sequence[str],
        *,
        users: Iterable[str] | None = None,
        rounds: int = 3,
        concurrency: int = 8,
        stream: bool | None = None,
        scopes: Iterable[str] | None = None,
        compare: Callable[[Reply], Any] | None = None,
    ) -> IsolationResult:
        """Asks ``questions`` as each of ``users`` (default: every user of the workspace) alone,
        twice, then again in ``rounds`` rounds, one after another, each round's requests
        shuffled and ``concurrency`` at a time. Raises an AssertionError (IsolationError) listing
        every call as a user outside its request, every request that made none as its user
        where others did, and every answer that differs from the same user's answer alone;
        returns the IsolationResult (obo_auth.testing.isolation says how).

        ``target``: an agent object (copied for each answer alone; not one ``obo.ask`` already
        asked, whose copies would carry what it kept), its class or a function that makes one
        (called for each), or a served agent (``obo.serve``). ``stream``: ask with
        ``predict_stream`` (True) or ``predict`` (False); by default an agent object that
        implements ``predict_stream`` is asked both ways, a served one with ``predict``.
        ``scopes`` as in ``as_user``, for an agent in this process.
        """
        __tracebackhide__ = True
        if any(asked() is target for asked in self._asked):
            raise ValueError(
                f"this {type(target).__name__} already answered obo.ask in this test: what it kept would be in every "
                "copy asked alone, so those answers would not be each user's own; pass its class, or a fresh one"
            )
        target = self._served(target) or target
        return check_isolation(
            self.workspace, target, questions, agent=self.agent, users=users, rounds=rounds,
            concurrency=concurrency, stream=stream, scopes=scopes, compare=compare, tokens=self._tokens,
        )  # fmt: skip

    def _remember(self, agent: Any) -> None:
        try:
            self._asked.append(weakref.ref(agent))
        except TypeError:  # an object without weak references (__slots__) is not remembered
            pass

    def _served(self, target: Any) -> ServedAgent | None:
        """``target`` as a served agent: one ``obo.serve`` gave, or a ServedEndpoint from
        ``obo_auth.serving.serve`` for this workspace; None for anything else."""
        if isinstance(target, ServedAgent):
            return target
        if isinstance(target, ServedEndpoint):
            if target.workspace_url != self.workspace.url:
                raise ValueError(f"the endpoint at {target.url} serves the workspace at {target.workspace_url}, not this test's at {self.workspace.url}")
            return ServedAgent(target, self.workspace, self.agent)
        return None
