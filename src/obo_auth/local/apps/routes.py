"""Apps routes: ``GET /api/2.0/apps/{name}`` and ``GET /api/2.0/apps``, in the shapes databricks-sdk's
``AppsAPI.get`` and ``AppsAPI.list`` read (its ``App`` dataclass's ``from_dict``).

Each needs CAN_USE on the App; an App the caller may not use is answered as one that does not
exist (models.py), and left out of the listing.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from obo_auth.local._base import token_page
from obo_auth.local.apps.models import App, AppsBackend, no_such_app
from obo_auth.local.apps.scopes import API_SCOPES
from obo_auth.local.handler import Call, api

APPS_PATH = "/api/2.0/apps"

SCOPE = API_SCOPES["apps"]


def _backend(call: Call) -> AppsBackend:
    return call.state.services["apps"]


def app_json(app: App) -> dict[str, Any]:
    """An App as the platform answers it: what ``databricks.sdk.service.apps.App.from_dict`` reads."""
    running = app.url is not None
    sp = app.service_principal
    body: dict[str, Any] = {"name": app.name}
    if app.description:
        body["description"] = app.description
    if running:
        body["url"] = app.url
    if app.user_api_scopes:  # absent when empty, as the platform leaves empty lists out
        body["user_api_scopes"] = list(app.user_api_scopes)
        body["effective_user_api_scopes"] = list(app.user_api_scopes)
    body["service_principal_client_id"] = sp.application_id
    body["service_principal_name"] = sp.name
    if sp.id.isascii() and sp.id.isdigit():  # the SDK reads an int; the local workspace's ids are UUIDs
        body["service_principal_id"] = int(sp.id)
    body.update(
        app_status={
            "state": "RUNNING" if running else "UNAVAILABLE",
            "message": "App is running." if running else "App is not running: nothing is registered at a URL for it.",
        },
        compute_status={
            "state": "ACTIVE" if running else "STOPPED",
            "message": "App compute is active." if running else "App compute is stopped.",
        },
        creator=app.creator,
        create_time=_iso(app.create_time),
        update_time=_iso(app.update_time),
    )
    return body


def _iso(seconds: float) -> str:
    """ISO 8601 in UTC, as the platform writes the App's times (``2024-08-09T18:11:28Z``)."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@api(SCOPE)
async def get_app(request: Request, call: Call) -> Response:
    name = request.path_params["name"]
    app = _backend(call).app(name)
    if app is None or not call.can("CAN_USE", *app.securable):
        if app is not None:
            call.resource = app.audit_resource  # for the audit log only
        raise no_such_app(name)
    call.require("CAN_USE", *app.securable)  # records the resource and why it is allowed
    return JSONResponse(app_json(app))


@api(SCOPE)
async def list_apps(request: Request, call: Call) -> Response:
    apps = _backend(call).apps()
    usable = [a for a in apps if call.can("CAN_USE", *a.securable)]
    if len(usable) < len(apps):
        # For the audit log only: the caller is not told that anything was left out.
        call.reason = f"allowed; hid {len(apps) - len(usable)} Apps the caller may not use"
    shown, following = token_page(request, usable)
    return JSONResponse({"apps": [app_json(a) for a in shown], **following})


routes = [
    Route(APPS_PATH, list_apps, methods=["GET"]),
    Route(f"{APPS_PATH}/{{name}}", get_app, methods=["GET"]),
]
