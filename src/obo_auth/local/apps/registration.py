"""The admin route by which a local App declares itself: its name, where it listens, its user API
scopes and its service principal (what ``obo_auth.serving.workspace_link.WorkspaceLink.register_app`` sends)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from obo_auth.admin_api import ADMIN_PREFIX
from obo_auth.http_edge import BadRequest, NotFound, read_json
from obo_auth.local._base import field
from obo_auth.local.apps.models import App, AppsBackend, app_name, app_url, checked_user_api_scopes
from obo_auth.local.apps.routes import app_json
from obo_auth.local.grants import Grant
from obo_auth.local.handler import Call, api
from obo_auth.local.identity.models import ALL_USERS_GROUP


def register_app(call: Call, name: str, url: str | None, user_api_scopes: list[str], service_principal: str) -> tuple[App, bool]:
    """Declares the App ``name`` listening at ``url`` (None: not running), asking for
    ``user_api_scopes`` and running as ``service_principal``; registering it again replaces
    those. The App, and True if it did not exist yet.

    A new App that the seed grants nothing on may be used by every identity.
    """
    try:
        principal = call.state.identity.find(service_principal)
    except NotFound as unknown:
        raise BadRequest(f"Field 'service_principal': {unknown.message}") from None
    if principal == call.state.admin:
        raise BadRequest("Field 'service_principal' names the workspace's own admin; an App runs as a service principal of its own.")
    apps: AppsBackend = call.state.services["apps"]
    app, created = apps.register(name, url, user_api_scopes, principal, call.principal.name)
    if created and not call.state.grants.any_on(*app.securable):
        call.state.grants.add(Grant(ALL_USERS_GROUP, "CAN_USE", *app.securable))
    return app, created


@api(None)
async def register_app_route(request: Request, call: Call) -> Response:
    call.require_admin()
    body = await read_json(request)
    name = app_name(field(body, "name", str))
    # Rebuilt from its parts (a 400 for anything but a loopback http://HOST:PORT); no URL (null
    # or absent): the App is not running, e.g. it stopped; its port may be anyone's next.
    url = app_url(field(body, "url", str, None))
    scopes = field(body, "user_api_scopes", list, [])
    if not all(isinstance(s, str) for s in scopes):
        raise BadRequest("Field 'user_api_scopes' must be an array of API scope strings.")
    scopes = checked_user_api_scopes(scopes)  # 400 naming each bad one, before anything changes
    call.resource = f"app:{name}"
    app, created = register_app(call, name, url, scopes, field(body, "service_principal", str))
    served = f" at {url}" if url else (" (no URL: not running yet)" if created else " with no URL: not running now")
    call.reason = ("admin registered App " if created else "admin re-registered App ") + name + served
    return JSONResponse(app_json(app))


routes = [Route(f"{ADMIN_PREFIX}/apps", register_app_route, methods=["POST"])]
