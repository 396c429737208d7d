"""Local OBO serving end to end: a logged agent served in its own process, called over real HTTP.

Three users, streaming and not, concurrent requests, a failing stream, refused callers,
and the tokens local serving hands the agent: revoked when their request ends, the agent's
own credential revoked and removed when serving stops, none of the developer's credentials
in the model process. Siblings: test_example_agent.py (the agent's logic);
test_serving_agent_credential.py, test_serving_environment.py and test_serving_scrub.py
(the same mechanisms in-process).
"""

from __future__ import annotations

import json
import os
import socket
import time
from urllib.parse import urlsplit
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import mlflow
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import Unauthenticated

import obo_auth
from obo_auth.local import LocalWorkspace
from obo_auth.local.seed import load_seed
from obo_auth.redact import fingerprint
from obo_auth.serving import ServingFailed, serve
from obo_auth.serving.agent_credential import AGENT_TOKEN_TTL_SECONDS
from obo_auth.serving.revocation import REQUEST_ENDED, SERVING_STOPPED

AGENTS = Path(__file__).resolve().parent / "agents"
QUESTION = "How does parental leave pay work?"
USERS = ("alice", "bob", "carol")


@pytest.fixture(scope="module")
def store(tmp_path_factory, own_mlflow_store):
    """An MLflow store both this process (logging) and the serving process (loading) use."""
    root = tmp_path_factory.mktemp("serving-store")
    with own_mlflow_store(root, "local-serving"):
        yield root


@pytest.fixture(scope="module")
def logged_chat_agent(workspace, store, handbook_example, logging_as_alice):
    with logging_as_alice(workspace):
        return handbook_example.log(handbook_example.CHAT_AGENT)


@pytest.fixture(scope="session")
def log_test_agent(logging_as_alice):
    """``log_test_agent(ws, path, resources)``: logs one of tests/agents/."""

    def log(workspace, path: Path, resources):
        with logging_as_alice(workspace):
            return obo_auth.log_model(str(path), resources=resources, name=path.stem, pip_requirements=["mlflow"])

    return log


@pytest.fixture(scope="module")
def chat_endpoint(workspace, logged_chat_agent):
    with serve(logged_chat_agent.model_uri, workspace) as endpoint:
        yield endpoint


def ask(endpoint, token: str | None, body: dict) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{endpoint.url}/invocations", json=body, headers=headers, timeout=120)


def chat(question: str = QUESTION, **extra) -> dict:
    return {"messages": [{"role": "user", "content": question}], **extra}


def sse_events(response: httpx.Response) -> list[dict]:
    return [json.loads(line[len("data: ") :]) for line in response.text.splitlines() if line.startswith("data: ")]


def test_three_users_get_what_their_grants_allow(workspace, chat_endpoint):
    answers = {}
    for user in USERS:
        response = ask(chat_endpoint, workspace.issue_token(user), chat())
        assert response.status_code == 200, response.text
        answers[user] = response.json()
    alice, bob, carol = (answers[u]["custom_outputs"] for u in USERS)
    assert "https://handbook.example.com/parental-leave-hr-procedure#5" in alice["sources"] or any("#5" in s for s in alice["sources"])
    assert alice["unavailable_tools"] == [] and carol["unavailable_tools"] == []
    assert bob == {"sources": [], "unavailable_tools": [{"name": "the company handbook", "reason": "permission_denied"}]}
    assert "could not use: the company handbook" in answers["bob"]["messages"][-1]["content"]
    assert not any("#5" in s or "#17" in s for s in carol["sources"])  # rows with audience hr are hidden from carol
    assert set(carol["sources"]) < set(alice["sources"]) or len(carol["sources"]) <= len(alice["sources"])


def test_streaming_reassembles_to_the_same_answer(workspace, chat_endpoint):
    token = workspace.issue_token("carol")
    whole = ask(chat_endpoint, token, chat()).json()
    streamed = ask(chat_endpoint, token, chat(stream=True))
    assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/event-stream")
    chunks = sse_events(streamed)
    assert len(chunks) > 1
    assert "".join(c["delta"]["content"] for c in chunks) == whole["messages"][-1]["content"]
    assert chunks[-1]["custom_outputs"] == whole["custom_outputs"]


def test_invoker_token_is_downscoped_to_the_logged_scopes(workspace, chat_endpoint, logged_chat_agent):
    logged = mlflow.models.Model.load(logged_chat_agent.model_uri).auth_policy["user_auth_policy"]["api_scopes"]
    before = len(workspace.audit())
    ask(chat_endpoint, workspace.issue_token("alice"), chat())
    on_behalf = [r for r in workspace.audit()[before:] if r.actor == "obo-agent"]
    assert on_behalf and {r.principal for r in on_behalf} == {"alice@example.com"}
    assert {r.scopes for r in on_behalf} == {tuple(sorted(logged))}
    agent_calls = [r for r in workspace.audit()[before:] if r.principal == "obo-agent"]
    assert agent_calls and {r.resource for r in agent_calls} == {"serving_endpoint:chat-model"}


def test_concurrent_requests_never_leak_across_users(workspace, chat_endpoint):
    tokens = {u: workspace.issue_token(u) for u in USERS}
    plan = [USERS[i % 3] for i in range(24)]
    before = len(workspace.audit())
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda u: (u, ask(chat_endpoint, tokens[u], chat()).json()["custom_outputs"]), plan))
    for user, outputs in results:
        if user == "bob":
            assert outputs["sources"] == [] and outputs["unavailable_tools"][0]["reason"] == "permission_denied"
        elif user == "carol":
            assert outputs["sources"] and not any("#5" in s or "#17" in s for s in outputs["sources"])
        else:
            assert any("#5" in s for s in outputs["sources"])
    index_reads = [r for r in workspace.audit()[before:] if r.resource == "index:main.docs.handbook_index"]
    assert {r.principal for r in index_reads if r.decision == "allow"} == {"alice@example.com", "carol@example.com"}
    assert {r.principal for r in index_reads if r.decision == "deny"} == {"bob@example.com"}


def test_unauthenticated_callers_are_refused(workspace, chat_endpoint):
    revoked = workspace.issue_token("alice")
    workspace.revoke(revoked)
    for token in (None, "dapi-not-a-real-token", revoked):
        response = ask(chat_endpoint, token, chat())
        assert response.status_code == 401
        assert response.json()["error_code"] == "UNAUTHENTICATED"


def test_a_caller_token_without_the_serving_scope_is_refused(workspace, chat_endpoint):
    token = workspace.issue_token("alice", scopes=["vectorsearch.vector-search-indexes"])
    refused = ask(chat_endpoint, token, chat())
    assert refused.status_code == 403
    assert "Invalid scope" in refused.json()["message"] and "serving.serving-endpoints" in refused.json()["message"]
    assert ask(chat_endpoint, workspace.issue_token("alice", scopes=["serving.serving-endpoints"]), chat()).status_code == 200


def test_malformed_requests_get_a_400(workspace, chat_endpoint):
    token = workspace.issue_token("alice")
    response = httpx.post(f"{chat_endpoint.url}/invocations", content=b"{not json", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400 and "JSON" in response.json()["message"]
    response = ask(chat_endpoint, token, {"messages": "not a list"})
    assert 400 <= response.status_code < 500 and response.json()["message"]


def test_users_without_can_query_on_the_agent_endpoint_are_refused(workspace, store, log_test_agent):
    seed = load_seed().model_dump()
    seed["serving_endpoints"].append({"name": "agent", "kind": "agent"})
    seed["grants"].append({"principal": "alice@example.com", "privilege": "CAN_QUERY", "on": {"serving_endpoint": "agent"}})
    info = log_test_agent(workspace, AGENTS / "failing_stream_agent.py", [obo_auth.ServingEndpoint("chat-model")])
    with LocalWorkspace(seed) as ws, serve(info.model_uri, ws) as endpoint:
        assert ask(endpoint, ws.issue_token("alice"), {"input": [{"role": "user", "content": "hi"}]}).status_code == 200
        refused = ask(endpoint, ws.issue_token("bob"), {"input": [{"role": "user", "content": "hi"}]})
        assert refused.status_code == 403
        assert "CAN_QUERY" in refused.json()["message"] and "agent" in refused.json()["message"]


def test_a_stream_error_arrives_under_databricks_output_error_without_the_token(workspace, store, mocker, log_test_agent):
    info = log_test_agent(workspace, AGENTS / "failing_stream_agent.py", [obo_auth.ServingEndpoint("chat-model")])
    issued = mocker.spy(workspace.state.identity, "issue")
    with serve(info.model_uri, workspace) as endpoint:
        response = ask(endpoint, workspace.issue_token("carol"), {"input": [{"role": "user", "content": "hi"}], "stream": True})
    events = sse_events(response)
    assert events[0]["delta"] == "partial"
    error = events[-1]["databricks_output"]["error"]
    assert error["error_code"] == "INTERNAL_ERROR" and "the tool broke" in error["message"]
    tokens = issued.spy_return_list
    assert tokens and not any(token in response.text for token in tokens)


def test_an_unmodified_agent_is_served_one_request_at_a_time(workspace, store, log_test_agent):
    info = log_test_agent(workspace, AGENTS / "unmodified_agent.py", [obo_auth.ServingEndpoint("chat-model")])
    tokens = {u: workspace.issue_token(u) for u in USERS}
    with serve(info.model_uri, workspace) as endpoint:
        plan = [USERS[i % 3] for i in range(9)]
        with ThreadPoolExecutor(max_workers=9) as pool:
            answers = list(pool.map(lambda u: ask(endpoint, tokens[u], {"input": [{"role": "user", "content": "who am i"}]}).json(), plan))
    assert [a["output"][0]["content"][0]["text"] for a in answers] == [f"{u}@example.com" for u in plan]


def test_no_token_reaches_traces(workspace, chat_endpoint, store, mocker):
    issued = mocker.spy(workspace.state.identity, "issue")
    for user in USERS:
        ask(chat_endpoint, workspace.issue_token(user), chat())
    tokens = issued.spy_return_list
    assert len(tokens) >= 6  # the users' own tokens and the downscoped ones serving minted
    stored = b"".join(p.read_bytes() for p in Path(store).rglob("*") if p.is_file())
    assert stored  # the store holds the logged model and the traces
    assert not any(token.encode() in stored for token in tokens)


def test_the_agent_is_registered_as_a_serving_endpoint_every_user_may_query(workspace, logged_chat_agent):
    from databricks.sdk import WorkspaceClient

    # An endpoint of its own: other tests serve other agents as "agent", and stop them.
    with serve(logged_chat_agent.model_uri, workspace, "registered-agent"):
        for user in USERS:
            endpoint = WorkspaceClient(host=workspace.url, token=workspace.issue_token(user)).serving_endpoints.get("registered-agent")
            assert (endpoint.name, endpoint.task) == ("registered-agent", "agent/v2/chat")  # a ChatAgent, as mlflow records its task


# -- what escapes a request: the escaping agent (tests/agents/escaping_agent.py) ---------------
# The developer's own login and other credentials, as their shell would hold them.
DEVELOPER_ENVIRONMENT = {
    "DATABRICKS_HOST": "https://developer.cloud.databricks.com",
    "DATABRICKS_TOKEN": "dapi" + "de7e10be4" * 3 + "00000",
    "ARM_CLIENT_SECRET": "arm-secret-of-the-developer",
    "GOOGLE_APPLICATION_CREDENTIALS": "/home/developer/gcp-key.json",
    "MLFLOW_TRACKING_TOKEN": "mlflow-token-of-the-developer",
}


@pytest.fixture(scope="module")
def escaping_agent(workspace, store, log_test_agent):
    return log_test_agent(workspace, AGENTS / "escaping_agent.py", [obo_auth.ServingEndpoint("chat-model")])


@pytest.fixture(scope="module")
def escaping_endpoint(workspace, escaping_agent):
    """The escaping agent, served from a shell that holds the developer's credentials."""
    with ExitStack() as stack:
        with pytest.MonkeyPatch.context() as patch:  # only while serving starts: the SDK here must not see them
            for name, value in DEVELOPER_ENVIRONMENT.items():
                patch.setenv(name, value)
            endpoint = stack.enter_context(serve(escaping_agent.model_uri, workspace, "escaping"))
        yield endpoint


def escape(endpoint, token: str, report: Path, *, stream: bool = False, **inputs) -> tuple[httpx.Response, dict]:
    """Asks the escaping agent, which writes what it held during the request to ``report``."""
    body = {"input": [{"role": "user", "content": "who am i"}], "stream": stream, "custom_inputs": {"report_to": str(report), **inputs}}
    response = ask(endpoint, token, body)
    return response, json.loads(report.read_text())


def assert_refused_because(workspace, token: str, reason: str, principal: str) -> None:
    """The workspace answers ``token`` with 401 naming ``reason``, and its audit record says so."""
    with pytest.raises(Unauthenticated, match=reason):
        WorkspaceClient(host=workspace.url, token=token).current_user.me()
    record = workspace.audit()[-1]
    assert (record.status, record.principal, record.token_fingerprint) == (401, principal, fingerprint(token))
    assert reason in record.reason


def test_a_token_smuggled_out_of_a_request_is_refused_after_it_with_the_reason(workspace, escaping_endpoint, tmp_path):
    response, escaped = escape(escaping_endpoint, workspace.issue_token("alice"), tmp_path / "smuggled.json")
    assert response.status_code == 200, response.text  # revoking it did not break the request
    assert response.json()["output"][0]["content"][0]["text"] == "alice@example.com"
    assert_refused_because(workspace, escaped["invoker_token"], REQUEST_ENDED, "alice@example.com")
    revocation = next(r for r in reversed(workspace.audit()) if r.path.endswith("/tokens/revoke"))
    assert (revocation.principal, revocation.resource) == ("workspace-admin", "user:alice@example.com")
    assert REQUEST_ENDED in revocation.reason


@pytest.mark.parametrize("fail", [False, True], ids=["exhausted", "errored"])
def test_a_stream_token_is_refused_once_the_stream_has_ended(workspace, escaping_endpoint, tmp_path, fail):
    response, escaped = escape(escaping_endpoint, workspace.issue_token("carol"), tmp_path / "smuggled.json", stream=True, fail=fail)
    events = sse_events(response)
    if fail:
        assert events[0]["delta"] == "chunk 0" and "the tool broke" in events[-1]["databricks_output"]["error"]["message"]
    else:
        assert [e["delta"] for e in events] == ["chunk 0", "chunk 1", "chunk 2"]
    assert_refused_because(workspace, escaped["invoker_token"], REQUEST_ENDED, "carol@example.com")


def test_a_stream_token_is_revoked_as_soon_as_the_client_goes_away(workspace, escaping_endpoint, tmp_path):
    report, hold = tmp_path / "smuggled.json", tmp_path / "hold"
    body = {"input": [{"role": "user", "content": "hi"}], "stream": True, "custom_inputs": {"report_to": str(report), "hold_until": str(hold)}}
    headers = {"Authorization": f"Bearer {workspace.issue_token('alice')}"}
    with httpx.stream("POST", f"{escaping_endpoint.url}/invocations", json=body, headers=headers, timeout=60) as response:
        assert next(response.iter_lines()).startswith("data: ")  # the first chunk; the agent now waits
    escaped = json.loads(report.read_text())["invoker_token"]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the agent still waits: only the client's leaving can end it
            if httpx.get(f"{workspace.url}/api/2.0/preview/scim/v2/Me", headers={"Authorization": f"Bearer {escaped}"}).status_code == 401:
                break
            time.sleep(0.05)
        assert_refused_because(workspace, escaped, REQUEST_ENDED, "alice@example.com")
    finally:
        hold.touch()


def test_every_token_serving_mints_is_revoked_by_the_time_its_answer_arrives(workspace, escaping_endpoint, tmp_path, mocker):
    issued = mocker.spy(workspace.state.identity, "issue")
    token = workspace.issue_token("carol")
    hi = {"input": [{"role": "user", "content": "hi"}]}
    answers = [
        ask(escaping_endpoint, token, hi),
        ask(escaping_endpoint, token, {**hi, "custom_inputs": {"fail": True}}),
        ask(escaping_endpoint, token, {**hi, "stream": True}),
        ask(escaping_endpoint, token, {**hi, "stream": True, "custom_inputs": {"fail": True}}),
        httpx.post(f"{escaping_endpoint.url}/invocations", content=b"{not json", headers={"Authorization": f"Bearer {token}"}),
    ]
    assert [a.status_code for a in answers] == [200, 500, 200, 200, 400]
    minted = [t for t in issued.spy_return_list if workspace.state.identity.lookup(t).actor is not None]
    assert len(minted) == len(answers)
    assert [workspace.state.identity.lookup(t).revoked_because for t in minted] == [REQUEST_ENDED] * len(answers)


def _request_tokens_minted(workspace, issued) -> list[str]:
    return [t for t in issued.spy_return_list if workspace.state.identity.lookup(t).actor is not None]


def _wait_until(condition, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_client_that_leaves_during_the_body_leaves_no_token_unrevoked(workspace, escaping_endpoint, mocker):
    issued = mocker.spy(workspace.state.identity, "issue")
    url = urlsplit(escaping_endpoint.url)
    token = workspace.issue_token("alice")
    with socket.create_connection((url.hostname, url.port)) as raw:
        raw.sendall(
            f"POST /invocations HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"in".encode()
        )
        assert _wait_until(lambda: _request_tokens_minted(workspace, issued))  # authorized, then waiting for the body
    minted = _request_tokens_minted(workspace, issued)
    assert _wait_until(lambda: workspace.state.identity.lookup(minted[0]).revoked_because == REQUEST_ENDED)


def test_stopping_serving_revokes_the_tokens_of_requests_still_in_flight(workspace, escaping_agent, tmp_path):
    """A prediction still running when serving stops outlives the server: its token is revoked anyway."""
    report, hold = tmp_path / "smuggled.json", tmp_path / "hold"
    body = {"input": [{"role": "user", "content": "hi"}], "custom_inputs": {"report_to": str(report), "hold_until": str(hold)}}
    with ThreadPoolExecutor(1) as pool, serve(escaping_agent.model_uri, workspace, "escaping-stopped") as endpoint:
        pool.submit(ask, endpoint, workspace.issue_token("bob"), body)  # fails when the server goes; never read
        assert _wait_until(report.exists)  # the agent now waits, past any graceful shutdown
    escaped = json.loads(report.read_text())["invoker_token"]
    assert workspace.state.identity.lookup(escaped).revoked_because == REQUEST_ENDED


def test_an_error_never_shows_the_agents_own_credential_even_glued_to_other_letters(workspace, escaping_endpoint, tmp_path):
    response, escaped = escape(escaping_endpoint, workspace.issue_token("alice"), tmp_path / "smuggled.json", fail=True)
    message = response.json()["message"]
    assert response.status_code == 500 and "the tool broke" in message
    for token in (escaped["agent_token"], escaped["invoker_token"]):
        assert token not in response.text and fingerprint(token) in message


def test_the_model_process_starts_without_the_developers_credentials_or_the_admin_credential(workspace, escaping_endpoint, tmp_path):
    _, escaped = escape(escaping_endpoint, workspace.issue_token("alice"), tmp_path / "smuggled.json")
    started_with = dict(entry.split("=", 1) for entry in escaped["environ"] if "=" in entry)
    assert not [name for name in started_with if name.startswith(("DATABRICKS_", "ARM_", "GOOGLE_", "OBO_AUTH_"))]
    assert "MLFLOW_TRACKING_TOKEN" not in started_with
    for secret in (workspace.state.admin_token, *DEVELOPER_ENVIRONMENT.values()):
        assert not any(secret in entry for entry in escaped["environ"])
    # What it needs is still there: where the model and its traces are, and the programs it runs.
    assert started_with["MLFLOW_TRACKING_URI"] == os.environ["MLFLOW_TRACKING_URI"] and started_with["PATH"] == os.environ["PATH"]


def test_stopping_serving_revokes_the_agents_credential_and_removes_its_directory(workspace, escaping_agent, tmp_path):
    with serve(escaping_agent.model_uri, workspace, "stopping") as endpoint:  # stops it with SIGTERM
        response, escaped = escape(endpoint, workspace.issue_token("bob"), tmp_path / "smuggled.json")
        assert response.status_code == 200, response.text
        credentials = Path(escaped["credentials_dir"])
        assert credentials.is_dir()
        expires_at = workspace.state.identity.lookup(escaped["agent_token"]).expires_at
        assert expires_at is not None and expires_at <= time.time() + AGENT_TOKEN_TTL_SECONDS
    assert not credentials.exists()
    assert_refused_because(workspace, escaped["agent_token"], SERVING_STOPPED, "obo-agent")


def test_the_workspace_relays_its_endpoint_invocations_to_local_serving(workspace, escaping_endpoint):
    assert escaping_endpoint.workspace_url == workspace.url
    relayed = httpx.post(
        f"{workspace.url}/serving-endpoints/{escaping_endpoint.endpoint}/invocations",
        json={"input": [{"role": "user", "content": "who am i"}]},
        headers={"Authorization": f"Bearer {workspace.issue_token('carol')}"},
        timeout=120,
    )
    assert relayed.status_code == 200, relayed.text
    assert relayed.json()["output"][0]["content"][0]["text"] == "carol@example.com"


def test_serving_loads_the_model_from_the_store_set_in_this_process(workspace, escaping_agent, tmp_path, monkeypatch):
    """The store set with mlflow.set_tracking_uri (as obo_auth.log_model sets its default) is not in
    the environment the model process inherits: serving passes it on."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'another-store.db'}")
    with serve(escaping_agent.model_uri, workspace, "store-in-process") as endpoint:
        response, escaped = escape(endpoint, workspace.issue_token("alice"), tmp_path / "smuggled.json")
    assert response.status_code == 200, response.text
    assert f"MLFLOW_TRACKING_URI={mlflow.get_tracking_uri()}" in escaped["environ"]


def test_a_model_not_in_the_store_is_refused_naming_the_store(workspace, store):
    missing = "models:/m-00000000000000000000000000000000"
    with pytest.raises(ServingFailed) as failed, serve(missing, workspace, "missing"):
        pass
    assert str(failed.value) == (
        f"no model {missing} in the MLflow store {mlflow.get_tracking_uri()} (set MLFLOW_TRACKING_URI, or log it with obo_auth.log_model)"
    )


def test_serving_against_a_workspace_nobody_answers_for_says_so(store):
    from obo_auth.serving.workspace_link import WorkspaceAccess

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(ServingFailed) as failed, serve("models:/m-anything", WorkspaceAccess(nowhere, "dapi-any")):
        pass
    assert str(failed.value) == f"no local workspace answers at {nowhere}: start one with `obo-auth workspace`, or pass the URL of one that runs"


def test_a_restarted_workspace_gets_callers_a_503_not_a_401_for_their_valid_token(escaping_agent, capfd):
    """The serving process's admin credential died with the workspace it came from; the caller's
    token, issued by the workspace now on that URL, is valid: the caller is not told otherwise."""
    first = LocalWorkspace().__enter__()
    url = first.url
    try:
        with serve(escaping_agent.model_uri, first, "restarted", show_output=True) as endpoint:
            hi = {"input": [{"role": "user", "content": "who am i"}]}
            assert ask(endpoint, first.issue_token("alice"), hi).status_code == 200
            first.__exit__(None, None, None)
            with LocalWorkspace(port=int(url.rsplit(":", 1)[1])) as second:
                answers = [ask(endpoint, second.issue_token(user), hi) for user in ("alice", "bob")]
    finally:
        first.__exit__(None, None, None)  # stopping it again does nothing
    for answer in answers:
        assert answer.status_code == 503
        assert answer.json() == {
            "error_code": "TEMPORARILY_UNAVAILABLE",
            "message": f"the local workspace at {url} no longer accepts this serving process's credential "
            "(was it restarted?); restart obo-auth serve",
        }
    logged = [line for line in capfd.readouterr().err.splitlines() if "no longer accepts" in line]
    assert len(logged) == 1 and "Traceback" not in logged[0]


def test_once_serving_stops_the_workspace_relays_nothing_to_its_freed_port(workspace, escaping_agent):
    """Whatever listens on the port next must never receive callers' tokens."""
    with serve(escaping_agent.model_uri, workspace, "stops-and-frees") as endpoint:
        pass
    freed = urlsplit(endpoint.url).port
    relayed = httpx.post(
        f"{workspace.url}/serving-endpoints/stops-and-frees/invocations",
        json={"input": [{"role": "user", "content": "who am i"}]},
        headers={"Authorization": f"Bearer {workspace.issue_token('carol')}"},
        timeout=30,
    )
    assert relayed.status_code == 503 and relayed.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert str(freed) not in relayed.json()["message"]  # no URL is registered any more
