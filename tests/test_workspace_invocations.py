"""``POST /serving-endpoints/{name}/invocations`` of an agent endpoint, relayed by the workspace
to the agent local serving registered (``local/serving/relay.py``): the caller is checked as on
every route, the agent answers as the caller, a stream arrives as it is produced. Real served
models in their own processes, real HTTP, databricks-sdk and httpx.

Siblings: test_local_serving.py (the same agents called at serving's own URL),
test_workspace_admin.py (registering the endpoint).
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from databricks.sdk import WorkspaceClient

import obo_auth
from obo_auth.local import LocalWorkspace
from obo_auth.local.seed import load_seed
from obo_auth.serving import serve
from obo_auth.serving.workspace_link import WorkspaceLink

AGENTS = Path(__file__).resolve().parent / "agents"
QUESTION = "How does parental leave pay work?"
ME = "/api/2.0/preview/scim/v2/Me"


@pytest.fixture(scope="module")
def store(tmp_path_factory, own_mlflow_store):
    """An MLflow store both this process (logging) and the serving process (loading) use."""
    root = tmp_path_factory.mktemp("invocations-store")
    with own_mlflow_store(root, "invocations"):
        yield root


@contextmanager
def served(workspace, model_uri: str, endpoint: str):
    """Serves the model and registers its URL, as local serving does once it listens."""
    with serve(model_uri, workspace, endpoint) as running:
        register(workspace, endpoint, running.url)
        yield running


def register(workspace, endpoint: str, url: str | None) -> None:
    link = WorkspaceLink(workspace.url, workspace.state.admin_token)
    try:
        link.register_endpoint(endpoint, url=url)
    finally:
        link.close()


@pytest.fixture(scope="module")
def handbook(workspace, store, handbook_example, logging_as_alice):
    with logging_as_alice(workspace):
        info = handbook_example.log(handbook_example.CHAT_AGENT)
    with served(workspace, info.model_uri, "handbook") as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def escaping(workspace, store, logging_as_alice):
    with logging_as_alice(workspace):
        info = obo_auth.log_model(str(AGENTS / "escaping_agent.py"), resources=[obo_auth.ServingEndpoint("chat-model")], name="escaping_agent", pip_requirements=["mlflow"])
    with served(workspace, info.model_uri, "escaping") as endpoint:
        yield endpoint


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def chat(**extra) -> dict:
    return {"messages": [{"role": "user", "content": QUESTION}], **extra}


def sse_events(lines) -> list[dict]:
    return [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]


def test_each_user_gets_their_own_answer_through_the_workspace(workspace, handbook):
    invocations = "/serving-endpoints/handbook/invocations"
    answers = {}
    for user in ("alice", "bob", "carol"):
        token = workspace.issue_token(user)
        before = len(workspace.audit())
        if user == "alice":  # databricks-sdk, as a client of the workspace would call it
            answers[user] = WorkspaceClient(host=workspace.url, token=token).api_client.do("POST", invocations, body=chat())
        else:
            response = httpx.post(f"{workspace.url}{invocations}", json=chat(), headers=bearer(token), timeout=120)
            assert response.status_code == 200, response.text
            answers[user] = response.json()
        direct = httpx.post(f"{handbook.url}/invocations", json=chat(), headers=bearer(token), timeout=120).json()
        assert answers[user]["messages"][-1]["content"] == direct["messages"][-1]["content"]
        assert answers[user]["custom_outputs"] == direct["custom_outputs"]
        records = workspace.audit()[before:]
        relayed = [r for r in records if r.path == invocations]
        assert [(r.principal, r.actor, r.status, r.decision) for r in relayed] == [(f"{user}@example.com", None, 200, "allow")]
        assert f"relayed to the agent at {handbook.url}" in relayed[0].reason and "CAN_QUERY" in relayed[0].reason
        # Behind the relayed call, the agent used the user's downscoped token: as them, via the agent.
        assert {r.principal for r in records if r.actor == "obo-agent"} == {f"{user}@example.com"}
    alice, bob, carol = (answers[u]["custom_outputs"] for u in ("alice", "bob", "carol"))
    assert alice["sources"] and alice["unavailable_tools"] == []
    assert bob == {"sources": [], "unavailable_tools": [{"name": "the company handbook", "reason": "permission_denied"}]}
    assert carol["sources"] and not any(s.endswith(("#5", "#17")) for s in carol["sources"])  # rows for hr are hidden from carol
    assert any(s.endswith("#5") for s in alice["sources"])


def test_a_streamed_answer_reassembles_to_the_whole_one(workspace, handbook):
    token = workspace.issue_token("carol")
    url = f"{workspace.url}/serving-endpoints/handbook/invocations"
    whole = httpx.post(url, json=chat(), headers=bearer(token), timeout=120).json()
    with httpx.stream("POST", url, json=chat(stream=True), headers=bearer(token), timeout=120) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        chunks = sse_events(response.iter_lines())
    assert len(chunks) > 1
    assert "".join(c["delta"]["content"] for c in chunks) == whole["messages"][-1]["content"]
    assert chunks[-1]["custom_outputs"] == whole["custom_outputs"]


def test_a_stream_is_relayed_as_it_is_produced(workspace, escaping, tmp_path):
    """The agent holds its stream after the first event until the test lets it go: that event
    arrives while the agent's request is still live, so the workspace buffered nothing."""
    report, hold = tmp_path / "smuggled.json", tmp_path / "hold"
    body = {"input": [{"role": "user", "content": "who am i"}], "stream": True, "custom_inputs": {"report_to": str(report), "hold_until": str(hold)}}
    try:
        with httpx.stream("POST", f"{workspace.url}/serving-endpoints/escaping/invocations", json=body, headers=bearer(workspace.issue_token("alice")), timeout=60) as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            invoker_token = json.loads(report.read_text())["invoker_token"]
            still_live = httpx.get(f"{workspace.url}{ME}", headers=bearer(invoker_token))
            hold.touch()
            rest = sse_events(lines)
    finally:
        hold.touch()
    assert still_live.status_code == 200 and still_live.json()["userName"] == "alice@example.com"
    assert [e["delta"] for e in sse_events([first]) + rest] == ["chunk 0", "chunk 1", "chunk 2"]
    assert httpx.get(f"{workspace.url}{ME}", headers=bearer(invoker_token)).status_code == 401  # the request has ended


def test_a_caller_leaving_mid_stream_ends_the_agents_request(workspace, escaping, tmp_path):
    report, hold = tmp_path / "smuggled.json", tmp_path / "hold"
    body = {"input": [{"role": "user", "content": "hi"}], "stream": True, "custom_inputs": {"report_to": str(report), "hold_until": str(hold)}}
    try:
        with httpx.stream("POST", f"{workspace.url}/serving-endpoints/escaping/invocations", json=body, headers=bearer(workspace.issue_token("bob")), timeout=60) as response:
            assert next(response.iter_lines()).startswith("data: ")  # the first event; the agent now waits
        invoker_token = json.loads(report.read_text())["invoker_token"]
        # The agent holds for 30 s: only the caller's leaving, passed on by the workspace, ends it sooner.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and httpx.get(f"{workspace.url}{ME}", headers=bearer(invoker_token)).status_code == 200:
            time.sleep(0.05)
        refused = httpx.get(f"{workspace.url}{ME}", headers=bearer(invoker_token))
        assert refused.status_code == 401 and "revoked" in refused.json()["message"]
    finally:
        hold.touch()


def test_re_registering_moves_the_endpoint_to_its_new_url(workspace, escaping):
    register(workspace, "moved", "http://127.0.0.1:9")  # the discard port: nothing serves there
    body = {"input": [{"role": "user", "content": "who am i"}]}
    token = workspace.issue_token("carol")
    gone = httpx.post(f"{workspace.url}/serving-endpoints/moved/invocations", json=body, headers=bearer(token))
    assert gone.status_code == 503 and "http://127.0.0.1:9" in gone.json()["message"]
    register(workspace, "moved", escaping.url)
    moved = httpx.post(f"{workspace.url}/serving-endpoints/moved/invocations", json=body, headers=bearer(token), timeout=60)
    assert moved.status_code == 200 and moved.json()["output"][0]["content"][0]["text"] == "carol@example.com"


# -- refused before the agent is reached, and agents nothing serves ----------------------------------
@pytest.fixture(scope="module")
def restricted():
    """An agent endpoint only alice may query, registered at a port nothing listens on: a caller
    who gets past the workspace's checks gets 503, so any other answer came from the checks."""
    seed = load_seed().model_dump()
    seed["serving_endpoints"] += [{"name": "restricted", "kind": "agent"}, {"name": "unserved", "kind": "agent"}]
    seed["grants"] += [
        {"principal": "alice@example.com", "privilege": "CAN_QUERY", "on": {"serving_endpoint": "restricted"}},
        {"principal": "users", "privilege": "CAN_QUERY", "on": {"serving_endpoint": "unserved"}},
    ]
    with LocalWorkspace(seed) as ws:
        register(ws, "restricted", "http://127.0.0.1:9")
        yield ws


def ask_restricted(ws, headers: dict, name: str = "restricted") -> httpx.Response:
    return httpx.post(f"{ws.url}/serving-endpoints/{name}/invocations", json=chat(), headers=headers)


def test_callers_are_authenticated_and_checked_before_the_agent(restricted):
    ws = restricted
    cases = {
        "no token": ({}, 401, "UNAUTHENTICATED", None),
        "bob, without CAN_QUERY": (bearer(ws.issue_token("bob")), 403, "PERMISSION_DENIED", "bob@example.com"),
        "alice, without the serving scope": (bearer(ws.issue_token("alice", scopes=["vector-search"])), 403, "PERMISSION_DENIED", "alice@example.com"),
        "alice": (bearer(ws.issue_token("alice")), 503, "TEMPORARILY_UNAVAILABLE", "alice@example.com"),
    }
    for case, (headers, status, error_code, principal) in cases.items():
        response = ask_restricted(ws, headers)
        assert (response.status_code, response.json()["error_code"]) == (status, error_code), case
        record = ws.audit()[-1]
        assert (record.principal, record.status, record.path) == (principal, status, "/serving-endpoints/restricted/invocations"), case
    assert "CAN_QUERY" in ask_restricted(ws, bearer(ws.issue_token("bob"))).json()["message"]


def test_an_agent_nobody_serves_answers_503_saying_how_to_serve_it(restricted):
    stopped = ask_restricted(restricted, bearer(restricted.issue_token("alice"))).json()
    assert "'restricted'" in stopped["message"] and "its serving has stopped" in stopped["message"]
    unserved = ask_restricted(restricted, bearer(restricted.issue_token("alice")), "unserved")
    assert unserved.status_code == 503 and unserved.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert "'unserved'" in unserved.json()["message"] and "is an agent that nothing serves" in unserved.json()["message"]
    for message in (stopped["message"], unserved.json()["message"]):
        assert f"obo-auth serve MODEL_URI --workspace {restricted.url} --endpoint " in message


# -- where the relay sends callers' tokens: the registered agent, and nowhere else ---------------------
class FakeAgent:
    """A stand-in agent on loopback that answers every ``POST /invocations`` with who asked."""

    def __init__(self):
        self.seen: list[str] = []
        agent = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers.get("content-length", 0)))
                agent.seen.append(f"{self.path} {self.headers.get('authorization')}")
                payload = json.dumps({"messages": [{"role": "assistant", "content": "hi"}]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakeProxy:
    """A socket that only records who connects to it (and what they send), answering nothing."""

    def __init__(self):
        self.received: list[bytes] = []
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                connection, _ = self.socket.accept()
            except (TimeoutError, OSError):
                continue
            with connection:
                connection.settimeout(1)
                try:
                    self.received.append(connection.recv(65536) or b"(connected)")
                except OSError:
                    self.received.append(b"(connected)")

    def close(self):
        self.stopped.set()
        self.thread.join(timeout=5)
        self.socket.close()


@pytest.fixture
def fake_agent():
    agent = FakeAgent()
    yield agent
    agent.close()


@pytest.fixture
def caller():
    """The test's own client: never through a proxy, whatever the environment says."""
    with httpx.Client(trust_env=False, timeout=30) as client:
        yield client


def test_the_relay_ignores_proxy_variables(workspace, fake_agent, caller, monkeypatch):
    proxy = FakeProxy()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        register(workspace, "proxied", fake_agent.url)
        token = workspace.issue_token("carol")
        response = caller.post(f"{workspace.url}/serving-endpoints/proxied/invocations", json=chat(), headers=bearer(token))
        assert response.status_code == 200, response.text
        assert fake_agent.seen == [f"/invocations Bearer {token}"]
    finally:
        proxy.close()
    assert proxy.received == []  # not the caller's token, not even a connection


@pytest.mark.parametrize("error", [httpx.InvalidURL("Invalid port: '99999'"), ValueError("something else")])
def test_any_error_before_the_agent_answers_is_a_503(workspace, fake_agent, caller, monkeypatch, error):
    register(workspace, "unreachable", fake_agent.url)

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(httpx.AsyncClient, "build_request", failing)  # only the relay's client is async
    response = caller.post(f"{workspace.url}/serving-endpoints/unreachable/invocations", json=chat(), headers=bearer(workspace.issue_token("alice")))
    assert response.status_code == 503, response.text
    assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert f"cannot reach its agent at {fake_agent.url} ({type(error).__name__})" in response.json()["message"]
    assert str(error) not in response.json()["message"]
    assert fake_agent.seen == []


def test_an_agent_registered_with_no_url_is_never_relayed_to_again(workspace, fake_agent, caller):
    """What serving does when it stops: its port may be anyone's next."""
    register(workspace, "stopped", fake_agent.url)
    url = f"{workspace.url}/serving-endpoints/stopped/invocations"
    token = workspace.issue_token("bob")
    assert caller.post(url, json=chat(), headers=bearer(token)).status_code == 200
    register(workspace, "stopped", None)
    response = caller.post(url, json=chat(), headers=bearer(token))
    assert (response.status_code, response.json()["error_code"]) == (503, "TEMPORARILY_UNAVAILABLE")
    assert "'stopped' is an agent that nothing serves" in response.json()["message"]
    assert f"obo-auth serve MODEL_URI --workspace {workspace.url} --endpoint stopped" in response.json()["message"]
    assert len(fake_agent.seen) == 1  # only the first call reached it
    record = workspace.audit()[-1]
    assert (record.principal, record.path, record.status) == ("bob@example.com", "/serving-endpoints/stopped/invocations", 503)
