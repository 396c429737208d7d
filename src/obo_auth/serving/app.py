"""The local serving endpoint: ``POST /invocations`` as Databricks Model Serving answers it.

Per request: authenticate the bearer token with the workspace (401), check the caller may
query this endpoint (403), mint a token downscoped to the model's logged user scopes with
the agent as actor, and hand it to the agent where the serving runtime does (runtime.py).
If the workspace no longer accepts serving's own credential (it was restarted), the caller
gets 503, not a 401 blaming their token. ``stream: true`` answers with server-sent events
from ``predict_stream``; an error during a stream arrives as an event under
``databricks_output.error``.

The downscoped token is revoked when its request ends (revocation.py): before the response
is sent, or for a stream before its last event; if the client goes away first, at once. A
tool or client that escaped the request then gets a 401 whose audit record says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from obo_auth.http_edge import ApiError, BadRequest, EndpointNotFound, PermissionDenied, Unauthenticated, bearer_token, json_type, read_json
from obo_auth.redact import scrub
from obo_auth.scopes import covers
from obo_auth.serving import runtime
from obo_auth.serving.revocation import LiveTokens, RequestToken
from obo_auth.serving.unavailable import Unavailable
from obo_auth.serving.workspace_link import WorkspaceLink, WorkspaceRefused

logger = logging.getLogger("obo_auth.serving")

INVOKER_TOKEN_TTL_SECONDS = 900
SERVING_SCOPE = "serving.serving-endpoints"  # short-lived, as the platform's downscoped tokens are


@dataclass
class ServedModel:
    """A loaded pyfunc model and what serving needs to know about it."""

    model: Any  # mlflow.pyfunc.PyFuncModel
    endpoint: str
    user_scopes: list[str] | None  # None: the model was logged without a user auth policy
    agent_principal: str
    # An agent that reads the process-wide slot itself cannot be served concurrently.
    serialize: bool
    interface: str = "pyfunc"  # "chat_agent" | "responses_agent" | "pyfunc": the request shape it takes


def build_app(served: ServedModel, link: WorkspaceLink, standing_secrets: Callable[[], Iterable[str]], live: LiveTokens) -> Starlette:
    """``standing_secrets``: serving's own credentials (the admin's, the agent's), scrubbed by value
    from every error a caller sees, as the caller's and the request's tokens are. ``live``: the
    request tokens not yet revoked, for serving to revoke when it stops."""
    serial_lock = threading.Lock()
    unavailable = Unavailable(link.url, standing_secrets, "this serving process", "obo-auth serve")

    def handle(run: Callable[[], Any], token: RequestToken) -> Any:
        """Runs one prediction as the invoker; the request ends, and its token is revoked, when it returns."""
        try:
            if served.serialize:
                with serial_lock:
                    return _as_invoker(run, token.value)
            return _as_invoker(run, token.value)
        finally:
            token.revoke()

    async def invocations(request: Request) -> Response:
        try:
            token = RequestToken(link, await run_in_threadpool(_authorize, request, served, link, unavailable), live)  # who asks, before what they ask
        except ApiError as error:
            return error.to_response()
        try:
            payload = await read_json(request, expected="a JSON object with 'messages' (ChatAgent) or 'input' (ResponsesAgent)")
        except ApiError as error:
            await run_in_threadpool(token.revoke)  # the agent never ran
            return error.to_response()
        except BaseException:  # the client went away mid-body (ClientDisconnect), or the task was cancelled
            token.revoke()  # synchronously: a cancelled task cannot await
            raise

        def secrets() -> list[str]:  # read when an error is scrubbed: the agent's credential rotates
            return [s for s in (bearer_token(request), token.value, *standing_secrets()) if s]

        streamed = payload.pop("stream", None)
        if streamed is not None and not isinstance(streamed, bool):  # "false" is not false: refused, never streamed
            await run_in_threadpool(token.revoke)  # the agent never ran
            return BadRequest(f"Field 'stream' must be a boolean, got {json_type(streamed)}.").to_response()
        if streamed:
            def stream(emit: Callable[[Any], None]) -> None:
                handle(lambda: _drain(served.model.predict_stream(payload), emit), token)

            # Starlette runs the background task once the stream is over, also when the client
            # left first (even before the stream started): then the token is revoked at once.
            return StreamingResponse(_sse(stream, secrets), media_type="text/event-stream", background=BackgroundTask(token.revoke))
        try:
            result = await run_in_threadpool(handle, lambda: served.model.predict(payload), token)
        except Exception as error:
            return _failure(error, secrets).to_response()
        return JSONResponse(result)

    async def ping(request: Request) -> Response:
        return PlainTextResponse("\n")

    routes = [Route("/invocations", invocations, methods=["POST"]), Route("/ping", ping, methods=["GET"]), Route("/health", ping, methods=["GET"])]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """An unknown route or method answers in the Databricks error shape too, as every other error here
    (the path scrubbed before it is cut: a token pasted into a URL is never echoed, whole or in part)."""
    path = scrub(request.url.path)[:200]
    if exc.status_code == 404:
        error = EndpointNotFound(f"No API at {path}: local serving answers POST /invocations, GET /ping and GET /health.")
    elif exc.status_code == 405:
        error = ApiError(f"{request.method[:20]} is not allowed on {path}.", error_code="BAD_REQUEST", status=405)
    else:
        error = ApiError(str(exc.detail), error_code="BAD_REQUEST", status=exc.status_code)
    return error.to_response()


def _authorize(request: Request, served: ServedModel, link: WorkspaceLink, unavailable: Unavailable) -> str | None:
    """The invoker's downscoped token for this request (None if the model declares no user scopes)."""
    bearer = bearer_token(request)
    if not bearer:
        raise Unauthenticated("No access token: send 'Authorization: Bearer <token>' with a token issued by the workspace.")
    try:
        invoker = link.introspect(bearer)
        # As Model Serving does: a downscoped token may only call an endpoint if it holds the scope for it.
        if invoker.scopes is not None and not covers(invoker.scopes, SERVING_SCOPE):
            raise PermissionDenied(f"Invalid scope: querying a serving endpoint needs the API scope '{SERVING_SCOPE}'.")
        link.check_can_query(invoker.principal, served.endpoint)
        if served.user_scopes is None:
            return None
        return link.mint(invoker.principal, scopes=served.user_scopes, ttl=INVOKER_TOKEN_TTL_SECONDS, actor=served.agent_principal)
    except WorkspaceRefused as refused:
        raise unavailable(refused) or ApiError(refused.message, error_code=refused.error_code, status=refused.status) from None


def _as_invoker(run: Callable[[], Any], token: str | None) -> Any:
    if token is None:
        return run()
    with runtime.invoker(token):
        return run()


def _drain(stream: Iterator[Any], emit: Callable[[Any], None]) -> None:
    with contextlib.closing(stream):  # closed as soon as emit stops it: the agent's request ends there
        for chunk in stream:
            emit(chunk)


class _ClientGone(Exception):
    """Raised into a stream's producer when nobody reads its chunks any more."""


async def _sse(run: Callable[[Callable[[Any], None]], None], secrets: Callable[[], list[str]]) -> AsyncIterator[str]:
    """Runs a whole stream in one worker thread (so its context stays put) and relays its chunks."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    gone = threading.Event()

    def put(kind: str, value: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def emit(chunk: Any) -> None:
        if gone.is_set():
            raise _ClientGone
        put("chunk", chunk)

    def produce() -> None:
        try:
            run(emit)
        except _ClientGone:
            pass
        except Exception as error:
            put("error", error)
        finally:
            if not gone.is_set():
                put("end", None)

    threading.Thread(target=contextvars.copy_context().run, args=(produce,), daemon=True, name="obo-auth-stream").start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "end":
                return
            if kind == "error":
                failure = _failure(value, secrets)
                value = {"databricks_output": {"error": {"error_code": failure.error_code, "message": failure.message}}}
            yield f"data: {json.dumps(value)}\n\n"
    finally:
        gone.set()  # the stream is over, or the client left: the producer stops at its next chunk


def _failure(error: Exception, secrets: Callable[[], list[str]]) -> ApiError:
    """What the caller is told about a failed prediction: a Databricks error, never a token."""
    # By the Databricks error code the exception carries (obo_auth's ToolUnavailableError and the
    # SDK's errors both have one): serving knows the platform's vocabulary, not the agent side's classes.
    code = getattr(error, "error_code", None)
    if code == "PERMISSION_DENIED":
        status = 403
    else:
        status, code = (400, code) if code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST") else (500, "INTERNAL_ERROR")
    message = scrub(f"{type(error).__name__}: {error}", secrets())
    logger.warning("prediction failed: %s", message)
    return ApiError(message, error_code=code, status=status)
