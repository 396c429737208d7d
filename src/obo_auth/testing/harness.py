"""``Obo``, what the ``obo`` fixture gives a test: act as users of the test's local workspace,
ask agents (in this process or served) as them, read this test's audit, check isolation."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from obo_auth.serving import ServedEndpoint
from obo_auth.testing import inprocess
from obo_auth.testing.asking import Reply
from obo_auth.testing.audit import AuditView
from obo_auth.testing.isolation import IsolationResult, check_isolation
from obo_auth.testing.served import ServedAgent

if TYPE_CHECKING:
    from obo_auth.local import LocalWorkspace
    from obo_auth.testing.session import SessionResources


class UserBlock:
    """What ``with obo.as_user(...) as block`` gives: who the block acts as, and its calls."""

    def __init__(self, user: str, workspace: LocalWorkspace):
        self.user = user  # the user's name in the workspace, e.g. alice@example.com
        self._workspace = workspace
        self._start = len(workspace.audit())
        self._end: int | None = None  # set when the block ends

    def __repr__(self) -> str:
        return f"UserBlock({self.user}, {len(self.audit)} calls)"

    @property
    def audit(self) -> AuditView:
        """The calls the workspace answered during the block (so far, while it runs)."""
        return AuditView(self._workspace.audit()[self._start : self._end])

    def _close(self) -> None:
        self._end = len(self._workspace.audit())


class Obo:
    """The ``obo`` fixture: this test's local workspace, acted on as its users.

    ``agent`` is the service principal an agent acts as (``obo-agent`` in the default seed):
    tokens minted for users name it as actor, and ``req.system_client`` authenticates as it.
    """

    def __init__(self, workspace: LocalWorkspace, *, agent: str, session: SessionResources):
        self.workspace = workspace
        self.agent = agent
        self._session = session
        self._start = len(workspace.audit())

    def __repr__(self) -> str:
        return f"Obo({self.workspace.url}, agent={self.agent!r})"

    @property
    def audit(self) -> AuditView:
        """The calls the workspace answered during this test, oldest first."""
        return AuditView(self.workspace.audit()[self._start :])

    @contextmanager
    def as_user(self, user: str, *, scopes: Iterable[str] | None = None) -> Iterator[UserBlock]:
        """Decorated calls in the block run as ``user`` (a short or full name), the agent's own
        identity in the environment for ``req.system_client``.

        The token is minted for the agent with ``scopes`` (default: unrestricted; pass the
        scopes the model's auth policy will hold, e.g. ``obo_auth.required_scopes(*RESOURCES)``,
        to be refused as serving would refuse) and revoked when the block ends: a tool that
        kept it fails from then on, and the audit says why.
        """
        block = UserBlock(self.workspace.state.identity.find(user).name, self.workspace)
        try:
            with inprocess.agent_environment(self.workspace, self.agent):
                with inprocess.user_token(self.workspace, user, agent=self.agent, scopes=scopes):
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
        stream: bool = False,
        scopes: Iterable[str] | None = None,
        compare: Callable[[Reply], Any] | None = None,
    ) -> IsolationResult:
        """Asks ``questions`` as each of ``users`` (default: every user of the workspace) alone,
        then again in ``rounds`` rounds, one after another, each round's requests shuffled and
        ``concurrency`` at a time. Raises an AssertionError (IsolationError) listing every call
        as a user outside its request and every answer that differs from the same user's
        answer alone; returns the IsolationResult (obo_auth.testing.isolation says how).

        ``target``: an agent object (copied for each user's answers alone), its class or a
        function that makes one (called for each), or a served agent (``obo.serve``).
        ``scopes`` as in ``as_user``, for an agent in this process.
        """
        __tracebackhide__ = True
        target = self._served(target) or target
        return check_isolation(
            self.workspace, target, questions, agent=self.agent, users=users, rounds=rounds,
            concurrency=concurrency, stream=stream, scopes=scopes, compare=compare,
        )  # fmt: skip

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
