"""Sends a checked request (request.py) to a connection's upstream with the connection's
credential, and reads the answer: its status, content type and body, bounded in size and time.

The caller's own headers never go upstream, only those named in the request's ``headers``
field (less authorization and hop-by-hop ones). No redirect is followed: a redirect could
name another host, and the credential would go with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio
import httpx

from obo_auth.http_edge import ApiError
from obo_auth.local.connections import echo
from obo_auth.local.connections.models import CREDENTIAL_OF_HEADER, Connection, Credential
from obo_auth.local.connections.request import UpstreamRequest

logger = logging.getLogger("obo_auth.local")

# The platform bounds an external call too; a minute is plenty for a loopback test server and
# ends a hung one. Connecting is local and immediate, or nothing listens there.
TIMEOUT_SECONDS = 60.0
CONNECT_TIMEOUT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
# What the caller gets of the upstream's headers: the content type, and the MCP session id
# that databricks-sdk's http_request reads back (headers_to_capture in its mixin).
RELAYED_HEADERS = ("content-type", "mcp-session-id")


class UpstreamFailed(ApiError):
    """The upstream did not answer usably. 502, not 503: databricks-sdk retries a 503 for up to
    five minutes (sdk/retries.py), which would turn a stopped test server into a five-minute hang."""

    status = 502
    error_code = "TEMPORARILY_UNAVAILABLE"


class UpstreamTimedOut(ApiError):
    status = 504
    error_code = "DEADLINE_EXCEEDED"


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    headers: dict[str, str]
    body: bytes


async def send(connection: Connection, credential: Credential, request: UpstreamRequest) -> UpstreamResponse:
    target = connection.upstream
    url = httpx.URL(
        scheme="http",
        host=target.host,
        port=target.port,
        raw_path=(target.base_path + request.path or "/").encode("ascii") + (b"?" + request.query.encode("ascii") if request.query else b""),
    )
    # identity: a compressed answer would be unpacked before _bounded could count it (a small
    # zstd body can unpack to gigabytes).
    headers = {**request.headers, "Accept-Encoding": "identity", "Authorization": f"Bearer {credential.token}", CREDENTIAL_OF_HEADER: credential.owner}
    # trust_env=False: no proxy from HTTP_PROXY / ALL_PROXY (httpx honours them for 127.0.0.1
    # too) and no ~/.netrc credentials; the built-in echo is called in-process.
    transport = httpx.ASGITransport(app=echo.app) if target.builtin else None
    timeout = httpx.Timeout(TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
    where = f"Connection '{connection.name}': its upstream {target.url}"
    try:
        # One deadline for the whole answer: httpx's timeout is per read, which a slow trickle never trips.
        with anyio.fail_after(TIMEOUT_SECONDS):
            async with httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False, follow_redirects=False) as client:
                async with client.stream(request.method, url, headers=headers, content=request.body) as response:
                    body = await _bounded(response, where)
                    relayed = {name: response.headers[name] for name in RELAYED_HEADERS if name in response.headers}
                    return UpstreamResponse(response.status_code, relayed, body)
    except (httpx.TimeoutException, TimeoutError):
        raise UpstreamTimedOut(f"{where} did not answer within {TIMEOUT_SECONDS:g} s.") from None
    except httpx.ConnectError:
        raise UpstreamFailed(f"{where} does not answer: nothing listens there. Start the server the seed names, then retry.") from None
    except httpx.HTTPError as error:  # broke off, bad framing, undecodable gzip: the upstream's fault
        logger.warning("local workspace: %s failed (%s)", where, type(error).__name__)
        raise UpstreamFailed(f"{where} failed before answering in full ({type(error).__name__}).") from None


async def _bounded(response: httpx.Response, where: str) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise UpstreamFailed(f"{where} answered with more than {MAX_RESPONSE_BYTES} bytes, the limit.")
        chunks.append(chunk)
    return b"".join(chunks)
