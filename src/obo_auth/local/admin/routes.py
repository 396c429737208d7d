"""The admin API: what tools outside the workspace's process (the CLI, local serving) ask of it.

Only the workspace's own admin credential may call it, and every call is audited like
any other route.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from obo_auth.local._base import BadRequest, PermissionDenied, field, read_json
from obo_auth.local.handler import Call, api

ADMIN_PREFIX = "/api/2.0/obo-auth/admin"


def _require_admin(call: Call) -> None:
    if call.principal != call.state.admin:
        raise PermissionDenied("The obo-auth admin API may only be called with the local workspace's admin credential.")


@api(None)
async def issue_token(request: Request, call: Call) -> Response:
    _require_admin(call)
    body = await read_json(request)
    principal = call.state.identity.find(field(body, "principal", str))
    scopes = field(body, "scopes", list, None)
    if scopes is not None and not all(isinstance(s, str) for s in scopes):
        raise BadRequest("Field 'scopes' must be an array of API scope strings.")
    ttl = field(body, "ttl", (int, float), None)
    actor_name = field(body, "actor", str, None)
    actor = call.state.identity.find(actor_name) if actor_name else None
    token = call.state.identity.issue(principal, scopes, ttl, actor)
    call.resource = f"{principal.kind}:{principal.name}"
    call.reason = f"admin issued a token for {principal.name}"
    return JSONResponse({"token_value": token, "principal": principal.name, "scopes": scopes}, headers={"Cache-Control": "no-store"})


routes = [Route(f"{ADMIN_PREFIX}/tokens", issue_token, methods=["POST"])]
