"""The request context: who this request acts for, and the clients and tools built for it.

It lives in a ContextVar, set by ``@on_behalf_of_user`` for exactly the duration of the
call (or of a stream), so concurrent requests on threads, asyncio tasks or greenlets never
see each other's context.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

from databricks.sdk import WorkspaceClient

from obo_auth import credentials
from obo_auth.degrade import Degradation, access_category
from obo_auth.errors import OutsideRequestError, ToolUnavailableError
from obo_auth.token import UserToken

T = TypeVar("T")

_current: ContextVar[RequestContext | None] = ContextVar("obo_auth_request", default=None)


class RequestContext:
    """One request on behalf of one user. Get it with :func:`current_request`."""

    def __init__(self, token: UserToken, host: str | None, *, strict: bool = False):
        self._token = token
        self._host = host
        self._strict = strict
        self._active = True
        self._lock = threading.Lock()
        self._user_client: WorkspaceClient | None = None
        self.degraded: list[Degradation] = []

    def __repr__(self) -> str:
        state = "active" if self._active else "ended"
        return f"RequestContext(user token {self._token.fingerprint}, {state}, degraded={len(self.degraded)})"

    @property
    def active(self) -> bool:
        return self._active

    @property
    def user_client(self) -> WorkspaceClient:
        """A WorkspaceClient acting as the invoker; after this request it fails closed."""
        with self._lock:
            if self._user_client is None:
                self._user_client = credentials.user_client(self._token, self._host, lambda: self._active)
            return self._user_client

    @property
    def system_client(self) -> WorkspaceClient:
        """The agent's own identity, shared across requests while the environment is unchanged."""
        return credentials.system_client()

    def optional(self, name: str, factory: Callable[[], T]) -> T | None:
        """``factory()``, or None if the user may not use it (recorded in ``degraded``).

        In a strict request (``@on_behalf_of_user(strict=True)``) this raises like :meth:`require`.
        """
        if self._strict:
            return self.require(name, factory)
        try:
            return self.require(name, factory)
        except ToolUnavailableError as unavailable:
            self.degraded.append(Degradation(name, unavailable.category))
            return None

    def require(self, name: str, factory: Callable[[], T]) -> T:
        """``factory()``; if the user may not use it, :class:`ToolUnavailableError`."""
        try:
            return factory()
        except Exception as error:
            category = access_category(error)
            if category is None:
                raise
            raise ToolUnavailableError(name, category, type(error).__name__) from error

    def end(self) -> None:
        self._active = False


def current_request() -> RequestContext:
    """The context of the decorated call in progress; outside one, OutsideRequestError."""
    context = _current.get()
    if context is None:
        raise OutsideRequestError(
            "obo_auth.current_request() was called outside a request: decorate predict / predict_stream "
            "with @obo_auth.on_behalf_of_user and call it from inside them (or from code they call)."
        )
    return context
