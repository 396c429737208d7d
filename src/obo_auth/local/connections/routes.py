"""``POST /api/2.0/external-function``: databricks-sdk's ``serving_endpoints.http_request``.

The caller is authenticated and scope-checked by the kernel (handler.py); then, in this order:
the second scope the platform pairs with connections, the body (request.py), the connection
(404), ``USE CONNECTION`` on it (403), the caller's credential for it (403 on a per-user
connection they have not signed in to), and the upstream's answer (proxy.py), relayed with
its status, content type and body. The audit record names the connection, the method and path
(never the query), whose credential went upstream and what the upstream answered.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from obo_auth.http_edge import PermissionDenied, bearer_token, read_json
from obo_auth.local.connections import proxy
from obo_auth.local.connections.models import ConnectionsBackend
from obo_auth.local.connections.request import parse
from obo_auth.local.connections.scopes import ALSO_NEEDED, API_SCOPES
from obo_auth.local.handler import Call, api
from obo_auth.redact import scrub

EXTERNAL_FUNCTION_PATH = "/api/2.0/external-function"
_FAMILY = API_SCOPES["unity-catalog.connections"]
_SHOWN_PATH_CHARS = 200


@api(_FAMILY)
async def external_function(request: Request, call: Call) -> Response:
    _require_also(request, call)
    backend: ConnectionsBackend = call.state.services["connections"]
    wanted = parse(await read_json(request), bearer_token(request))
    # Named in the audit record before the lookup, so a 404 still says what was asked for.
    call.resource = f"connection:{wanted.connection_name[:120]}"
    connection = backend.connection(wanted.connection_name)
    allowed = call.require("USE CONNECTION", "connection", connection.name)
    credential = connection.credential_for(call.principal)
    answer = await proxy.send(connection, credential, wanted)
    shown = scrub(wanted.shown_path[:_SHOWN_PATH_CHARS], backend.secrets())
    call.reason = (
        f"{allowed}; {wanted.method} {shown} on {connection.upstream.url} with the credential of "
        f"{credential.owner}; the upstream answered {answer.status}"
    )
    return Response(answer.body, status_code=answer.status, headers=answer.headers)


def _require_also(request: Request, call: Call) -> None:
    """The kernel checks one scope per route; this is the other one (scopes.py says why)."""
    assert call.token is not None  # an authenticated route
    if not call.token.allows(ALSO_NEEDED.scope):
        held = ", ".join(sorted(call.token.scopes or ())) or "none"
        raise PermissionDenied(
            f"Invalid scope: {request.method} {request.url.path} needs the API scope '{ALSO_NEEDED.scope}' "
            f"as well as '{_FAMILY.scope}', and this token holds only: {held}. "
            "Declare the scope in the model's auth policy when you log it."
        )


routes = [Route(EXTERNAL_FUNCTION_PATH, external_function, methods=["POST"])]
