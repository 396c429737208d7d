"""The admin API: what tools outside the workspace's process (the CLI, local serving) ask of it.

Only the workspace's own admin credential may call it, and every call is audited like
any other route. Local serving uses it to authenticate its callers, check they may query
the agent's endpoint, and mint their downscoped tokens, as Model Serving does; and to
revoke a token when what it was minted for ends, saying why.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from obo_auth.local._base import BadRequest, PermissionDenied, endpoint_name, field, read_json
from obo_auth.local.grants import SECURABLE_TYPES
from obo_auth.local.handler import Call, api
from obo_auth.redact import scrub

ADMIN_PREFIX = "/api/2.0/obo-auth/admin"
_NO_STORE = {"Cache-Control": "no-store"}
# A revocation reason is repeated in every 401 of the token and in its audit records: one short line.
_MAX_REASON_CHARS = 200


def _require_admin(call: Call) -> None:
    if call.principal != call.state.admin:
        raise PermissionDenied("The obo-auth admin API may only be called with the local workspace's admin credential.")


@api(None)
async def issue_token(request: Request, call: Call) -> Response:
    _require_admin(call)
    body = await read_json(request)
    identity = call.state.identity
    principal = identity.find(field(body, "principal", str))
    scopes = field(body, "scopes", list, None)
    if scopes is not None and not all(isinstance(s, str) for s in scopes):
        raise BadRequest("Field 'scopes' must be an array of API scope strings.")
    actor_name = field(body, "actor", str, None)
    actor = identity.find(actor_name) if actor_name else None
    token = identity.issue(principal, scopes, field(body, "ttl", (int, float), None), actor)
    call.resource = f"{principal.kind}:{principal.name}"
    call.reason = f"admin issued a token for {principal.name}" + (f" acting through {actor.name}" if actor else "")
    return JSONResponse({"token_value": token, "principal": principal.name, "scopes": scopes}, headers=_NO_STORE)


@api(None)
async def introspect_token(request: Request, call: Call) -> Response:
    _require_admin(call)
    body = await read_json(request)
    info = call.state.identity.authenticate(field(body, "token", str))  # 401 when not valid
    call.resource = f"{info.principal.kind}:{info.principal.name}"
    call.reason = f"admin verified a token of {info.principal.name}"
    scopes = None if info.scopes is None else sorted(info.scopes)
    return JSONResponse({"active": True, "principal": info.principal.name, "kind": info.principal.kind, "scopes": scopes})


@api(None)
async def revoke_token(request: Request, call: Call) -> Response:
    _require_admin(call)
    body = await read_json(request)
    reason = field(body, "reason", str)
    if not 0 < len(reason) <= _MAX_REASON_CHARS or not reason.isprintable():
        raise BadRequest(f"Field 'reason' must be one line of 1 to {_MAX_REASON_CHARS} printable characters.")
    info = call.state.identity.revoke(field(body, "token", str), scrub(reason))  # 404 if never issued
    call.resource = f"{info.principal.kind}:{info.principal.name}"
    call.reason = f"admin revoked a token of {info.principal.name} ({info.revoked_because})"
    return JSONResponse({"revoked": True, "principal": info.principal.name, "reason": info.revoked_because})


@api(None)
async def check_permission(request: Request, call: Call) -> Response:
    _require_admin(call)
    body = await read_json(request)
    principal = call.state.identity.find(field(body, "principal", str))
    on = field(body, "on", dict)
    if len(on) != 1:
        raise BadRequest("Field 'on' must name exactly one securable, e.g. {\"serving_endpoint\": \"agent\"}.")
    (securable_type, securable), = on.items()
    if securable_type not in SECURABLE_TYPES:
        raise BadRequest(f"Unknown securable type {str(securable_type)[:40]!r}; expected one of {sorted(SECURABLE_TYPES)}.")
    call.resource = f"{securable_type}:{securable}"
    call.reason = call.state.grants.require(principal, field(body, "privilege", str), securable_type, str(securable))
    return JSONResponse({"allowed": True, "reason": call.reason})


@api(None)
async def register_serving_endpoint(request: Request, call: Call) -> Response:
    _require_admin(call)
    body = await read_json(request)
    name = endpoint_name(field(body, "name", str), "serving endpoint")
    call.resource = f"serving_endpoint:{name}"
    created = call.state.register_agent_endpoint(name)
    call.reason = f"admin registered agent endpoint {name}" if created else f"agent endpoint {name} was already declared"
    return JSONResponse({"name": name, "created": created})


routes = [
    Route(f"{ADMIN_PREFIX}/tokens", issue_token, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/tokens/introspect", introspect_token, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/tokens/revoke", revoke_token, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/permissions/check", check_permission, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/serving-endpoints", register_serving_endpoint, methods=["POST"]),
]
