"""Databricks Apps, agent side: OboAppMiddleware and app_request over real HTTP.

A Starlette App with the middleware is served by uvicorn on loopback and called with the
headers the Apps proxy would forward, as alice, bob and carol, against the local workspace;
its audit log is the witness of who acted. The front door that plays the proxy itself
(authentication, downscoping, header stripping) is tested in test_app_front_door.py; the
guarantees shared with Model Serving run over both runtimes in the tests that take the
``runtime`` fixture (test_request_bound.py, test_obo_concurrency.py, ...).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute

import obo_auth
from obo_auth import InvalidScopeError, MalformedTokenError, NoInvokerError, OboAuthError, ResourceDeclarationError
from obo_auth.local.server import BackgroundServer

ROOT = Path(__file__).resolve().parents[1]
USERS = ("alice", "bob", "carol")
ME = "/api/2.0/preview/scim/v2/Me"


class Seen:
    """What the App's handlers saw, for the tests to read after a response."""

    def __init__(self) -> None:
        self.calls = 0
        self.kept = None  # a client one request keeps on the App, as an author might
        self.after_stream: str | None = None


def make_app(seen: Seen) -> Starlette:
    async def whoami(request: Request) -> JSONResponse:
        seen.calls += 1
        req = obo_auth.current_request()
        name = await asyncio.to_thread(lambda: req.user_client.current_user.me().user_name)
        return JSONResponse({"user": name})

    async def keep(request: Request) -> JSONResponse:
        seen.kept = obo_auth.current_request().user_client
        return JSONResponse({"kept": True})

    async def use_kept(request: Request) -> JSONResponse:
        return JSONResponse({"user": await asyncio.to_thread(lambda: seen.kept.current_user.me().user_name)})

    @obo_auth.on_behalf_of_user
    def decorated_helper() -> str:  # a decorated helper called inside the App's request joins it
        return obo_auth.current_request().user_client.current_user.me().user_name

    async def helper(request: Request) -> JSONResponse:
        return JSONResponse({"user": await asyncio.to_thread(decorated_helper)})

    async def stream(request: Request) -> StreamingResponse:
        client = obo_auth.current_request().user_client

        async def events():
            for _ in range(3):
                name = await asyncio.to_thread(lambda: client.current_user.me().user_name)
                yield f"data: {name}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def health(request: Request) -> JSONResponse:
        try:
            obo_auth.current_request()
        except obo_auth.OutsideRequestError:
            return JSONResponse({"status": "healthy", "request": None})
        return JSONResponse({"status": "healthy", "request": "open"})

    async def socket(websocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    app = Starlette(
        routes=[
            Route("/whoami", whoami),
            Route("/keep", keep),
            Route("/use-kept", use_kept),
            Route("/helper", helper),
            Route("/stream", stream),
            Route("/health", health),
            WebSocketRoute("/ws", socket),
        ]
    )
    app.add_middleware(obo_auth.OboAppMiddleware, public_paths={"/health"})
    return app


@pytest.fixture(scope="module")
def seen() -> Seen:
    return Seen()


@pytest.fixture(scope="module")
def app_url(workspace, seen) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABRICKS_HOST", workspace.url)  # as Databricks Apps set it
        with BackgroundServer(make_app(seen)) as server:
            yield server.url


@pytest.fixture(scope="module")
def tokens(workspace) -> dict[str, str]:
    return {user: workspace.issue_token(user, scopes=["serving.serving-endpoints"], actor="obo-agent") for user in USERS}


def forwarded(token: str) -> dict[str, str]:
    return {"x-forwarded-access-token": token}


def test_each_user_of_the_app_acts_as_themselves(workspace, app_url, tokens):
    before = len(workspace.audit())
    for user in USERS:
        answer = httpx.get(f"{app_url}/whoami", headers=forwarded(tokens[user]))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"user": f"{user}@example.com"}
    records = [r for r in workspace.audit()[before:] if r.path == ME]
    assert [r.principal for r in records] == [f"{u}@example.com" for u in USERS]


def test_a_request_without_the_header_is_refused_before_the_app_runs(workspace, app_url, seen, agent_identity):
    agent_identity(workspace)  # the App's own service principal is in the environment, as on Databricks Apps
    calls, before = seen.calls, len(workspace.audit())
    answer = httpx.get(f"{app_url}/whoami")
    assert answer.status_code == 401
    assert answer.json()["error_code"] == "UNAUTHENTICATED"
    assert "x-forwarded-access-token" in answer.json()["message"]
    assert "service principal" in answer.json()["message"]
    assert seen.calls == calls
    assert workspace.audit()[before:] == []  # nothing reached the workspace, as anyone


@pytest.mark.parametrize("value", ["", "two words", "tok\u00e9n", "a\tb"])
def test_a_blank_or_malformed_forwarded_token_is_refused_and_not_echoed(app_url, seen, value):
    calls = seen.calls
    answer = httpx.get(f"{app_url}/whoami", headers=[("x-forwarded-access-token", value.encode("latin-1"))])
    assert answer.status_code == 401
    assert seen.calls == calls
    if value.strip():
        assert value not in answer.text


def test_two_forwarded_tokens_are_refused(app_url, tokens, seen):
    calls = seen.calls
    headers = [("x-forwarded-access-token", tokens["alice"]), ("x-forwarded-access-token", tokens["bob"])]
    answer = httpx.get(f"{app_url}/whoami", headers=headers)
    assert answer.status_code == 401
    assert "2 x-forwarded-access-token headers" in answer.json()["message"]
    assert seen.calls == calls


def test_a_public_path_runs_without_a_user_and_without_a_request(app_url):
    answer = httpx.get(f"{app_url}/health")
    assert answer.json() == {"status": "healthy", "request": None}


def test_a_public_path_with_a_token_still_has_no_request(app_url, tokens):
    assert httpx.get(f"{app_url}/health", headers=forwarded(tokens["alice"])).json()["request"] is None


def test_a_client_kept_on_the_app_acts_for_the_later_request_it_is_used_in(app_url, tokens):
    assert httpx.get(f"{app_url}/keep", headers=forwarded(tokens["alice"])).status_code == 200
    assert httpx.get(f"{app_url}/use-kept", headers=forwarded(tokens["bob"])).json() == {"user": "bob@example.com"}


def test_a_kept_client_outside_any_request_sends_nothing(workspace, app_url, tokens, seen):
    httpx.get(f"{app_url}/keep", headers=forwarded(tokens["carol"]))
    before = len(workspace.audit())
    with pytest.raises(obo_auth.RequestEndedError):
        seen.kept.current_user.me()
    assert workspace.audit()[before:] == []


def test_a_decorated_helper_joins_the_app_request(app_url, tokens):
    assert httpx.get(f"{app_url}/helper", headers=forwarded(tokens["carol"])).json() == {"user": "carol@example.com"}


def test_a_streamed_body_runs_as_its_user_to_the_end(app_url, tokens):
    for user in USERS:
        with httpx.stream("GET", f"{app_url}/stream", headers=forwarded(tokens[user])) as answer:
            events = [line for line in answer.iter_lines() if line.startswith("data:")]
        assert events == [f"data: {user}@example.com"] * 3


def test_concurrent_app_requests_of_three_users_never_mix(workspace, app_url, tokens):
    from concurrent.futures import ThreadPoolExecutor

    plan = [USERS[i % 3] for i in range(90)]
    with httpx.Client() as client, ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda u: client.get(f"{app_url}/whoami", headers=forwarded(tokens[u])).json()["user"], plan))
    assert got == [f"{u}@example.com" for u in plan]


def test_a_websocket_without_a_user_is_refused_and_with_one_accepted(app_url, tokens):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = app_url.replace("http://", "ws://") + "/ws"
    with pytest.raises(InvalidStatus) as refused:
        connect(url)
    assert refused.value.response.status_code == 403  # uvicorn's answer to a close before the handshake
    with connect(url, additional_headers=forwarded(tokens["alice"])) as socket:
        assert socket.recv() == "hello"


def test_app_request_opens_and_ends_one_request(workspace, tokens):
    with obo_auth.app_request({"X-Forwarded-Access-Token": tokens["bob"]}, host=workspace.url) as req:
        client = req.user_client
        assert client.current_user.me().user_name == "bob@example.com"
        assert obo_auth.current_request() is req
    assert not req.active
    with pytest.raises(obo_auth.RequestEndedError):
        client.current_user.me()


def test_app_request_refuses_missing_malformed_nested_and_non_mapping(workspace, tokens):
    with pytest.raises(NoInvokerError, match="never falls back"):
        with obo_auth.app_request({}, host=workspace.url):
            pass
    with pytest.raises(MalformedTokenError) as malformed:
        with obo_auth.app_request({"x-forwarded-access-token": "not a token"}, host=workspace.url):
            pass
    assert "not a token" not in str(malformed.value)
    with obo_auth.app_request({"x-forwarded-access-token": tokens["alice"]}, host=workspace.url):
        with pytest.raises(OboAuthError, match="inside a live request"):
            with obo_auth.app_request({"x-forwarded-access-token": tokens["bob"]}, host=workspace.url):
                pass
        assert obo_auth.current_request().user_client.current_user.me().user_name == "alice@example.com"
    with pytest.raises(obo_auth.ArgumentTypeError, match="headers"):
        with obo_auth.app_request([("x-forwarded-access-token", tokens["alice"])], host=workspace.url):
            pass


def test_a_decorated_call_in_an_app_without_the_middleware_names_it(monkeypatch):
    monkeypatch.delenv("IS_IN_DB_MODEL_SERVING_ENV", raising=False)

    @obo_auth.on_behalf_of_user
    def predict():
        return "ran"

    with pytest.raises(NoInvokerError, match="OboAppMiddleware"):
        predict()


# -- the App's authorization from the declarations -----------------------------------------


def test_app_config_maps_model_serving_scopes_to_the_names_apps_accept():
    config = obo_auth.app_config(
        obo_auth.SqlWarehouse("abc123"),
        obo_auth.GenieSpace("01ef"),
        obo_auth.UCTable("main.hr.employees"),
        obo_auth.ServingEndpoint("chat-model", on_behalf_of_user=False),
    )
    assert config.user_api_scopes == ["dashboards.genie", "sql"]
    assert config.resources == [{"name": "serving-endpoint", "serving_endpoint": {"name": "chat-model", "permission": "CAN_QUERY"}}]


def test_app_config_lists_what_the_app_reaches_as_itself():
    config = obo_auth.app_config(
        obo_auth.SqlWarehouse("abc123", on_behalf_of_user=False),
        obo_auth.UCTable("main.hr.employees", on_behalf_of_user=False),
        obo_auth.UCConnection("github", on_behalf_of_user=False),
        obo_auth.VectorSearchIndex("main.docs.handbook_index", on_behalf_of_user=False),
        extra_scopes=["catalog.tables:read"],
    )
    assert config.user_api_scopes == ["catalog.tables:read"]
    assert [r["name"] for r in config.resources] == ["sql-warehouse", "table", "uc-connection"]
    assert config.resources[1]["uc_securable"] == {"securable_full_name": "main.hr.employees", "securable_type": "TABLE", "permission": "SELECT"}
    assert config.grant_by_hand == ["SELECT on VectorSearchIndex main.docs.handbook_index to the App's service principal"]


@pytest.mark.parametrize("scope", ["unity-catalog", "sql.warehouses", "apps.apps", "sql.warehouse"])
def test_app_config_refuses_a_scope_apps_would_refuse(scope):
    with pytest.raises(InvalidScopeError, match="Databricks Apps would refuse"):
        obo_auth.app_config(obo_auth.SqlWarehouse("abc"), extra_scopes=[scope])


def test_app_config_refuses_a_resource_declared_both_ways_and_nothing_at_all():
    with pytest.raises(ResourceDeclarationError, match="both"):
        obo_auth.app_config(obo_auth.SqlWarehouse("abc"), obo_auth.SqlWarehouse("abc", on_behalf_of_user=False))
    with pytest.raises(ResourceDeclarationError, match="at least one"):
        obo_auth.app_config()


def test_the_example_apps_bundle_says_what_its_declarations_need():
    import importlib.util
    import sys

    directory = ROOT / "examples" / "handbook_agent"
    spec = importlib.util.spec_from_file_location("handbook_logic_for_apps_test", directory / "handbook_logic.py")
    logic = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = logic  # its dataclasses look their module up while they are defined
    try:
        spec.loader.exec_module(logic)
    finally:
        del sys.modules[spec.name]
    bundle = yaml.safe_load((directory / "databricks.yml").read_text())
    (app,) = bundle["resources"]["apps"].values()
    expected = obo_auth.app_config(*logic.RESOURCES).bundle()
    assert {key: app[key] for key in expected} == expected


def test_a_strict_handler_joining_the_app_request_fails_loudly(workspace, tokens):
    from databricks.sdk.errors import PermissionDenied

    def denied():
        raise PermissionDenied("no SELECT on the index")

    @obo_auth.on_behalf_of_user(strict=True)
    def strict_handler():
        return obo_auth.current_request().optional("the handbook", denied)

    @obo_auth.on_behalf_of_user
    def lenient_handler():
        return obo_auth.current_request().optional("the handbook", denied)

    @obo_auth.on_behalf_of_user(strict=True)
    def strict_stream():
        yield obo_auth.current_request().optional("the handbook", denied)

    with obo_auth.app_request(forwarded(tokens["bob"]), host=workspace.url) as req:  # opened without strict
        with pytest.raises(obo_auth.ToolUnavailableError):
            strict_handler()
        with pytest.raises(obo_auth.ToolUnavailableError):
            list(strict_stream())
        assert lenient_handler() is None  # after the strict call, the request is as it was opened
        assert [d.name for d in req.degraded] == ["the handbook"]


@pytest.mark.parametrize(
    "names",
    [(b"x-forwarded-access-token", b"X-Forwarded-Access-Token"), (b"x-forwarded-access-token", b"x_forwarded_access_token")],
    ids=["two-cases", "underscores"],
)
def test_two_spellings_of_the_header_are_two_headers_and_refused(workspace, tokens, names):
    """Servers lower-case names and h11 accepts "_"; an inner layer or a WSGI bridge may merge them:
    every spelling a framework would read as the token header counts."""
    seen = Seen()
    app = make_app(seen)
    sent: list[dict] = []
    scope = {"type": "http", "method": "GET", "path": "/whoami", "raw_path": b"/whoami", "query_string": b"", "root_path": "",
             "scheme": "http", "server": ("127.0.0.1", 80), "http_version": "1.1", "asgi": {"version": "3.0"},
             "headers": [(names[0], tokens["alice"].encode()), (names[1], tokens["bob"].encode())]}  # fmt: skip

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 401 and seen.calls == 0
    assert b"2 x-forwarded-access-token headers" in sent[1]["body"]


def test_app_request_reads_every_spelling_of_the_header_in_flask_and_dict_headers(workspace, tokens):
    from werkzeug.datastructures import Headers as FlaskHeaders

    flask = FlaskHeaders([("X-Forwarded-Access-Token", tokens["alice"]), ("x-forwarded-access-token", tokens["bob"])])
    for headers in (flask, {"x-forwarded-access-token": tokens["alice"], "X_FORWARDED_ACCESS_TOKEN": tokens["bob"]}):
        with pytest.raises(NoInvokerError, match="2 x-forwarded-access-token headers"):
            with obo_auth.app_request(headers, host=workspace.url):
                pass
    with obo_auth.app_request(FlaskHeaders([("X-Forwarded-Access-Token", tokens["carol"])]), host=workspace.url) as req:
        assert req.user_client.current_user.me().user_name == "carol@example.com"


def test_app_config_never_widens_a_scope_apps_accept():
    assert obo_auth.app_config(obo_auth.ServingEndpoint("x"), extra_scopes=["sql.statement-execution"]).user_api_scopes == [
        "serving.serving-endpoints",
        "sql.statement-execution",
    ]
    assert obo_auth.app_config(obo_auth.SqlWarehouse("a"), extra_scopes=["sql.statement-execution"]).user_api_scopes == ["sql"]
