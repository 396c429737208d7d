"""Invocations of an agent endpoint: relayed to the agent that local serving registered.

The workspace has already authenticated the caller and checked ``CAN_QUERY`` (routes.py), as
Databricks does before a request reaches a serving container. The caller's own bearer token
goes on to the agent, which authenticates it again and mints its downscoped token. The answer
comes back as the agent sends it, chunk by chunk: a stream is never buffered.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse

from obo_auth.http_edge import ServiceUnavailable
from obo_auth.local.serving.models import ServingEndpoint

logger = logging.getLogger("obo_auth.local")

# An agent may think for minutes between two chunks (Model Serving allows ~5 minutes per request);
# connecting is local and immediate, or nothing is serving.
_TIMEOUT = httpx.Timeout(300, connect=5)
# Headers that describe one connection, not the answer: the relay's own connection sets them.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade"}


async def relay(request: Request, endpoint: ServingEndpoint, body: bytes) -> StreamingResponse:
    """POSTs ``body`` to the agent's ``/invocations`` and streams its answer back unchanged."""
    if endpoint.url is None:
        raise ServiceUnavailable(f"Serving endpoint '{endpoint.name}' is an agent that nothing serves (not yet, or its serving stopped). {_start_serving(request, endpoint)}")
    headers = {name: request.headers[name] for name in ("authorization", "content-type", "accept") if name in request.headers}
    # trust_env=False: the agent is on loopback, and the caller's token goes only there, never to
    # a proxy named by HTTP_PROXY / ALL_PROXY (httpx honours them for 127.0.0.1 too), nor with
    # credentials from ~/.netrc.
    client = httpx.AsyncClient(timeout=_TIMEOUT, trust_env=False)
    try:
        upstream = await client.send(client.build_request("POST", f"{endpoint.url}/invocations", content=body, headers=headers), stream=True)
    except Exception as error:  # noqa: BLE001 - whatever stops the relay before the agent answers is a 503, never a 500
        await client.aclose()
        if isinstance(error, httpx.ConnectError):
            why = f"nothing answers at {endpoint.url}: its serving has stopped"
        elif isinstance(error, httpx.TransportError):
            why = f"the agent at {endpoint.url} failed before answering ({type(error).__name__}); see the output of its serving"
        else:
            logger.warning("local workspace: cannot relay to the agent of %s (%s)", endpoint.name, type(error).__name__)
            why = f"the workspace cannot reach its agent at {endpoint.url} ({type(error).__name__}); register it again"
        raise ServiceUnavailable(f"Serving endpoint '{endpoint.name}' is unavailable: {why}. {_start_serving(request, endpoint)}") from None

    async def close() -> None:
        await upstream.aclose()
        await client.aclose()

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        except httpx.TransportError as error:  # the status line is sent: the answer can only end early
            logger.warning("local workspace: the agent of %s broke off its answer (%s)", endpoint.name, type(error).__name__)
        finally:
            await close()

    relayed = {name: value for name, value in upstream.headers.items() if name.lower() not in _HOP_BY_HOP}
    # The background task closes the agent's connection when the caller leaves mid-stream, which
    # starlette signals by cancelling the stream rather than by closing the iterator: so the
    # agent sees the caller leave, and ends (and revokes) the request's token.
    return StreamingResponse(chunks(), status_code=upstream.status_code, headers=relayed, background=BackgroundTask(close))


def _start_serving(request: Request, endpoint: ServingEndpoint) -> str:
    workspace = str(request.base_url).rstrip("/")
    return f"Start it with `obo-auth serve MODEL_URI --workspace {workspace} --endpoint {endpoint.name}`, then retry."
