"""Host metadata, OAuth (client credentials) and SCIM routes."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from obo_auth.http_edge import ApiError, BadRequest, Unauthenticated, read_body
from obo_auth.local._base import page, query_int
from obo_auth.local.handler import Call, api
from obo_auth.local.identity.models import Principal
from obo_auth.local.identity.scopes import API_SCOPES

_TOKEN_TTL_SECONDS = 3600


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@api(None, authenticated=False)
async def host_metadata(request: Request, call: Call) -> Response:
    # What databricks-sdk reads at construction (sdk/config.py _resolve_host_metadata).
    base = _base_url(request)
    return JSONResponse({"oidc_endpoint": f"{base}/oidc", "workspace_id": call.state.workspace_id, "cloud": "aws"})


@api(None, authenticated=False)
async def oauth_metadata(request: Request, call: Call) -> Response:
    base = _base_url(request)
    return JSONResponse(
        {
            "issuer": f"{base}/oidc",
            "token_endpoint": f"{base}/oidc/v1/token",
            "authorization_endpoint": f"{base}/oidc/v1/authorize",
            "grant_types_supported": ["client_credentials"],
        }
    )


# RFC 6749 5.2 error codes; any other error of the token endpoint maps to one of these.
_OAUTH_ERROR_CODES = {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope"}


def _oauth_error(error: ApiError) -> Response:
    """Token endpoint errors use the OAuth shape (RFC 6749 5.2), which the SDK's OAuth client reads."""
    if error.error_code in _OAUTH_ERROR_CODES:
        code = error.error_code
    else:
        code = "server_error" if error.status >= 500 else "invalid_request"
    return JSONResponse({"error": code, "error_description": error.message}, status_code=error.status)


@api(None, authenticated=False, render_error=_oauth_error)
async def oauth_token(request: Request, call: Call) -> Response:
    """OAuth client credentials for service principals (RFC 6749 4.4)."""
    form = {k: v[-1] for k, v in parse_qs((await read_body(request)).decode("utf-8", "replace")).items()}
    client_id, client_secret = _client_credentials(request, form)
    if form.get("grant_type") != "client_credentials":
        raise BadRequest("Only grant_type=client_credentials is supported.", error_code="unsupported_grant_type")
    if not client_id or not client_secret:
        raise _invalid_client("Send client_id and client_secret (HTTP Basic or form fields).")
    try:
        principal = call.state.identity.check_client(client_id, client_secret)
    except Unauthenticated as error:
        raise _invalid_client(error.message) from None
    call.resource = f"service_principal:{principal.name}"
    call.reason = f"client credentials of {principal.name}"
    token = call.state.identity.issue(principal, None, _TOKEN_TTL_SECONDS)
    call.token = call.state.identity.lookup(token)  # so the audit record names who asked
    return JSONResponse(
        {"access_token": token, "token_type": "Bearer", "expires_in": _TOKEN_TTL_SECONDS, "scope": "all-apis"},  # what it grants, whatever was asked
        headers={"Cache-Control": "no-store"},
    )


def _invalid_client(message: str) -> Unauthenticated:
    return Unauthenticated(message, error_code="invalid_client")


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, client_secret = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _invalid_client("The Basic authorization header is not valid base64 of 'client_id:client_secret'.") from None
        return client_id, client_secret
    return form.get("client_id"), form.get("client_secret")


def _scim_user(principal: Principal) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": principal.id,
        "userName": principal.name,
        "displayName": principal.display_name,
        "active": True,
        "emails": [{"value": principal.name, "primary": True, "type": "work"}] if principal.kind == "user" else [],
        "groups": [{"display": g, "value": g} for g in sorted(principal.groups)],
        "name": {"givenName": principal.display_name.split(" ")[0], "familyName": " ".join(principal.display_name.split(" ")[1:])},
    }


def _scim_service_principal(principal: Principal) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"],
        "id": principal.id,
        "applicationId": principal.application_id,
        "displayName": principal.display_name,
        "active": True,
        "groups": [{"display": g, "value": g} for g in sorted(principal.groups)],
    }


def _scim_list(request: Request, resources: list[dict[str, Any]]) -> JSONResponse:
    start = query_int(request, "startIndex", 1, low=1, high=1_000_000)
    count = query_int(request, "count", 10_000, low=0, high=10_000)
    chunk = page(resources, start, count)
    return JSONResponse(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": len(resources),
            "startIndex": start,
            "itemsPerPage": len(chunk),
            "Resources": chunk,
        }
    )


@api(API_SCOPES["scim.me"])
async def me(request: Request, call: Call) -> Response:
    principal = call.principal
    call.resource = f"{principal.kind}:{principal.name}"
    if principal.kind == "user":
        return JSONResponse(_scim_user(principal))
    # As the platform answers a service principal: its application id is its userName (what SQL's
    # current_user() returns too); tools tell it from a user by the missing '@'.
    return JSONResponse({**_scim_service_principal(principal), "userName": principal.application_id})


@api(API_SCOPES["scim.directory"])
async def list_users(request: Request, call: Call) -> Response:
    return _scim_list(request, [_scim_user(p) for p in call.state.identity.users])


@api(API_SCOPES["scim.directory"])
async def list_service_principals(request: Request, call: Call) -> Response:
    return _scim_list(request, [_scim_service_principal(p) for p in call.state.identity.service_principals])


@api(API_SCOPES["scim.directory"])
async def list_groups(request: Request, call: Call) -> Response:
    groups = [
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": name,
            "displayName": name,
            "members": [{"display": m.display_name, "value": m.id} for m in members],
        }
        for name, members in sorted(call.state.identity.groups().items())
    ]
    return _scim_list(request, groups)


routes = [
    Route("/.well-known/databricks-config", host_metadata, methods=["GET"]),
    Route("/oidc/.well-known/oauth-authorization-server", oauth_metadata, methods=["GET"]),
    Route("/oidc/v1/token", oauth_token, methods=["POST"]),
    Route("/api/2.0/preview/scim/v2/Me", me, methods=["GET"]),
    Route("/api/2.0/preview/scim/v2/Users", list_users, methods=["GET"]),
    Route("/api/2.0/preview/scim/v2/ServicePrincipals", list_service_principals, methods=["GET"]),
    Route("/api/2.0/preview/scim/v2/Groups", list_groups, methods=["GET"]),
]
