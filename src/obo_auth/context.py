"""The request context: who this request acts for, and the clients and tools built for it.

It lives in a ContextVar (scope.py), set by ``@on_behalf_of_user`` for exactly the duration
of the call (or of each step of a stream), so concurrent requests on threads, asyncio tasks
or greenlets never see each other's context. A request ends when its call returns, when its
stream is exhausted, closed or garbage-collected, or at its maximum lifetime, whichever
comes first; after that nothing it handed out acts for anyone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

from databricks.sdk import WorkspaceClient

from obo_auth import credentials
from obo_auth.degrade import Degradation, access_category
from obo_auth.errors import NoInvokerError, OutsideRequestError, RequestEndedError, ToolUnavailableError
from obo_auth.invoker import (
    SLOT_SOURCE,
    explicit_user,
    in_model_serving,
    no_invoker_outside_serving,
    read_serving_source,
    read_slot,
    serving_source,
)
from obo_auth.keep_unsafe import warn_if_kept_unsafe
from obo_auth.redact import scrub, spellings
from obo_auth.scope import current, normalize_host
from obo_auth.terminal import printable
from obo_auth.token import UserToken

T = TypeVar("T")

# Model Serving ends every request at 297 s and that limit cannot be raised, so a request
# still open after this long is a stream nobody closed (docs: model-serving-timeouts).
DEFAULT_MAX_REQUEST_SECONDS = 300.0

_clock = time.monotonic  # a seam for tests of the maximum lifetime

# True while a call decorated with strict=True runs: its request's optional() then fails loudly
# even if the request was opened without strict (a decorated call joining it; decorator.py).
strict_call: ContextVar[bool] = ContextVar("obo_auth_strict_call", default=False)


class RequestContext:
    """One request on behalf of one user. Get it with :func:`current_request`."""

    def __init__(self, token: UserToken, host: str | None, *, strict: bool = False, max_seconds: float = DEFAULT_MAX_REQUEST_SECONDS):
        self._token: UserToken | None = token  # dropped when the request ends
        self._fingerprint = token.fingerprint
        self._source = token.source
        self._explicit_host = host
        self._host: str | None = None
        self._strict = strict
        self._ended = False
        self._max_seconds = max_seconds
        self._deadline = _clock() + max_seconds
        self.degraded: list[Degradation] = []

    def __repr__(self) -> str:
        state = "active" if self.active else "ended"
        return f"RequestContext(user token {self._fingerprint}, {state}, degraded={len(self.degraded)})"

    def __reduce__(self):
        # A copy would carry its own "ended" flag and the token: a request exists once.
        raise TypeError("A RequestContext cannot be copied or pickled: it is one request of one user.")

    @property
    def active(self) -> bool:
        return not self._ended and _clock() < self._deadline

    @property
    def host(self) -> str:
        """The workspace this request's token was issued by (explicit, or the environment's)."""
        if self._host is None:
            self._host = normalize_host(self._explicit_host or credentials.environment_host())
        return self._host

    @property
    def user_client(self) -> WorkspaceClient:
        """A WorkspaceClient acting as the invoker of whichever request uses it (see scope.py).

        Kept beyond this request it acts for the request it is used in, and outside any
        request it raises RequestEndedError without sending anything.
        """
        self._check_active()
        return credentials.user_client(self.host)

    @property
    def system_client(self) -> WorkspaceClient:
        """The agent's own identity, shared across requests while the environment is unchanged."""
        return credentials.system_client()

    def optional(self, name: str, factory: Callable[[], T]) -> T | None:
        """``factory()``, or None if the user may not use it (recorded in ``degraded``).

        In a strict request (``@on_behalf_of_user(strict=True)``) this raises like :meth:`require`.
        """
        if self._strict or strict_call.get():
            return self.require(name, factory)
        try:
            return self.require(name, factory)
        except ToolUnavailableError as unavailable:
            self.degraded.append(Degradation(name, unavailable.category))
            return None

    def require(self, name: str, factory: Callable[[], T]) -> T:
        """``factory()``; if the user may not use it, :class:`ToolUnavailableError`."""
        self._check_active()
        try:
            tool = factory()
        except Exception as error:
            category = access_category(error)
            if category is None:
                raise
            token = self._token  # read once: end() may drop it from another thread
            raise ToolUnavailableError(name, category, _said(error, spellings(token.value) if token is not None else [])) from error
        warn_if_kept_unsafe(name, tool)
        return tool

    def token_value(self) -> str:
        """The invoker's token, for sending (scope.invoker_token); after the request, RequestEndedError."""
        token = self._token  # read once: end() may drop it from another thread
        if token is None or not self.active:
            raise self.ended_error()
        return token.value

    def end(self) -> None:
        self._ended = True
        self._token = None  # a context kept on self holds nothing after its request
        if self._source == SLOT_SOURCE:
            _slot_lease.release(self)

    def ended_error(self) -> RequestEndedError:
        if self._ended:
            why = "has ended"
        else:
            why = f"has run past its maximum lifetime ({self._max_seconds:g} s; a stream nobody closed?)"
        return RequestEndedError(
            f"A user-scoped client or tool was used for a request that {why} ({self._fingerprint}); it sent "
            "nothing and will not act for anyone else. Use it inside a live request."
        )

    def _check_active(self) -> None:
        if not self.active:
            raise self.ended_error()


class _SlotLease:
    """The process-wide token slot can serve one request at a time: this says which one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: RequestContext | None = None

    def open(self, strict: bool, max_seconds: float) -> RequestContext:
        with self._lock:  # read the slot and take the lease as one step
            if self._holder is not None and self._holder.active:
                raise NoInvokerError(
                    "Another request is in flight in this process, and this Model Serving runtime hands over the "
                    "end user's token only in one process-wide slot, which cannot tell two requests apart. obo_auth "
                    "refuses rather than risk acting as the other request's user: serve this model one request at a "
                    "time (e.g. one worker thread), or on a runtime with a per-request token source."
                )
            context = RequestContext(read_slot(), None, strict=strict, max_seconds=max_seconds)
            self._holder = context
            return context

    def release(self, context: RequestContext) -> None:
        with self._lock:
            if self._holder is context:
                self._holder = None


_slot_lease = _SlotLease()


def open_request(*, strict: bool, max_seconds: float) -> tuple[RequestContext, bool]:
    """The context a decorated call runs in, and whether this call owns (and so ends) it.

    Inside a live request a decorated helper, sub-agent or nested stream joins it: it never
    re-reads the runtime (whose slot may already hold the next invoker) and never switches
    users half-way. Otherwise the invoker is read once, here; no invoker is NoInvokerError.
    """
    outer = current.get()
    if outer is not None:
        outer._check_active()  # a thread or task that outlived its request: never a fresh read
        return outer, False

    explicit = explicit_user()
    if explicit is not None:
        return RequestContext(explicit.token, explicit.host, strict=strict, max_seconds=max_seconds), True
    if not in_model_serving():
        raise no_invoker_outside_serving()
    fetch_obo_token = serving_source()
    if fetch_obo_token is not None:
        return RequestContext(read_serving_source(fetch_obo_token), None, strict=strict, max_seconds=max_seconds), True
    return _slot_lease.open(strict, max_seconds), True


# How much of the workspace's own words a ToolUnavailableError repeats.
_SAID_AT_MOST = 300


def _said(error: Exception, secrets: list[str]) -> str:
    """What the workspace said when it refused a tool (e.g. which grant is missing), for
    ``ToolUnavailableError``: its first line only (a token broken across lines is not shown
    whole), with ``secrets`` (the request's token, as it may be spelled) and every token-shaped string replaced by
    their fingerprints, control characters escaped, and cut at _SAID_AT_MOST characters."""
    first_line = str(error).strip().split("\n", 1)[0].split("\r", 1)[0]
    said = printable(scrub(first_line, secrets))
    if len(said) > _SAID_AT_MOST:
        said = said[:_SAID_AT_MOST] + "..."
    return f"{type(error).__name__}: {said}" if said else type(error).__name__


def current_request() -> RequestContext:
    """The context of the decorated call in progress; outside one, OutsideRequestError."""
    context = current.get()
    if context is None:
        raise OutsideRequestError(
            "obo_auth.current_request() was called outside a request: decorate predict / predict_stream "
            "with @obo_auth.on_behalf_of_user and call it from inside them (or from code they call)."
        )
    return context
