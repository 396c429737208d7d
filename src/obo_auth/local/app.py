"""The local workspace's ASGI app: each service's routes, then a catch-all that answers 404."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from obo_auth.local._base import EndpointNotFound
from obo_auth.local.admin import routes as admin
from obo_auth.local.catalog import routes as catalog
from obo_auth.local.handler import Call, api
from obo_auth.local.identity import routes as identity
from obo_auth.local.serving import routes as serving
from obo_auth.local.state import WorkspaceState
from obo_auth.local.vectorsearch import routes as vectorsearch

SERVICES = (identity, vectorsearch, serving, catalog, admin)
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@api(None, authenticated=False)
async def no_such_api(request: Request, call: Call) -> Response:
    raise EndpointNotFound(f"No API found for '{request.method} {request.url.path[:200]}'.")


def build_app(state: WorkspaceState) -> Starlette:
    routes = [route for service in SERVICES for route in service.routes]
    # Last, so a known path with a wrong method lands here too, rather than Starlette's plain-text 405.
    routes.append(Route("/{path:path}", no_such_api, methods=_ALL_METHODS))
    app = Starlette(routes=routes)
    app.state.workspace = state
    return app
