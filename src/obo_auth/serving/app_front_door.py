"""The local Databricks Apps proxy: a front door, in the App's process, around the author's ASGI app.

What the platform's proxy does before a request reaches an App, per HTTP request:

- authenticate ``Authorization: Bearer <token>`` with the workspace (401 ``UNAUTHENTICATED``;
  a downscoped token needs the ``apps`` scope, 403 otherwise; if the workspace no longer
  accepts the front door's own admin credential, 503: the caller is not at fault);
- require CAN_USE on the App (403 ``PERMISSION_DENIED``);
- if the App has ``user_api_scopes`` (user authorization), mint a token for the caller
  downscoped to exactly those, for the Apps runtime, with the App's service principal as actor,
  short-lived; it is revoked when the request ends (revocation.py), and when serving stops;
- rewrite the headers: every header only the proxy may set (app_headers.set_by_proxy) and the
  client's own ``Authorization`` are dropped, whatever the client sent, so an App never sees a
  spoofed ``x-forwarded-access-token`` nor the caller's own credential; then the proxy's own
  are set: ``x-forwarded-access-token`` (only with user authorization, as the platform does),
  ``-email``, ``-user`` (``<user id>@<workspace id>``), ``-preferred-username``, ``-host``,
  ``x-real-ip`` and a fresh ``x-request-id``.

Then the author's app is awaited with the rewritten scope, its ``send`` untouched but for
noting when the response is complete: a streamed body (server-sent events) goes out chunk by
chunk as the app sends it, never buffered. The request ends when the app's ASGI call returns
(a Starlette ``BackgroundTask`` runs before that, so it may still use the token), or as soon
as the client goes away before the response is complete: the front door reads one message
ahead of the app (at most one body chunk), so it sees ``http.disconnect`` even while the app
only sends, revokes the token at once, and hands the app that disconnect when it next
receives (Starlette's StreamingResponse listens for it and stops the stream).

Lifespan events (and any other scope type) pass straight through to the app.

WebSocket: authenticated exactly as HTTP (same checks, same headers, same token, revoked when
the app's call returns); a refused handshake is closed with code 1008 and the reason, before
it is accepted (the client sees the handshake refused; the HTTP status is not told apart).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from obo_auth import app_headers
from obo_auth.http_edge import ApiError, PermissionDenied, Unauthenticated, bearer_token
from obo_auth.redact import fingerprint
from obo_auth.scopes import covers
from obo_auth.serving.revocation import LiveTokens, RequestToken
from obo_auth.serving.unavailable import Unavailable
from obo_auth.serving.workspace_link import WorkspaceLink, WorkspaceRefused

logger = logging.getLogger("obo_auth.serving")

# As Model Serving's invoker tokens (app.py INVOKER_TOKEN_TTL_SECONDS): short-lived, and revoked
# when the request ends anyway.
FORWARDED_TOKEN_TTL_SECONDS = 900
# A downscoped token (an agent's, minted for its user) may call an App only with this scope.
APPS_SCOPE = "apps.apps"
_HOST_METADATA = "/.well-known/databricks-config"


@dataclass(frozen=True)
class FrontedApp:
    """The App the front door stands before."""

    name: str
    user_api_scopes: list[str] | None  # None or empty: user authorization is off, no token is forwarded
    service_principal: str  # the App's own identity: the actor of every token minted for its users


@dataclass(frozen=True)
class _Caller:
    """Who a request is from, once authorized; ``token`` is the one to forward (None: none)."""

    principal: str
    user_id: str  # <user id>@<workspace id>
    user_name: str
    token: str | None

    def __repr__(self) -> str:
        return f"_Caller({self.principal}, token={fingerprint(self.token) if self.token else None})"


class AppFrontDoor:
    """ASGI: ``AppFrontDoor(app, FrontedApp(...), link, standing_secrets=..., live=...)``.

    ``standing_secrets``: the front door's own credentials (the admin's), to tell a workspace
    that no longer accepts them (503) from one refusing the caller (401). ``live``: the request
    tokens not yet revoked, for the App process to revoke when it stops.
    """

    def __init__(self, app: Any, fronted: FrontedApp, link: WorkspaceLink, *, standing_secrets: Callable[[], Iterable[str]], live: LiveTokens):
        self.app = app
        self._fronted = fronted
        self._link = link
        self._live = live
        self._unavailable = Unavailable(link.url, standing_secrets, "this App front door", "obo-auth serve-app")
        self._workspace_id = _WorkspaceId(link.url)

    def __repr__(self) -> str:
        return f"AppFrontDoor({self._fronted.name}, {self._link.url})"

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan: the app's startup and shutdown are its own
            return
        try:
            caller = await run_in_threadpool(self._authorize, HTTPConnection(scope))
        except ApiError as refused:
            await _refuse(scope, send, refused)
            return
        token = RequestToken(self._link, caller.token, self._live)
        forwarded = {**scope, "headers": _forwarded_headers(scope, caller)}
        if scope["type"] == "websocket":  # the app reads its own disconnect; the connection is the request
            await _run_then_revoke(self.app(forwarded, receive, send), token)
            return
        response = _Response(send)
        ahead = _ReadAhead(receive, gone=lambda: response.complete or _revoke_in_background(token))
        try:
            await _run_then_revoke(self.app(forwarded, ahead, response), token)
        finally:
            ahead.close()

    def _authorize(self, connection: HTTPConnection) -> _Caller:
        bearer = bearer_token(connection)  # type: ignore[arg-type]  # it reads .headers only
        if not bearer:
            raise Unauthenticated(
                f"No access token: send 'Authorization: Bearer <token>' with a token issued by the workspace to call the App {self._fronted.name}."
            )
        fronted = self._fronted
        try:
            invoker = self._link.introspect(bearer)
            if invoker.scopes is not None and not covers(invoker.scopes, APPS_SCOPE):
                raise PermissionDenied(f"Invalid scope: calling a Databricks App with a downscoped token needs the API scope '{APPS_SCOPE}'.")
            self._link.check_can_use_app(invoker.principal, fronted.name)
            token = None
            if fronted.user_api_scopes:
                token = self._link.mint(
                    invoker.principal, scopes=list(fronted.user_api_scopes), ttl=FORWARDED_TOKEN_TTL_SECONDS,
                    actor=fronted.service_principal, runtime="apps",
                )  # fmt: skip
        except WorkspaceRefused as refused:
            raise self._unavailable(refused) or ApiError(refused.message, error_code=refused.error_code, status=refused.status) from None
        return _Caller(invoker.principal, f"{invoker.id}@{self._workspace_id()}", invoker.principal, token)


async def _run_then_revoke(call: Any, token: RequestToken) -> None:
    """Awaits the app's ASGI call; the request, and its token, end when it returns."""
    try:
        await call
    except Exception:
        await run_in_threadpool(token.revoke)
        raise
    except BaseException:
        token.revoke()  # synchronously: a cancelled task cannot await (app.py does the same)
        raise
    await run_in_threadpool(token.revoke)


def _revoke_in_background(token: RequestToken) -> None:
    threading.Thread(target=token.revoke, daemon=True, name="obo-auth-app-revoke").start()


def _forwarded_headers(scope: dict, caller: _Caller) -> list[tuple[bytes, bytes]]:
    """The request's headers as the App sees them: the proxy's own set, the client's kept but
    for those only the proxy may set and the client's credential."""
    kept = [
        (name, value)
        for name, value in scope.get("headers", [])
        # A name with "_" is dropped, as nginx and gunicorn do: WSGI servers read x_forwarded_access_token
        # as x-forwarded-access-token, so it would speak for the proxy.
        if b"_" not in name and name.lower() != b"authorization" and not app_headers.set_by_proxy(name.decode("latin-1"))
    ]
    client = scope.get("client")
    server = scope.get("server") or ("127.0.0.1", 0)  # where the front door listens: the App's own URL, not the client's Host
    proxy = {
        app_headers.EMAIL: caller.principal,
        app_headers.USER: caller.user_id,
        app_headers.PREFERRED_USERNAME: caller.user_name,
        "x-forwarded-host": f"{server[0]}:{server[1]}",
        app_headers.REAL_IP: client[0] if client else "127.0.0.1",
        app_headers.REQUEST_ID: str(uuid.uuid4()),
    }
    if caller.token is not None:
        proxy[app_headers.ACCESS_TOKEN] = caller.token
    return kept + [(name.encode("latin-1"), value.encode("latin-1")) for name, value in proxy.items()]


class _Response:
    """The app's ``send``, passed through message by message; notes when the response is complete."""

    def __init__(self, send: Any):
        self._send = send
        self.complete = False

    async def __call__(self, message: dict) -> None:
        kind = message["type"]
        if (kind == "http.response.body" and not message.get("more_body", False)) or kind == "http.response.pathsend":
            self.complete = True
        await self._send(message)


class _ReadAhead:
    """The app's ``receive``, read ahead by the front door.

    So the front door learns that the client went away (``http.disconnect``) while the app only
    sends, even in the middle of an upload the app never reads, and calls ``gone`` then; the
    app gets every message in order, and the disconnect again whenever it asks after it (as
    from the server). Up to ``_HELD_AT_MOST`` bytes of body the app has not taken are held;
    past that, reading waits for the app, so a large upload flows at the app's pace (and an
    app that never reads a large upload is only ended when it returns).
    """

    _HELD_AT_MOST = 1 << 20

    def __init__(self, receive: Any, gone: Callable[[], Any]):
        self._receive = receive
        self._gone = gone
        self._messages: asyncio.Queue[dict] = asyncio.Queue()
        self._held = 0  # bytes of body read and not yet taken by the app
        self._taken = asyncio.Event()
        self._last: dict | None = None
        self._task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        try:
            while True:
                message = await self._receive()
                self._held += len(message.get("body", b""))
                self._messages.put_nowait(message)
                if message["type"] == "http.disconnect":
                    self._gone()
                    return
                while self._held > self._HELD_AT_MOST:
                    self._taken.clear()
                    await self._taken.wait()
        except Exception as failed:  # the server's receive failed: the app gets the same failure
            self._messages.put_nowait({"type": "obo_auth.failed", "error": failed})

    async def __call__(self) -> dict:
        if self._last is not None and self._messages.empty():
            return self._last
        message = await self._messages.get()
        self._held -= len(message.get("body", b""))
        self._taken.set()
        if message["type"] == "obo_auth.failed":
            raise message["error"]
        if message["type"] == "http.disconnect":
            self._last = message
        return message

    def close(self) -> None:
        self._task.cancel()


class _WorkspaceId:
    """The workspace id (its host metadata, asked once): ``x-forwarded-user`` is
    ``<user id>@<workspace id>``, as the platform's proxy sets it."""

    def __init__(self, workspace_url: str):
        self._url = workspace_url
        self._value: str | None = None

    def __call__(self) -> str:
        if self._value is None:
            try:
                # trust_env=False: loopback, no proxy; nothing secret is sent (the metadata is public).
                self._value = str(httpx.get(f"{self._url}{_HOST_METADATA}", timeout=30, trust_env=False).json().get("workspace_id", ""))
            except (httpx.HTTPError, ValueError):
                raise WorkspaceRefused(503, "TEMPORARILY_UNAVAILABLE", f"The local workspace at {self._url} did not answer; is it still running?") from None
        return self._value


async def _refuse(scope: dict, send: Any, refused: ApiError) -> None:
    if scope["type"] == "websocket":  # before the handshake is accepted: the client sees it refused
        await send({"type": "websocket.close", "code": 1008, "reason": f"{refused.error_code}: {refused.message}"[:120]})
        return
    body = json.dumps({"error_code": refused.error_code, "message": refused.message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": refused.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
