"""Requests the workspace relays, after it has authenticated the caller and checked the route's
scope and ``CAN_QUERY`` (routes.py), as Databricks does before a request reaches what serves an
endpoint. Two kinds share one streaming forwarder (``_open`` then ``_streamed``): the answer comes
back as it is sent, chunk by chunk, never buffered.

- An agent endpoint's invocations (``relay``) go to the agent local serving registered, with the
  caller's own bearer token: the agent authenticates it again and mints its downscoped token.
- A chat endpoint backed by an upstream model (``relay_to_model``) has its chat completions and
  Responses requests sent to the seed's OpenAI-compatible upstream with the seed's API key and
  nothing of the caller's: not their token, not any header they sent.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from obo_auth.http_edge import ApiError, ServiceUnavailable
from obo_auth.local.serving.models import ServingEndpoint, is_loopback

logger = logging.getLogger("obo_auth.local")

# An agent may think for minutes between two chunks (Model Serving allows ~5 minutes per request);
# connecting is local and immediate, or nothing is serving.
_TIMEOUT = httpx.Timeout(300, connect=5)
# An upstream model as long; connecting to a remote one (DNS, TLS) may take a few seconds.
MODEL_TIMEOUT_SECONDS = 300.0
MODEL_CONNECT_TIMEOUT_SECONDS = 10.0
# An upstream model's error answer is read whole (to take its API key out, should it echo it).
MAX_ERROR_BYTES = 1024 * 1024
# Headers that describe one connection, not the answer: the relay's own connection sets them.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade"}


class UpstreamFailed(ApiError):
    """An upstream model did not answer usably. 502, not 503: databricks-sdk retries a 503 for up
    to five minutes (sdk/retries.py), which would turn a stopped model server into a long hang."""

    status = 502
    error_code = "TEMPORARILY_UNAVAILABLE"


class UpstreamTimedOut(ApiError):
    status = 504
    error_code = "DEADLINE_EXCEEDED"


# -- the shared forwarder ------------------------------------------------------------------------------
async def _open(url: str, body: bytes, headers: Mapping[str, str], timeout: httpx.Timeout, *, trust_env: bool = False) -> tuple[httpx.AsyncClient, httpx.Response]:
    """POSTs ``body`` to ``url`` with exactly ``headers`` and returns the client and the answer,
    its body not read yet; whatever stops it before the status line is raised for the caller to say."""
    # follow_redirects=False: a redirect could name another host, and the credential would go there.
    client = httpx.AsyncClient(timeout=timeout, trust_env=trust_env, follow_redirects=False)
    try:
        return client, await client.send(client.build_request("POST", url, content=body, headers=dict(headers)), stream=True)
    except BaseException:
        await client.aclose()
        raise


def _streamed(client: httpx.AsyncClient, answer: httpx.Response, headers: Mapping[str, str], what: str) -> StreamingResponse:
    """``answer``'s body streamed back as it arrives, with ``answer``'s status and ``headers``."""

    async def close() -> None:
        await answer.aclose()
        await client.aclose()

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in answer.aiter_raw():
                yield chunk
        except httpx.TransportError as error:  # the status line is sent: the answer can only end early
            logger.warning("local workspace: %s broke off its answer (%s)", what, type(error).__name__)
        finally:
            await close()

    # The background task closes the upstream connection when the caller leaves mid-stream, which
    # starlette signals by cancelling the stream rather than by closing the iterator: so what
    # answers sees the caller leave (an agent then ends, and revokes, the request's token).
    return StreamingResponse(chunks(), status_code=answer.status_code, headers=dict(headers), background=BackgroundTask(close))


# -- agents ----------------------------------------------------------------------------------------------
async def relay(request: Request, endpoint: ServingEndpoint, body: bytes) -> StreamingResponse:
    """POSTs ``body`` to the agent's ``/invocations`` and streams its answer back unchanged."""
    if endpoint.url is None:
        raise ServiceUnavailable(f"Serving endpoint '{endpoint.name}' is an agent that nothing serves (not yet, or its serving stopped). {_start_serving(request, endpoint)}")
    headers = {name: request.headers[name] for name in ("authorization", "content-type", "accept") if name in request.headers}
    # trust_env=False (_open's default): the agent is on loopback, and the caller's token goes only
    # there, never to a proxy named by HTTP_PROXY / ALL_PROXY (httpx honours them for 127.0.0.1
    # too), nor with credentials from ~/.netrc.
    try:
        client, answer = await _open(f"{endpoint.url}/invocations", body, headers, _TIMEOUT)
    except Exception as error:  # noqa: BLE001 - whatever stops the relay before the agent answers is a 503, never a 500
        if isinstance(error, httpx.ConnectError):
            why = f"nothing answers at {endpoint.url}: its serving has stopped"
        elif isinstance(error, httpx.TransportError):
            why = f"the agent at {endpoint.url} failed before answering ({type(error).__name__}); see the output of its serving"
        else:
            logger.warning("local workspace: cannot relay to the agent of %s (%s)", endpoint.name, type(error).__name__)
            why = f"the workspace cannot reach its agent at {endpoint.url} ({type(error).__name__}); register it again"
        raise ServiceUnavailable(f"Serving endpoint '{endpoint.name}' is unavailable: {why}. {_start_serving(request, endpoint)}") from None
    relayed = {name: value for name, value in answer.headers.items() if name.lower() not in _HOP_BY_HOP}
    return _streamed(client, answer, relayed, f"the agent of {endpoint.name}")


def _start_serving(request: Request, endpoint: ServingEndpoint) -> str:
    workspace = str(request.base_url).rstrip("/")
    return f"Start it with `obo-auth serve MODEL_URI --workspace {workspace} --endpoint {endpoint.name}`, then retry."


# -- upstream models -------------------------------------------------------------------------------------
async def relay_to_model(endpoint: ServingEndpoint, route: str, body: dict[str, Any]) -> Response:
    """Sends the OpenAI-style request ``body`` to ``{upstream}/{route}`` (``chat/completions`` or
    ``responses``) as the upstream's model, with the seed's API key and no header of the caller's,
    and streams the answer back. The upstream's own error answers are relayed with their status
    (the key taken out), except a 401 or 403: that refuses the seed's key, not the caller, so it
    is a 502 saying so. Unreachable: 502; no answer within MODEL_TIMEOUT_SECONDS: 504."""
    upstream = endpoint.upstream
    assert upstream is not None, "only an endpoint with an upstream model is relayed to one"
    key = upstream.api_key.get_secret_value() if upstream.api_key is not None else None
    headers = {
        "content-type": "application/json",
        "accept": "text/event-stream" if body.get("stream") is True else "application/json",
        # identity: an error answer is read whole, and a compressed one could unpack to gigabytes.
        "accept-encoding": "identity",
        **({"authorization": f"Bearer {key}"} if key else {}),
    }
    where = f"Serving endpoint '{endpoint.name}': its upstream model at {upstream.url}"
    timeout = httpx.Timeout(MODEL_TIMEOUT_SECONDS, connect=MODEL_CONNECT_TIMEOUT_SECONDS)
    # A loopback server: no proxy, no ~/.netrc (as for agents). A remote https:// one: the
    # environment's proxy and CA settings apply, as for any HTTPS client (TLS keeps the key from a proxy).
    try:
        client, answer = await _open(
            f"{upstream.url}/{route}", json.dumps({**body, "model": upstream.model}).encode(), headers, timeout, trust_env=not is_loopback(upstream.url)
        )
    except (httpx.ConnectError, httpx.ConnectTimeout) as error:
        raise UpstreamFailed(f"{where} does not answer ({_said(error, key)}). Start the model server the seed names, or fix its url, then retry.") from None
    except httpx.TimeoutException:
        raise UpstreamTimedOut(f"{where} did not answer within {MODEL_TIMEOUT_SECONDS:g} s.") from None
    except Exception as error:  # noqa: BLE001 - broke off, bad framing: the upstream's fault, never a 500
        logger.warning("local workspace: %s failed (%s)", where, type(error).__name__)
        raise UpstreamFailed(f"{where} failed before answering ({type(error).__name__}).") from None
    served = {"served-model-name": endpoint.name}
    if answer.status_code < 400:
        # Only the content type: an upstream's other headers (cookies, its own request ids) are its business.
        kept = {name: answer.headers[name] for name in ("content-type",) if name in answer.headers}
        return _streamed(client, answer, {**kept, **served}, f"the upstream model of {endpoint.name}")
    try:
        said = await _read_bounded(answer, key)
    except httpx.HTTPError as error:
        raise UpstreamFailed(f"{where} answered {answer.status_code} and broke off ({type(error).__name__}).") from None
    finally:
        await answer.aclose()
        await client.aclose()
    if answer.status_code in (401, 403):
        raise UpstreamFailed(
            f"{where} refused the workspace's request with {answer.status_code}: the seed's api_key for it (not shown) is missing, wrong or not allowed there. "
            f"It said: {said.decode('utf-8', 'replace')[:300]}"
        )
    return Response(said, status_code=answer.status_code, media_type=answer.headers.get("content-type"), headers=served)


async def _read_bounded(answer: httpx.Response, key: str | None) -> bytes:
    """At most MAX_ERROR_BYTES of the answer, scrubbed of the key: read a key's length beyond the
    limit and scrubbed before the cut, so the cut never leaves a piece of the key behind."""
    chunks, size, limit = [], 0, MAX_ERROR_BYTES + len(key or "")
    async for chunk in answer.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    data = _scrubbed(b"".join(chunks)[:limit], key)
    if len(data) <= MAX_ERROR_BYTES:
        return data
    data = data[:MAX_ERROR_BYTES]
    for cut in range(min(len(key or ""), len(data)), 0, -1):  # a key's beginning left at the very end
        if data.endswith(key.encode()[:cut]):
            return data[:-cut]
    return data


def _scrubbed(data: bytes, key: str | None) -> bytes:
    """``data`` without the key, in any spelling a JSON encoder may give it: each character as
    itself, escaped (``\\/``) or as a ``\\uXXXX`` escape."""
    if not key:
        return data
    return _spellings(key).sub(b"[api_key]", data)


def _spellings(key: str) -> re.Pattern[bytes]:
    parts = []
    for c in key:
        plain = re.escape(c.encode())
        if c.isalnum():
            parts.append(plain)
        else:
            parts.append(b"(?:" + plain + b"|\\\\" + plain + b"|\\\\u(?i:" + f"{ord(c):04x}".encode() + b"))")
    return re.compile(b"".join(parts))


def _said(error: Exception, key: str | None) -> str:
    text = str(error)[:200] or type(error).__name__
    return text.replace(key, "[api_key]") if key else text
