"""The admin API: what tools outside the workspace's process (the CLI, local serving) ask of it.

Only the workspace's own admin credential may call it, and every call is audited like
any other route. Local serving uses it to authenticate its callers, check they may query
the agent's endpoint, and mint their downscoped tokens, as Model Serving does (or Databricks
Apps, for an App's users: ``runtime``); and to revoke a token when what it was minted for
ends, saying why. The CLI reads the audit log, lists the workspace's securables and fetches
a service principal's OAuth client credentials.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from obo_auth.admin_api import ADMIN_PREFIX, AUDIT_PATH
from obo_auth.http_edge import BadRequest, read_json
from obo_auth.local._base import field, query_int
from obo_auth.local.registry import securable_types
from obo_auth.local.handler import Call, api
from obo_auth.redact import scrub
from obo_auth.scopes import ALLOWLISTS, MODEL_SERVING, RUNTIME_NAMES

_NO_STORE = {"Cache-Control": "no-store"}
# A revocation reason is repeated in every 401 of the token and in its audit records: one short line.
_MAX_REASON_CHARS = 200


@api(None)
async def issue_token(request: Request, call: Call) -> Response:
    call.require_admin()
    body = await read_json(request)
    identity = call.state.identity
    principal = identity.find(field(body, "principal", str))
    scopes = field(body, "scopes", list, None)
    if scopes is not None and not all(isinstance(s, str) for s in scopes):
        raise BadRequest("Field 'scopes' must be an array of API scope strings.")
    actor_name = field(body, "actor", str, None)
    actor = identity.find(actor_name) if actor_name else None
    # Where the token is minted for its user: its scopes must be on that runtime's allowlist.
    runtime = field(body, "runtime", str, MODEL_SERVING)
    if runtime not in ALLOWLISTS:
        raise BadRequest(f"Field 'runtime' must be one of {', '.join(ALLOWLISTS)}, got {runtime[:40]!r}.")
    minted_for = _one_line(body, "minted_for", required=False)
    token = identity.issue(principal, scopes, field(body, "ttl", (int, float), None), actor, runtime, minted_for)
    call.resource = f"{principal.kind}:{principal.name}"
    call.reason = f"admin issued a token for {principal.name}" + (f" acting through {actor.name}" if actor else "")
    if runtime != MODEL_SERVING:
        call.reason += f" for {RUNTIME_NAMES[runtime]}"
    return JSONResponse({"token_value": token, "principal": principal.name, "scopes": scopes}, headers=_NO_STORE)


def _one_line(body: dict, name: str, *, required: bool = True) -> str | None:
    """Field ``name``: one short line of printable characters (a revocation's reason, the tag of
    the local process a token is minted for); None when it is absent and not ``required``."""
    value = field(body, name, str) if required else field(body, name, str, None)
    if value is not None and not (0 < len(value) <= _MAX_REASON_CHARS and value.isprintable()):
        raise BadRequest(f"Field '{name}' must be one line of 1 to {_MAX_REASON_CHARS} printable characters.")
    return value


def _reason(body: dict) -> str:
    return scrub(_one_line(body, "reason"))


@api(None)
async def introspect_token(request: Request, call: Call) -> Response:
    call.require_admin()
    body = await read_json(request)
    info = call.state.identity.authenticate(field(body, "token", str))  # 401 when not valid
    call.resource = f"{info.principal.kind}:{info.principal.name}"
    call.reason = f"admin verified a token of {info.principal.name}"
    scopes = None if info.scopes is None else sorted(info.scopes)
    return JSONResponse({"active": True, "principal": info.principal.name, "kind": info.principal.kind, "id": info.principal.id, "scopes": scopes})


@api(None)
async def revoke_token(request: Request, call: Call) -> Response:
    call.require_admin()
    body = await read_json(request)
    reason = _reason(body)
    info = call.state.identity.revoke(field(body, "token", str), reason)  # 404 if never issued
    call.resource = f"{info.principal.kind}:{info.principal.name}"
    call.reason = f"admin revoked a token of {info.principal.name} ({info.revoked_because})"
    return JSONResponse({"revoked": True, "principal": info.principal.name, "reason": info.revoked_because})


@api(None)
async def revoke_minted_for(request: Request, call: Call) -> Response:
    """Revokes every live token minted for one local process (``minted_for``): what serving does
    after its model or App process was killed before it could revoke its own."""
    call.require_admin()
    body = await read_json(request)
    minted_for, reason = _one_line(body, "minted_for"), _reason(body)
    revoked = call.state.identity.revoke_minted_for(minted_for, reason)
    principals = sorted({info.principal.name for info in revoked})
    call.reason = f"admin revoked {len(revoked)} token(s) minted for a local process ({reason})" + (f" of {', '.join(principals)}" if principals else "")
    return JSONResponse({"revoked": len(revoked)})


@api(None)
async def check_permission(request: Request, call: Call) -> Response:
    call.require_admin()
    body = await read_json(request)
    principal = call.state.identity.find(field(body, "principal", str))
    on = field(body, "on", dict)
    if len(on) != 1:
        raise BadRequest("Field 'on' must name exactly one securable, e.g. {\"serving_endpoint\": \"agent\"}.")
    (securable_type, securable), = on.items()
    if securable_type not in securable_types():
        raise BadRequest(f"Unknown securable type {str(securable_type)[:40]!r}; expected one of {sorted(securable_types())}.")
    call.resource = f"{securable_type}:{securable}"
    call.reason = call.state.grants.require(principal, field(body, "privilege", str), securable_type, str(securable))
    return JSONResponse({"allowed": True, "reason": call.reason})


@api(None)
async def resource_names(request: Request, call: Call) -> Response:
    call.require_admin()
    call.reason = "admin listed the workspace's securables"
    return JSONResponse(call.state.resource_names())


@api(None)
async def read_audit(request: Request, call: Call) -> Response:
    """Records from position ``since`` on, and the position to ask from next time."""
    call.require_admin()
    since = query_int(request, "since", 0, low=0, high=2**53)
    records, next_since = call.state.audit.since(since)
    call.reason = f"admin read {len(records)} audit record(s)"
    return JSONResponse({"records": [r.to_dict() for r in records], "next_since": next_since})


@api(None)
async def get_principal(request: Request, call: Call) -> Response:
    call.require_admin()
    principal = call.state.identity.find(request.path_params["name"])
    call.resource = f"{principal.kind}:{principal.name}"
    call.reason = f"admin looked up {principal.name}"
    return JSONResponse({"name": principal.name, "kind": principal.kind, "application_id": principal.application_id})


@api(None)
async def client_credentials(request: Request, call: Call) -> Response:
    call.require_admin()
    body = await read_json(request)
    identity = call.state.identity
    principal = identity.find(field(body, "principal", str))
    call.resource = f"{principal.kind}:{principal.name}"
    secret = identity.client_secret(principal)  # 400 for a user
    call.reason = f"admin read the OAuth client credentials of {principal.name}"
    return JSONResponse({"client_id": principal.application_id, "client_secret": secret}, headers=_NO_STORE)


routes = [
    Route(f"{ADMIN_PREFIX}/tokens", issue_token, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/tokens/introspect", introspect_token, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/tokens/revoke", revoke_token, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/tokens/revoke-minted-for", revoke_minted_for, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/permissions/check", check_permission, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/resources", resource_names, methods=["GET"]),
    Route(AUDIT_PATH, read_audit, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/principals/{{name}}", get_principal, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/client-credentials", client_credentials, methods=["POST"]),
]
