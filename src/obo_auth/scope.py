"""Which request is running here, and the one way to get its invoker's token.

The request in progress lives in a ContextVar: set by ``@on_behalf_of_user`` around the
decorated call (or each step of a stream), copied into threads and tasks that copy the
context, and invisible everywhere else. Every user-scoped credential obo_auth hands out
(the user client's credentials strategy, the token string tools copy) asks
:func:`invoker_token` at the moment it sends, so it acts for the request it is *used* in,
never for the one it was built in, and outside any live request it sends nothing.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

from obo_auth.errors import RequestEndedError, WorkspaceMismatchError

if TYPE_CHECKING:
    from obo_auth.context import RequestContext

current: ContextVar[RequestContext | None] = ContextVar("obo_auth_request", default=None)


def active_request() -> RequestContext | None:
    """The live request of this context, or None (no request, or one that has ended)."""
    context = current.get()
    return context if context is not None and context.active else None


def invoker_token(bound_host: str) -> str:
    """The token of the request in progress, for a credential built for ``bound_host``.

    Raises instead of returning anything else: outside a live request RequestEndedError, and
    for a request of another workspace WorkspaceMismatchError (a token is only ever sent to
    the workspace that issued it).
    """
    context = current.get()
    if context is None:
        raise RequestEndedError(
            "A user-scoped client or tool was used outside any request, so it has no user to act for and sent "
            "nothing. Use it inside a call decorated with @obo_auth.on_behalf_of_user (threads started there must "
            "copy the request's context, e.g. contextvars.copy_context().run)."
        )
    if not context.active:
        raise context.ended_error()
    if context.host != bound_host:
        raise WorkspaceMismatchError(
            f"A user-scoped client or tool built for {bound_host} was used in a request for {context.host}; "
            "obo_auth sends an invoker's token only to the workspace that issued it. Build it in this request."
        )
    return context.token_value()


def normalize_host(host: str) -> str:
    """One spelling per workspace URL, so that a binding compares equal to its request's host."""
    host = host.strip().rstrip("/")
    return host if "://" in host else f"https://{host}"
