"""The admin route by which local serving declares the agent it serves (and where it listens)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from obo_auth.admin_api import ADMIN_PREFIX
from obo_auth.local._base import endpoint_name, field
from obo_auth.http_edge import read_json
from obo_auth.local.grants import Grant
from obo_auth.local.handler import Call, api
from obo_auth.local.identity.models import ALL_USERS_GROUP
from obo_auth.local.serving.models import ServingBackend, agent_url


def register_agent_endpoint(call: Call, name: str, url: str | None, interface: str | None = None) -> bool:
    """Declares an agent served by obo_auth's local serving at ``url`` (again: a new URL), taking
    requests of ``interface`` ("chat_agent", "responses_agent", "pyfunc"; None: not said);
    True if the endpoint did not exist yet.

    Every identity may query it unless the seed already grants something on it.
    """
    serving: ServingBackend = call.state.services["serving"]
    created = serving.register_agent(name, url, interface)
    if not call.state.grants.any_on("serving_endpoint", name):
        call.state.grants.add(Grant(ALL_USERS_GROUP, "CAN_QUERY", "serving_endpoint", name))
    return created


@api(None)
async def register_serving_endpoint(request: Request, call: Call) -> Response:
    call.require_admin()
    body = await read_json(request)
    name = endpoint_name(field(body, "name", str), "serving endpoint")
    # Rebuilt from its parts (a 400 for anything but a loopback http://HOST:PORT): what is stored,
    # and sent callers' tokens, is never the string as given. No URL (null or absent): nothing
    # serves it any more, e.g. serving stopped; its port may be anyone's next.
    url = agent_url(field(body, "url", str, None))
    interface = field(body, "interface", str, None)  # the request shape its agent takes: what the workspace may relay
    call.resource = f"serving_endpoint:{name}"
    created = register_agent_endpoint(call, name, url, interface)
    if url:
        served = f" served at {url}"
    else:
        served = " (no URL: nothing serves it yet)" if created else " with no URL: nothing serves it now"
    call.reason = ("admin registered agent endpoint " if created else "admin re-registered agent endpoint ") + name + served
    return JSONResponse({"name": name, "created": created, "url": url})


routes = [Route(f"{ADMIN_PREFIX}/serving-endpoints", register_serving_endpoint, methods=["POST"])]
