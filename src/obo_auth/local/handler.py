"""The edge every API route goes through: authenticate, check the API scope, audit.

Routes are plain ``async def handler(request, call)`` functions wrapped by :func:`api`;
they check grants through ``call`` and raise :class:`ApiError` for anything wrong.
Exactly one audit record is written per request, whatever happens.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from obo_auth.http_edge import ApiError, PermissionDenied, bearer_token, reject_declared_oversize
from obo_auth.local.audit import AuditRecord
from obo_auth.local.identity.models import Principal, TokenInfo
from obo_auth.local.service import ApiScope
from obo_auth.redact import fingerprint

if TYPE_CHECKING:
    from obo_auth.local.state import WorkspaceState

logger = logging.getLogger("obo_auth.local")


class Call:
    """One authenticated request: who is calling, and what the audit record will say."""

    def __init__(self, state: WorkspaceState, token: TokenInfo | None):
        self.state = state
        self.token = token
        self.resource: str | None = None
        self.reason = "allowed"

    @property
    def principal(self) -> Principal:
        assert self.token is not None, "only authenticated routes use call.principal"
        return self.token.principal

    def require(self, privilege: str, securable_type: str, securable: str) -> str:
        """Checks a grant and records the resource and the reason in the audit record; the reason."""
        self.resource = f"{securable_type}:{securable}"
        self.reason = self.state.grants.require(self.principal, privilege, securable_type, securable)
        return self.reason

    def require_admin(self) -> None:
        """Only the workspace's own admin credential may call the admin API."""
        if self.principal != self.state.admin:
            raise PermissionDenied("The obo-auth admin API may only be called with the local workspace's admin credential.")

    def can(self, privilege: str, securable_type: str, securable: str) -> bool:
        return self.state.grants.check(self.principal, privilege, securable_type, securable) is not None


Handler = Callable[[Request, Call], Awaitable[Response]]
ErrorRenderer = Callable[[ApiError], Response]


def api(
    scope: ApiScope | None, *, authenticated: bool = True, render_error: ErrorRenderer = ApiError.to_response
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wraps a route handler. ``scope``: the row of its service's API_SCOPES; None needs no scope.

    ``render_error`` turns every error of the route into its response, so a route with
    another error shape (the OAuth token endpoint) keeps it for all errors, even a 500.
    """
    required_scope = scope.scope if scope else None

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            state: WorkspaceState = request.app.state.workspace
            bearer = bearer_token(request)
            call = Call(state, None)
            try:
                # Size first, as a front end would: an oversized request is refused unread.
                reject_declared_oversize(request)
                if authenticated:
                    call.token = state.identity.authenticate(bearer)
                    if required_scope and not call.token.allows(required_scope):
                        raise _invalid_scope(request, required_scope, call.token)
                response = await handler(request, call)
            except ApiError as error:
                # A message echoing input that is not text (a lone surrogate) must still render.
                error.message = error.message.encode("utf-8", "backslashreplace").decode("utf-8")
                response = render_error(error)
                call.reason = error.message
            except Exception:  # never a traceback on the wire; the log has it (and no token)
                logger.exception("local workspace: unexpected error in %s %s", request.method, request.url.path)
                response = render_error(ApiError("The local workspace failed unexpectedly; see its log."))
                call.reason = "internal error"
            state.audit.append(_record(state, request, call, bearer, response.status_code, required_scope))
            return response

        return endpoint

    return wrap


def _invalid_scope(request: Request, required_scope: str, token: TokenInfo) -> PermissionDenied:
    held = ", ".join(sorted(token.scopes or ())) or "none"
    return PermissionDenied(
        f"Invalid scope: {request.method} {request.url.path} needs the API scope '{required_scope}', "
        f"and this token holds only: {held}. Declare the scope in the model's auth policy when you log it."
    )


def _record(
    state: WorkspaceState, request: Request, call: Call, bearer: str | None, status: int, needed_scope: str | None
) -> AuditRecord:
    token = call.token or (state.identity.lookup(bearer) if bearer else None)
    return AuditRecord(
        time=state.identity.clock(),
        principal=token.principal.name if token else None,
        actor=token.actor.name if token and token.actor else None,
        method=request.method,
        path=request.url.path,
        resource=call.resource,
        scopes=None if token is None or token.scopes is None else tuple(sorted(token.scopes)),
        needed_scope=needed_scope,
        decision="allow" if status < 400 else "deny",
        reason=call.reason,
        status=status,
        token_fingerprint=fingerprint(bearer) if bearer else None,
    )
