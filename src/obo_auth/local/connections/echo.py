"""The built-in echo upstream: ``url: builtin:echo`` in a seed.

So the default seed can have a working connection without a second process, the workspace
serves it itself: an ASGI app that the proxy calls in-process (httpx's ASGITransport, proxy.py),
through the same code path as a loopback upstream but with no socket and no audit record of its
own. It answers every method and path with what it received, as JSON.

It never echoes the credential (the caller must not learn the connection's secret): only whose
it is (the credential header) and its fingerprint, enough to tell two credentials apart.
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from obo_auth.http_edge import bearer_token
from obo_auth.local.connections.models import CREDENTIAL_OF_HEADER
from obo_auth.redact import fingerprint


async def _echo(request: Request) -> JSONResponse:
    body = await request.body()  # bounded: the proxy sends at most the workspace's 1 MiB body
    text = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(text) if text else None
    except (ValueError, RecursionError):  # not JSON: the text says what came
        parsed = None
    token = bearer_token(request)
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": [[name, value] for name, value in request.query_params.multi_items()],
            "headers": {name: value for name, value in request.headers.items() if name != "authorization"},
            "body": text,
            "json": parsed,
            "credential_of": request.headers.get(CREDENTIAL_OF_HEADER),
            "credential_fingerprint": fingerprint(token) if token else None,
        }
    )


_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]
app = Starlette(routes=[Route("/", _echo, methods=_METHODS), Route("/{path:path}", _echo, methods=_METHODS)])
