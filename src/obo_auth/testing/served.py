"""A logged model served by local serving, asked questions as users of the test's workspace."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from obo_auth.testing.asking import Reply, ask

if TYPE_CHECKING:
    from obo_auth.local import LocalWorkspace
    from obo_auth.serving import ServedEndpoint


class ServedAgent:
    """A served model: ``ask(user, question)`` over HTTP, as a client of Model Serving would.

    From ``obo.serve``, it runs until the test session ends, or until ``stop()`` or the end
    of a ``with`` block.
    """

    def __init__(self, endpoint: ServedEndpoint, workspace: LocalWorkspace, agent: str, stop: Callable[[], None] | None = None):
        self.endpoint = endpoint
        self.workspace = workspace
        self.agent = agent  # the service principal serving mints tokens for, as actor
        self._stop = stop

    def __repr__(self) -> str:
        return f"ServedAgent({self.url}, endpoint={self.endpoint.endpoint!r}, interface={self.interface!r})"

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def interface(self) -> str:
        return self.endpoint.interface

    def ask(self, user: str, question: str, *, stream: bool = False) -> Reply:
        """Asks as ``user``, with a token of theirs; serving mints the agent's own per-request token."""
        token = self.workspace.issue_token(user)
        try:
            return ask(self.url, self.interface, token, question, stream=stream)
        finally:
            self.workspace.revoke(token)

    def stop(self) -> None:
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def __enter__(self) -> ServedAgent:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
