"""Databricks Apps: obo_auth's request context, opened from the user token the Apps proxy forwards.

An App receives its user's token in the ``x-forwarded-access-token`` header (app_headers.py)
and its own identity is its service principal (``DATABRICKS_CLIENT_ID`` / ``_SECRET``, which
``req.system_client`` uses). :func:`app_request` and :class:`OboAppMiddleware` turn one App
request into the same :class:`~obo_auth.RequestContext` that ``@on_behalf_of_user`` opens on
Model Serving, in the same ContextVar: decorated functions called inside join it, the clients
and tools built in it are request-bound, and it ends when the block (for the middleware, the
whole ASGI call, a streamed body included) ends. So every guarantee holds the same way.

Fail closed: a request without the header, with it twice, or with a value that cannot be a
token never runs. ``app_request`` raises (:class:`~obo_auth.NoInvokerError`,
:class:`~obo_auth.MalformedTokenError`) and the middleware answers 401. Never the App's own
identity, as the public App templates do when the header is missing.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from starlette.datastructures import Headers

from obo_auth import app_headers
from obo_auth.context import DEFAULT_MAX_REQUEST_SECONDS, RequestContext
from obo_auth.errors import ArgumentTypeError, MalformedTokenError, NoInvokerError, OboAuthError
from obo_auth.scope import active_request, current
from obo_auth.token import UserToken

__all__ = ["OboAppMiddleware", "app_request", "forwarded_token"]

TOKEN_SOURCE = f"the {app_headers.ACCESS_TOKEN} header"


def forwarded_token(headers: Any) -> UserToken:
    """The user's token from an App request's headers (any mapping: Starlette's, Flask's,
    Streamlit's ``st.context.headers``, a dict), or why there is none.

    NoInvokerError when the header is missing or blank, or present twice (which one the
    proxy set cannot be told); MalformedTokenError when its value cannot be a bearer token.
    """
    values = _header_values(headers)
    if len(values) > 1:
        raise NoInvokerError(
            f"This App request carries {len(values)} {app_headers.ACCESS_TOKEN} headers, so whose request it is cannot be "
            "told; obo_auth refuses it. The Databricks Apps proxy sets exactly one."
        )
    if not values or not values[0].strip():
        raise NoInvokerError(
            f"This App request carries no user token ({app_headers.ACCESS_TOKEN} header), so it cannot run on behalf of "
            "its user, and obo_auth never falls back to the App's own service principal. Enable user authorization for "
            "the App and give it the user_api_scopes obo_auth.app_config(...) lists; locally, call the App through "
            "`obo-auth serve-app`, which plays the Apps proxy."
        )
    return UserToken(values[0], TOKEN_SOURCE)


@contextmanager
def app_request(
    headers: Any,
    *,
    host: str | None = None,
    strict: bool = False,
    max_request_seconds: float = DEFAULT_MAX_REQUEST_SECONDS,
) -> Iterator[RequestContext]:
    """Run the block as the user of the App request whose ``headers`` are given.

    For frameworks without ASGI middleware (Flask, Dash, Streamlit, Gradio handlers)::

        with obo_auth.app_request(request.headers) as req:
            rows = req.user_client.statement_execution.execute_statement(...)

    ``host``: the workspace URL (default ``DATABRICKS_HOST``, which Databricks Apps set).
    ``strict`` and ``max_request_seconds`` are those of ``@on_behalf_of_user``. The request
    ends when the block does; inside another live request this raises: a request acts for
    one user from start to end.
    """
    with _opened(forwarded_token(headers), host, strict, max_request_seconds) as context:
        yield context


@contextmanager
def _opened(token: UserToken, host: str | None, strict: bool, max_seconds: float) -> Iterator[RequestContext]:
    if active_request() is not None:
        raise OboAuthError(
            "obo_auth.app_request() was called inside a live request: a request acts for one user from start to end. "
            "Open it once per App request, around the handler."
        )
    context = RequestContext(token, host, strict=strict, max_seconds=max_seconds)
    reset = current.set(context)
    try:
        yield context
    finally:
        current.reset(reset)
        context.end()


def _header_values(headers: Any) -> list[str]:
    """Every value of the token header, under any spelling a server or framework would read as
    it (any case, ``_`` for ``-``): two spellings are two values, and refused."""
    # items(): every header as sent, a repeated one once per value, for Starlette's and Werkzeug's
    # headers alike (their getlist matches one spelling only), and any other mapping.
    if isinstance(headers, Mapping) or callable(getattr(headers, "items", None)):
        return [str(value) for key, value in headers.items() if isinstance(key, str) and app_headers.canonical(key) == app_headers.ACCESS_TOKEN]
    raise ArgumentTypeError(
        f"obo_auth.app_request takes the request's headers (a mapping such as request.headers), not {type(headers).__name__}."
    )


class OboAppMiddleware:
    """ASGI middleware (Starlette, FastAPI, mlflow's ``AgentServer().app``) that runs each HTTP
    and WebSocket request as the App user the proxy forwarded, and answers 401 when there is none.

    ``app.add_middleware(obo_auth.OboAppMiddleware)``. ``public_paths``: exact paths served
    without a user (e.g. ``{"/health"}``); code there has no request and no user client.
    ``host``, ``strict`` and ``max_request_seconds`` as for :func:`app_request`.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str | None = None,
        public_paths: Collection[str] = (),
        strict: bool = False,
        max_request_seconds: float = DEFAULT_MAX_REQUEST_SECONDS,
    ):
        if isinstance(public_paths, str):
            raise ArgumentTypeError(f"public_paths is a collection of paths, e.g. [{public_paths!r}], not one string.")
        if not isinstance(max_request_seconds, (int, float)) or not max_request_seconds > 0:
            raise ValueError(f"max_request_seconds must be a positive number of seconds, not {max_request_seconds!r}.")
        self.app = app
        self._host = host
        self._public = frozenset(public_paths)
        self._strict = strict
        self._max_seconds = float(max_request_seconds)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in self._public:
            await self.app(scope, receive, send)  # lifespan events, and the paths said to be public
            return
        try:
            token = forwarded_token(Headers(scope=scope))
        except (NoInvokerError, MalformedTokenError) as refused:
            await _refuse(scope, send, str(refused))
            return
        with _opened(token, self._host, self._strict, self._max_seconds):
            await self.app(scope, receive, send)


async def _refuse(scope: dict, send: Any, message: str) -> None:
    if scope["type"] == "websocket":  # before the handshake: the client sees the connection refused
        await send({"type": "websocket.close", "code": 1008, "reason": "no App user"})
        return
    body = json.dumps({"error_code": "UNAUTHENTICATED", "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
