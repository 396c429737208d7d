"""The local workspace's ASGI app: every registered service's routes, then a catch-all that answers 404."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound, request_response
from starlette.types import Receive, Scope, Send

from obo_auth.http_edge import EndpointNotFound
from obo_auth.local.handler import Call, api
from obo_auth.local.registry import services
from obo_auth.local.state import WorkspaceState


@api(None, authenticated=False)
async def no_such_api(request: Request, call: Call) -> Response:
    raise EndpointNotFound(f"No API found for '{request.method} {request.url.path[:200]}'.")


class _Fallback(BaseRoute):
    """Matches every HTTP request, so that none gets Starlette's plain-text 404 or 405.

    Not a Route or a Mount: a function Route lists its methods, and both match paths with a
    regex whose '.' stops at a newline (a path may hold an encoded one, %0A).
    """

    def __init__(self) -> None:
        self.app = request_response(no_such_api)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return (Match.FULL if scope["type"] == "http" else Match.NONE), {}

    def url_path_for(self, name: str, /, **path_params):
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def build_app(state: WorkspaceState) -> Starlette:
    routes = [route for service in services() for route in service.routes]
    # Last: a full match here wins over a known path with a wrong method (a partial match).
    routes.append(_Fallback())
    app = Starlette(routes=routes)
    app.state.workspace = state
    return app
