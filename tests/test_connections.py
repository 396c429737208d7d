"""Unity Catalog HTTP connections (``obo_auth.local.connections``) over real HTTP: the unmodified
databricks-sdk's ``serving_endpoints.http_request`` against a local workspace, which proxies to a
recording upstream on loopback (or to its built-in echo), as alice, bob, carol and obo-agent.

Siblings: tests/test_auth.py (scopes and the audit log of every route), tests/test_seed.py
(bad seeds of the other services), tests/test_bad_input.py (generated bad requests).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import socket
import threading

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound, PermissionDenied
from databricks.sdk.service.serving import ExternalFunctionRequestHttpMethod as Method
from databricks.sdk.service.serving import ServingEndpointsAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from obo_auth.local import LocalWorkspace, SeedError
from obo_auth.local.connections import proxy
from obo_auth.local.seed import load_seed
from obo_auth.local.server import BackgroundServer
from obo_auth.redact import fingerprint
from seeds import default_seed

DEFAULT = default_seed()
EXTERNAL_FUNCTION = "/api/2.0/external-function"
BOTH_SCOPES = ["catalog.connections", "serving.serving-endpoints"]
# The connections' credentials: fake tokens that must never show anywhere but upstream.
ALICE_UPSTREAM_TOKEN = "alice-upstream-token-7f3a9c"
SHARED_UPSTREAM_TOKEN = "shared-upstream-token-51be04"
ECHO_TOKEN = "echo-shared-token-c0ffee"
DEAD_TOKEN = "dead-upstream-token-9d2e11"
SECRETS = [ALICE_UPSTREAM_TOKEN, SHARED_UPSTREAM_TOKEN, ECHO_TOKEN, DEAD_TOKEN]


# -- a recording upstream ------------------------------------------------------------------------
class Upstream:
    """A small HTTP service on loopback that records every request it receives."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.release = threading.Event()  # ends /slow
        self.app = Starlette(routes=[Route("/{path:path}", self._answer, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])])

    async def _answer(self, request: Request) -> Response:
        body = await request.body()
        self.received.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "headers": dict(request.headers),
                "body": body.decode("utf-8", "replace"),
            }
        )
        path = request.url.path
        if path.startswith("/base/status/"):
            code = int(path.rsplit("/", 1)[1])
            return JSONResponse({"upstream_says": f"status {code}"}, status_code=code)
        if path == "/base/text":
            return PlainTextResponse("plain words")
        if path == "/base/big":
            return PlainTextResponse("x" * 5000)
        if path == "/base/session":
            return JSONResponse({"jsonrpc": "2.0"}, headers={"mcp-session-id": "session-42", "x-other": "not relayed"})
        if path == "/base/redirect":
            return Response(status_code=302, headers={"location": "http://127.0.0.1:9/elsewhere"})
        if path == "/base/slow":
            while not self.release.is_set():  # until the test is done with it: no sleeping out a clock
                await asyncio.sleep(0.01)
            return JSONResponse({"late": True})
        return JSONResponse({"you_asked_for": path, "credential_of": request.headers.get("x-obo-auth-credential-of")})


@pytest.fixture(scope="module")
def upstream():
    recorder = Upstream()
    server = BackgroundServer(recorder.app)
    server.start()
    recorder.url = server.url
    yield recorder
    recorder.release.set()
    server.stop()


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed_with(connections: list[dict], grants: list[tuple[str, str]]) -> dict:
    """The default seed with these connections and USE CONNECTION grants (principal, connection),
    instead of any the default seed has."""
    seed = copy.deepcopy(DEFAULT)
    seed["connections"] = connections
    seed["grants"] = [g for g in seed["grants"] if "connection" not in g["on"]] + [
        {"principal": principal, "privilege": "USE CONNECTION", "on": {"connection": name}} for principal, name in grants
    ]
    return seed


@pytest.fixture(scope="module")
def ws(upstream):
    connections = [
        # OAuth U2M per user: alice has signed in, carol has not.
        {"name": "per_user", "url": f"{upstream.url}/base", "per_user_tokens": {"alice@example.com": ALICE_UPSTREAM_TOKEN}},
        {"name": "shared", "url": f"{upstream.url}/base/", "bearer_token": SHARED_UPSTREAM_TOKEN},
        {"name": "echo", "url": "builtin:echo", "bearer_token": ECHO_TOKEN},
        {"name": "dead", "url": f"http://127.0.0.1:{free_port()}/x", "bearer_token": DEAD_TOKEN},
    ]
    grants = [
        ("alice@example.com", "per_user"), ("alice@example.com", "shared"), ("alice@example.com", "echo"), ("alice@example.com", "dead"),
        ("carol@example.com", "per_user"), ("carol@example.com", "shared"),
        ("obo-agent", "per_user"), ("obo-agent", "shared"),
    ]  # fmt: skip
    with LocalWorkspace(seed_with(connections, grants)) as workspace:
        yield workspace


@pytest.fixture(autouse=True)
def fresh(request):
    """Each test sees only what its own requests did upstream."""
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").received.clear()


def sdk(ws: LocalWorkspace, principal: str, scopes: list[str] | None = None, actor: str | None = None) -> WorkspaceClient:
    return WorkspaceClient(host=ws.url, token=ws.issue_token(principal, scopes=scopes, actor=actor))


def post(ws: LocalWorkspace, token: str, body, **kwargs) -> httpx.Response:
    """The external-function route over raw HTTP, for what the SDK would not send."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(ws.url + EXTERNAL_FUNCTION, content=content, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, **kwargs)


def everything_sent(received: list[dict]) -> str:
    return json.dumps(received)


# -- whose credential goes upstream -------------------------------------------------------------------
def test_alice_reaches_a_per_user_connection_with_her_own_credential(ws, upstream):
    token = ws.issue_token("alice")
    w = WorkspaceClient(host=ws.url, token=token)

    response = w.serving_endpoints.http_request(conn="per_user", method=Method.GET, path="/user", headers={"Accept": "application/json"})

    assert response.json() == {"you_asked_for": "/base/user", "credential_of": "alice@example.com"}
    (seen,) = upstream.received
    assert (seen["method"], seen["path"]) == ("GET", "/base/user")
    assert seen["headers"]["authorization"] == f"Bearer {ALICE_UPSTREAM_TOKEN}"
    assert seen["headers"]["x-obo-auth-credential-of"] == "alice@example.com"
    assert seen["headers"]["accept"] == "application/json"
    assert token not in everything_sent(upstream.received)
    # None of the caller's own request headers go upstream, only the ones it named.
    assert "databricks-sdk" not in seen["headers"].get("user-agent", "")


def test_carol_reaches_a_shared_connection_with_the_connections_credential(ws, upstream):
    token = ws.issue_token("carol")

    response = WorkspaceClient(host=ws.url, token=token).serving_endpoints.http_request(conn="shared", method=Method.POST, path="issues", json={"title": "hi"})

    assert response.json()["credential_of"] == "connection"
    (seen,) = upstream.received
    assert (seen["method"], seen["path"], seen["body"]) == ("POST", "/base/issues", '{"title": "hi"}')
    assert seen["headers"]["authorization"] == f"Bearer {SHARED_UPSTREAM_TOKEN}"
    assert seen["headers"]["content-type"] == "application/json"
    assert token not in everything_sent(upstream.received)


def test_carol_has_not_signed_in_to_the_per_user_connection_and_gets_no_one_elses_credential(ws, upstream):
    with pytest.raises(PermissionDenied, match="carol@example.com has not signed in"):
        sdk(ws, "carol").serving_endpoints.http_request(conn="per_user", method=Method.GET, path="/user")
    assert upstream.received == []
    assert ws.audit()[-1].resource == "connection:per_user" and ws.audit()[-1].decision == "deny"


def test_bob_without_use_connection_is_denied_in_the_platform_shape(ws, upstream):
    with pytest.raises(PermissionDenied, match="does not have USE CONNECTION on connection 'shared'"):
        sdk(ws, "bob").serving_endpoints.http_request(conn="shared", method=Method.GET, path="/user")

    raw = post(ws, ws.issue_token("bob"), {"connection_name": "shared", "method": "GET", "path": "/user"})
    assert raw.status_code == 403
    assert set(raw.json()) == {"error_code", "message"} and raw.json()["error_code"] == "PERMISSION_DENIED"
    assert upstream.received == []
    record = ws.audit()[-1]
    assert (record.principal, record.resource, record.decision, record.status) == ("bob@example.com", "connection:shared", "deny", 403)


def test_the_callers_authorization_and_hop_by_hop_headers_are_dropped(ws, upstream):
    spoofed = {
        "Authorization": "Bearer spoofed",
        "Proxy-Authorization": "Basic c3Bvb2Y=",
        "X-Obo-Auth-Credential-Of": "bob@example.com",
        "Connection": "close",
        "Keep-Alive": "timeout=5",
        "Upgrade": "websocket",
        "X-Custom": "kept",
    }
    sdk(ws, "alice").serving_endpoints.http_request(conn="per_user", method=Method.GET, path="/user", headers=spoofed)

    (seen,) = upstream.received
    assert seen["headers"]["authorization"] == f"Bearer {ALICE_UPSTREAM_TOKEN}"
    assert seen["headers"]["x-obo-auth-credential-of"] == "alice@example.com"
    assert seen["headers"]["x-custom"] == "kept"
    assert "proxy-authorization" not in seen["headers"] and "upgrade" not in seen["headers"]
    assert "spoofed" not in everything_sent(upstream.received)


@pytest.mark.parametrize(
    "where",
    [
        lambda token: {"headers": json.dumps({"X-Api-Key": token})},
        lambda token: {"headers": json.dumps({"Authorization": f"Bearer {token}"})},
        lambda token: {"params": json.dumps({"key": token})},
        lambda token: {"json": json.dumps({"forward": token})},
        lambda token: {"path": f"/tokens/{token}"},
        # Found by an adversarial review: names, encodings and escapes carried it past a check of raw values.
        lambda token: {"params": json.dumps({token: "1"})},
        lambda token: {"headers": json.dumps({token: "1"})},
        lambda token: {"path": "/t/" + "".join(f"%{ord(c):02x}" for c in token)},
        lambda token: {"path": f"/t?k={token}"},
        lambda token: {"json": json.dumps({"forward": token}).replace(token[0], "\\u%04x" % ord(token[0]), 1)},
    ],
    ids=["header", "authorization header", "param", "json", "path", "param name", "header name", "percent-encoded path", "path query", "json escape"],
)
def test_the_callers_databricks_token_never_reaches_the_upstream_even_when_sent_on_purpose(ws, upstream, where):
    token = ws.issue_token("alice")
    response = post(ws, token, {"connection_name": "per_user", "method": "POST", "path": "/user", **where(token)})

    assert response.status_code == 400
    assert "caller's own Databricks token" in response.json()["message"]
    assert token not in response.text and token not in ws.audit()[-1].reason
    assert upstream.received == []


# -- scopes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scopes", "missing"),
    [
        (["serving.serving-endpoints"], "catalog.connections"),
        (["catalog.connections"], "serving.serving-endpoints"),
        (["catalog.connections", "unity-catalog", "sql"], "serving.serving-endpoints"),
        (["vector-search"], "catalog.connections"),
    ],
)
def test_a_downscoped_token_needs_both_connection_scopes(ws, upstream, scopes, missing):
    with pytest.raises(PermissionDenied, match="Invalid scope") as denied:
        sdk(ws, "alice", scopes=scopes, actor="obo-agent").serving_endpoints.http_request(conn="per_user", method=Method.GET, path="/user")
    assert f"'{missing}'" in str(denied.value)
    assert upstream.received == []
    assert ws.audit()[-1].decision == "deny" and ws.audit()[-1].needed_scope == "catalog.connections"


@pytest.mark.parametrize("scopes", [BOTH_SCOPES, ["catalog.connections", "model-serving"]])
def test_an_obo_token_with_both_scopes_reaches_the_upstream_with_the_users_credential(ws, upstream, scopes):
    w = sdk(ws, "alice", scopes=scopes, actor="obo-agent")

    assert w.serving_endpoints.http_request(conn="per_user", method=Method.GET, path="/user").json()["credential_of"] == "alice@example.com"

    record = ws.audit()[-1]
    assert (record.principal, record.actor, record.decision) == ("alice@example.com", "obo-agent", "allow")


# -- a service principal, OAuth M2M -------------------------------------------------------------------
def test_the_agents_service_principal_uses_a_shared_connection_over_oauth_m2m(ws, upstream):
    client_id, client_secret = ws.client_credentials("obo-agent")
    w = WorkspaceClient(host=ws.url, client_id=client_id, client_secret=client_secret)

    assert w.serving_endpoints.http_request(conn="shared", method=Method.GET, path="/repos").json()["credential_of"] == "connection"
    assert ws.audit()[-1].principal == "obo-agent"

    # Per-user credentials are users' sign-ins: a service principal has none to use.
    with pytest.raises(PermissionDenied, match="obo-agent has not signed in"):
        w.serving_endpoints.http_request(conn="per_user", method=Method.GET, path="/repos")
    assert len(upstream.received) == 1


# -- the built-in echo --------------------------------------------------------------------------------
def test_the_builtin_echo_answers_with_what_it_received_and_never_with_the_credential(ws):
    w = sdk(ws, "alice")

    response = w.serving_endpoints.http_request(
        conn="echo", method=Method.PATCH, path="/items/7?page=2", headers={"X-Trace": "t1"}, json={"done": True}, params={"fields": "a,b"}
    )

    echoed = response.json()
    assert (echoed["method"], echoed["path"]) == ("PATCH", "/items/7")
    assert echoed["query"] == [["page", "2"], ["fields", "a,b"]]
    assert echoed["json"] == {"done": True} and echoed["headers"]["x-trace"] == "t1"
    assert echoed["credential_of"] == "connection"
    assert echoed["credential_fingerprint"] == fingerprint(ECHO_TOKEN)
    assert ECHO_TOKEN not in response.text
    assert "builtin:echo" in ws.audit()[-1].reason


def test_the_generated_sdk_call_works_too(ws):
    w = sdk(ws, "alice")
    # ServingEndpointsAPI.http_request: the generated method the mixin overrides; it takes the
    # JSON strings itself and adds X-Databricks-Workspace-Id.
    answer = ServingEndpointsAPI.http_request(w.serving_endpoints, connection_name="echo", method=Method.GET, path="/ping", params=json.dumps({"q": "1"}))
    echoed = json.loads(answer.contents.read())
    assert (echoed["path"], echoed["query"]) == ("/ping", [["q", "1"]])


# -- what comes back ----------------------------------------------------------------------------------
def test_the_upstreams_status_body_and_content_type_are_relayed(ws, upstream):
    token = ws.issue_token("alice")

    created = post(ws, token, {"connection_name": "shared", "method": "POST", "path": "/status/201"})
    assert (created.status_code, created.json()) == (201, {"upstream_says": "status 201"})

    text = post(ws, token, {"connection_name": "shared", "method": "GET", "path": "/text"})
    assert (text.status_code, text.text) == (200, "plain words")
    assert text.headers["content-type"].startswith("text/plain")

    missing = post(ws, token, {"connection_name": "shared", "method": "GET", "path": "/status/404"})
    assert (missing.status_code, missing.json()) == (404, {"upstream_says": "status 404"})
    assert "the upstream answered 404" in ws.audit()[-1].reason
    with pytest.raises(NotFound):  # the SDK raises on a relayed error status, as for any other
        sdk(ws, "alice").serving_endpoints.http_request(conn="shared", method=Method.GET, path="/status/404")


def test_the_mcp_session_id_comes_back_and_other_upstream_headers_do_not(ws, upstream):
    response = sdk(ws, "alice").serving_endpoints.http_request(conn="shared", method=Method.POST, path="/session", json={"jsonrpc": "2.0"})
    assert response.headers["mcp-session-id"] == "session-42"

    raw = post(ws, ws.issue_token("alice"), {"connection_name": "shared", "method": "POST", "path": "/session"})
    assert raw.headers["mcp-session-id"] == "session-42" and "x-other" not in raw.headers


def test_a_redirect_is_not_followed_nor_its_location_relayed(ws, upstream):
    response = post(ws, ws.issue_token("alice"), {"connection_name": "shared", "method": "GET", "path": "/redirect"})
    assert response.status_code == 302 and "location" not in response.headers
    assert len(upstream.received) == 1


def test_an_unreachable_upstream_is_a_502_in_the_databricks_shape_and_the_sdk_does_not_retry(ws):
    raw = post(ws, ws.issue_token("alice"), {"connection_name": "dead", "method": "GET", "path": "/x"})
    assert raw.status_code == 502
    assert raw.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert "nothing listens there" in raw.json()["message"] and "Connection 'dead'" in raw.json()["message"]

    w = sdk(ws, "alice")
    before = len(ws.audit())
    with pytest.raises(DatabricksError, match="nothing listens there"):
        w.serving_endpoints.http_request(conn="dead", method=Method.GET, path="/x")
    assert [r.path for r in ws.audit()[before:]] == [EXTERNAL_FUNCTION], "one request: a 502 is not retried"


def test_an_upstream_answer_over_the_limit_is_a_502(ws, upstream, mocker):
    mocker.patch.object(proxy, "MAX_RESPONSE_BYTES", 1000)
    response = post(ws, ws.issue_token("alice"), {"connection_name": "shared", "method": "GET", "path": "/big"})
    assert response.status_code == 502
    assert "more than 1000 bytes" in response.json()["message"]


def test_an_upstream_that_does_not_answer_in_time_is_a_504(ws, upstream, mocker):
    mocker.patch.object(proxy, "TIMEOUT_SECONDS", 0.2)
    try:
        response = post(ws, ws.issue_token("alice"), {"connection_name": "shared", "method": "GET", "path": "/slow"})
    finally:
        upstream.release.set()
    assert response.status_code == 504
    assert response.json()["error_code"] == "DEADLINE_EXCEEDED"


# -- the audit log ------------------------------------------------------------------------------------
def test_the_audit_record_names_connection_method_path_credential_and_status_but_no_query(ws, upstream):
    sdk(ws, "alice").serving_endpoints.http_request(conn="per_user", method=Method.DELETE, path="/repos/9?api_key=query-secret-1", params={"token": "query-secret-2"})

    assert upstream.received[0]["query"] == "api_key=query-secret-1&token=query-secret-2"
    record = ws.audit()[-1]
    assert (record.path, record.resource, record.decision, record.status) == (EXTERNAL_FUNCTION, "connection:per_user", "allow", 200)
    assert record.reason.startswith("alice@example.com has USE CONNECTION on connection per_user")
    assert f"DELETE /repos/9 on {upstream.url}/base with the credential of alice@example.com" in record.reason
    assert "the upstream answered 200" in record.reason
    assert "query-secret" not in repr(record)


def test_resource_names_list_the_connections_for_uc_connection_declarations(ws):
    assert ws.state.resource_names()["uc_connection"] == ["dead", "echo", "per_user", "shared"]


# -- bad input: one clear 4xx each, nothing sent upstream -------------------------------------------------
GOOD = {"connection_name": "shared", "method": "GET", "path": "/user"}
BAD_BODIES = {
    "unknown connection": ({**GOOD, "connection_name": "nope"}, 404, "Connection 'nope' does not exist"),
    "no connection name": ({"method": "GET", "path": "/x"}, 400, "'connection_name'"),
    "connection name not a string": ({**GOOD, "connection_name": 7}, 400, "'connection_name' must be a string"),
    "bad method": ({**GOOD, "method": "TRACE"}, 400, "'method' must be one of GET, POST, PUT, DELETE, PATCH"),
    "no path": ({"connection_name": "shared", "method": "GET"}, 400, "'path'"),
    "dot-dot": ({**GOOD, "path": "../admin"}, 400, "no '.' or '..' segments"),
    "dot-dot inside": ({**GOOD, "path": "/a/../../admin"}, 400, "no '.' or '..' segments"),
    "encoded dot-dot": ({**GOOD, "path": "/a/%2e%2E/admin"}, 400, "no '.' or '..' segments"),
    "encoded slashes": ({**GOOD, "path": "/a/%2F%2Fevil"}, 400, "no '//'"),
    "encoded leading slash": ({**GOOD, "path": "%2Fevil"}, 400, "no '//'"),
    "dot-dot with a parameter": ({**GOOD, "path": "/a/..;/admin"}, 400, "no '.' or '..' segments"),
    "absolute URL": ({**GOOD, "path": "http://evil.example.com/x"}, 400, "not a URL or '//host'"),
    "scheme only": ({**GOOD, "path": "javascript:alert(1)"}, 400, "not a URL or '//host'"),
    "//host": ({**GOOD, "path": "//evil.example.com/x"}, 400, "not a URL or '//host'"),
    "empty segment": ({**GOOD, "path": "/a//b"}, 400, "no '//'"),
    "backslash": ({**GOOD, "path": "/a\\..\\b"}, 400, "backslashes"),
    "space": ({**GOOD, "path": "/a b"}, 400, "without spaces"),
    "newline": ({**GOOD, "path": "/a\r\nX-Injected: 1"}, 400, "printable ASCII"),
    "fragment": ({**GOOD, "path": "/a#frag"}, 400, "fragment"),
    "encoded NUL": ({**GOOD, "path": "/a%00b"}, 400, "stay under the connection's base"),
    "too long path": ({**GOOD, "path": "/" + "a" * 3000}, 400, "longer than 2048"),
    "headers not JSON": ({**GOOD, "headers": "{not json"}, 400, "Field 'headers' is not valid JSON"),
    "headers an array": ({**GOOD, "headers": "[1, 2]"}, 400, "Field 'headers' must hold a JSON object"),
    "headers an object, not a string": ({**GOOD, "headers": {"X-A": "1"}}, 400, "Field 'headers' must be a string"),
    "header value not a string": ({**GOOD, "headers": json.dumps({"X-A": 1})}, 400, "'X-A' has an integer"),
    "header name invalid": ({**GOOD, "headers": json.dumps({"X A": "1"})}, 400, "not an HTTP header name"),
    "header value with a line break": ({**GOOD, "headers": json.dumps({"X-A": "1\r\nX-B: 2"})}, 400, "no line breaks"),
    "too many headers": ({**GOOD, "headers": json.dumps({f"X-{i}": "v" for i in range(65)})}, 400, "the limit is 64"),
    "params not an object": ({**GOOD, "params": '"a=b"'}, 400, "Field 'params' must hold a JSON object"),
    "param value a list": ({**GOOD, "params": json.dumps({"a": [1]})}, 400, "'a' has an array"),
    "json not JSON": ({**GOOD, "method": "POST", "json": "{'single': 'quotes'}"}, 400, "Field 'json' is not valid JSON"),
    "json an object, not a string": ({**GOOD, "method": "POST", "json": {"a": 1}}, 400, "Field 'json' must be a string"),
    "sub_domain": ({**GOOD, "sub_domain": "eu"}, 400, "'sub_domain' is not supported"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_input_gets_one_clear_error_and_nothing_goes_upstream(ws, upstream, case):
    body, status, says = BAD_BODIES[case]
    before = len(ws.audit())

    response = post(ws, ws.issue_token("alice"), body)

    assert response.status_code == status, response.text
    assert set(response.json()) == {"error_code", "message"}
    assert says in response.json()["message"]
    assert "\n" not in response.json()["message"]
    assert upstream.received == []
    assert len(ws.audit()) == before + 1


@pytest.mark.parametrize(
    ("content", "error_code", "says"),
    [
        (b"{not json", "MALFORMED_REQUEST", "not valid JSON"),
        (b"[]", "MALFORMED_REQUEST", "must be a JSON object"),
        (b"", "MALFORMED_REQUEST", "empty"),
        (json.dumps({**GOOD, "method": "POST", "json": json.dumps({"x": "y" * (1024 * 1024)})}).encode(), "REQUEST_ENTITY_TOO_LARGE", "the limit is"),
    ],
    ids=["bad JSON", "not an object", "empty", "huge"],
)
def test_a_body_that_is_not_a_small_json_object_is_a_400(ws, upstream, content, error_code, says):
    response = post(ws, ws.issue_token("alice"), content)
    assert response.status_code == 400
    assert response.json()["error_code"] == error_code and says in response.json()["message"]
    assert upstream.received == []


# Paths built from the pieces that escape a base: dots, slashes, their encodings, schemes, hosts.
escape_pieces = st.sampled_from(["/", ".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "\\", "//", "a", "b", ":", "http:", "@", "evil.example.com", "?", "#", "%00", " ", "~", ";"])
escaping_path = st.lists(escape_pieces, max_size=10).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(path=escaping_path)
def test_any_path_the_workspace_accepts_stays_under_the_connections_base(ws, upstream, path):
    upstream.received.clear()
    response = post(ws, ws.issue_token("alice"), {"connection_name": "shared", "method": "GET", "path": path})

    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert upstream.received == [] and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        return
    (seen,) = upstream.received
    # What the upstream's framework decoded: under /base, with no dot segment left to resolve.
    assert seen["path"] == "/base" or seen["path"].startswith("/base/")
    assert not {".", ".."} & set(seen["path"].split("/")) and "//" not in seen["path"]


def test_the_route_answers_only_post(ws):
    response = httpx.get(ws.url + EXTERNAL_FUNCTION, headers={"Authorization": f"Bearer {ws.issue_token('alice')}"})
    assert response.status_code == 404 and response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


# -- the seed -------------------------------------------------------------------------------------------
def one_connection(**fields) -> dict:
    return seed_with([{"name": "c", **fields}], [])


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://example.com:80/api", "the host must be 127.0.0.1 or [::1]"),
        ("http://10.0.0.1:80/api", "the host must be 127.0.0.1 or [::1]"),
        ("http://localhost:8080/api", "a host name could resolve off the machine"),
        ("http://127.0.0.1.example.com:80/", "the host must be 127.0.0.1"),
        ("https://127.0.0.1:8443/api", "only http://"),
        ("ftp://127.0.0.1:21/", "only http://"),
        ("http://127.0.0.1/api", "a port must follow it"),
        ("http://127.0.0.1:0/api", "not between 1 and 65535"),
        ("http://127.0.0.1:70000/api", "not between 1 and 65535"),
        ("http://127.0.0.1:8080/api?key=v", "a query or a fragment"),
        ("http://127.0.0.1:8080/a/../b", "no '.' or '..'"),
        ("http://127.0.0.1:8080//evil.example.com", "no '//'"),
        ("http://127.0.0.1:8080/a%2F..", "segments of letters, digits"),
        ("http://127.0.0.1:8080/a b", "control characters or spaces"),
        ("builtin:nope", "only http://"),
    ],
)
def test_a_connection_url_that_is_not_loopback_is_refused_in_the_seed(url, says):
    with pytest.raises(SeedError) as refused:
        load_seed(one_connection(url=url, bearer_token="t0ken"))
    assert "field 'connections[0].url'" in str(refused.value) and says in str(refused.value)


def test_a_url_with_user_info_is_refused_without_showing_it():
    with pytest.raises(SeedError) as refused:
        load_seed(one_connection(url="http://admin:hunter2@127.0.0.1:8080/api", bearer_token="t0ken"))
    assert "user info" in str(refused.value) and "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    ("fields", "where", "says"),
    [
        ({"url": "builtin:echo"}, "connections[0]'", "got neither"),
        ({"url": "builtin:echo", "bearer_token": "a", "per_user_tokens": {"alice@example.com": "b"}}, "connections[0]'", "got both"),
        ({"url": "builtin:echo", "per_user_tokens": {}}, "connections[0].per_user_tokens'", "at least one user"),
        ({"url": "builtin:echo", "per_user_tokens": {"alice": "t"}}, "connections[0].per_user_tokens.alice'", "by full user name"),
        ({"url": "builtin:echo", "per_user_tokens": {"obo-agent": "t"}}, "connections[0].per_user_tokens.obo-agent'", "is not a declared user"),
        ({"url": "builtin:echo", "bearer_token": ""}, "connections[0].bearer_token'", "printable ASCII characters without spaces"),
        ({"url": "builtin:echo", "bearer_token": "has space"}, "connections[0].bearer_token'", "without spaces"),
        ({"url": "builtin:echo", "bearer_token": "line\nbreak"}, "connections[0].bearer_token'", "without spaces"),
        ({"url": "builtin:echo", "bearer_token": "t", "oauth_scope": "x"}, "connections[0].oauth_scope'", "unknown field"),
    ],
)
def test_a_connection_needs_exactly_one_kind_of_well_formed_credential(fields, where, says):
    with pytest.raises(SeedError) as refused:
        load_seed(one_connection(**fields))
    assert f"field '{where}" in str(refused.value) and says in str(refused.value)


def test_connection_names_and_grants_on_them_are_checked():
    seed = seed_with(
        [{"name": "dup", "url": "builtin:echo", "bearer_token": "t"}, {"name": "dup", "url": "builtin:echo", "bearer_token": "t"}],
        [("alice@example.com", "nope")],
    )
    seed["grants"].append({"principal": "alice@example.com", "privilege": "SELECT", "on": {"connection": "dup"}})
    with pytest.raises(SeedError) as refused:
        load_seed(seed)
    message = str(refused.value)
    assert "field 'connections[1].name': 'dup' already names connections[0].name" in message
    assert "'nope' is not a declared connection; declared: dup" in message
    assert "'SELECT' is not a privilege on a connection; expected one of: USE CONNECTION" in message


def test_a_connection_name_is_one_path_segment():
    with pytest.raises(SeedError, match=r"field 'connections\[0\].name': expected 1-255 letters, digits, '_' and '-', got 'a/b'"):
        load_seed(seed_with([{"name": "a/b", "url": "builtin:echo", "bearer_token": "t"}], []))


SECRET = "s3cret-value-that-must-not-show"


@pytest.mark.parametrize(
    "connections",
    [
        {"name": "c", "url": "builtin:echo", "bearer_token": SECRET},  # a mapping, not a list
        [f"c builtin:echo {SECRET}"],  # an entry that is not a mapping
        [{"name": "c", "url": "builtin:echo", "bearer_token": [SECRET]}],
        [{"name": "c", "url": "builtin:echo", "bearer_token": 31415926535}],
        [{"name": "c", "url": "builtin:echo", "per_user_tokens": [SECRET]}],
        [{"name": "c", "url": "builtin:echo", "per_user_tokens": {"alice@example.com": [SECRET]}}],
        [{"name": "c", "url": "builtin:echo", "per_user_tokens": {"alice@example.com": f"{SECRET} with spaces"}}],
        [{"name": "c c", "url": "builtin:echo", "bearer_token": SECRET, "per_user_tokens": {"alice@example.com": SECRET}}],
    ],
    ids=["section a mapping", "entry a string", "token a list", "token a number", "per-user a list", "per-user token a list", "per-user token with spaces", "several problems"],
)
def test_seed_errors_never_show_a_credential(connections):
    seed = copy.deepcopy(DEFAULT)
    seed["connections"] = connections
    with pytest.raises(SeedError) as refused:
        load_seed(seed)
    assert "connections" in str(refused.value)
    assert SECRET not in str(refused.value) and "31415926535" not in str(refused.value)


# -- secrets: nowhere but upstream ---------------------------------------------------------------------------
def test_no_credential_shows_in_the_audit_log_errors_reprs_or_logs(ws, upstream, caplog):
    caplog.set_level(logging.DEBUG)
    token = ws.issue_token("alice")
    answers = [post(ws, token, {"connection_name": name, "method": "GET", "path": "/p", "params": json.dumps({"k": "v"})}) for name in ("per_user", "shared", "echo", "dead")]
    answers += [
        post(ws, ws.issue_token("carol"), {"connection_name": "per_user", "method": "GET", "path": "/x"}),
        post(ws, ws.issue_token("bob"), {"connection_name": "shared", "method": "GET", "path": "/x"}),
        post(ws, token, {**GOOD, "headers": json.dumps({"X-A": "v\n"})}),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 502, 403, 403, 400]

    state = ws.state.services["connections"]
    shown = [a.text for a in answers] + [repr(r) for r in ws.audit()] + [repr(state), repr(state.connection("per_user")), caplog.text]
    shown += [repr(ws.state), str(load_seed(seed_with([{"name": "c", "url": "builtin:echo", "bearer_token": SHARED_UPSTREAM_TOKEN}], [])))]
    for secret in SECRETS:
        assert not any(secret in text for text in shown), f"a connection's credential shows in: {[t[:80] for t in shown if secret in t]}"


def test_a_path_that_holds_a_connections_credential_is_scrubbed_from_the_audit_record(ws, upstream):
    # The caller cannot know the credential; should a path hold it anyway, the record shows its fingerprint.
    post(ws, ws.issue_token("alice"), {"connection_name": "shared", "method": "GET", "path": f"/p/{SHARED_UPSTREAM_TOKEN}"})
    assert SHARED_UPSTREAM_TOKEN not in repr(ws.audit()[-1])
    assert f"GET /p/{fingerprint(SHARED_UPSTREAM_TOKEN)}" in ws.audit()[-1].reason


def test_the_upstream_is_asked_for_an_uncompressed_answer(ws):
    """Found by an adversarial review: a small compressed answer unpacked to gigabytes before the size limit saw it."""
    response = post(ws, ws.issue_token("alice"), {"connection_name": "echo", "method": "GET", "path": "/", "headers": json.dumps({"Accept-Encoding": "zstd"})})
    assert response.status_code == 200 and response.json()["headers"]["accept-encoding"] == "identity"


@pytest.mark.parametrize("value", [" x", "x ", "\tx"])
def test_a_header_value_with_leading_or_trailing_blanks_is_the_callers_400(ws, upstream, value):
    response = post(ws, ws.issue_token("alice"), {"connection_name": "shared", "method": "GET", "path": "/", "headers": json.dumps({"X-A": value})})
    assert response.status_code == 400 and upstream.received == []


def test_a_path_error_never_shows_the_query(ws, upstream):
    response = post(ws, ws.issue_token("alice"), {"connection_name": "echo", "method": "GET", "path": "/a/../b?api_key=CALLER-KEY-123"})
    assert response.status_code == 400
    assert "CALLER-KEY-123" not in response.text and "CALLER-KEY-123" not in ws.audit()[-1].reason
