"""Local OBO serving end to end: a logged agent served in its own process, called over real HTTP.

Three users, streaming and not, concurrent requests, a failing stream, refused callers,
and the tokens local serving hands the agent. Sibling: test_example_agent.py (the agent's logic).
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import mlflow
import pytest

import obo_auth
from obo_auth.local import LocalWorkspace
from obo_auth.local.seed import load_seed
from obo_auth.serving import serve

ROOT = Path(__file__).resolve().parents[1]
AGENTS = Path(__file__).resolve().parent / "agents"
QUESTION = "How does parental leave pay work?"
USERS = ("alice", "bob", "carol")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An MLflow store both this process (logging) and the serving process (loading) use."""
    root = tmp_path_factory.mktemp("serving-store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_RECORD_ENV_VARS_IN_MODEL_LOGGING", "false")
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(experiment_id=mlflow.create_experiment("local-serving", artifact_location=str(root / "artifacts")))
        yield root
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def example(store):
    sys.path.insert(0, str(ROOT))
    try:
        from examples import handbook_agent
    finally:
        sys.path.remove(str(ROOT))
    return handbook_agent


@contextmanager
def logging_as_alice(workspace):
    """mlflow runs an agent's predict once while logging it: as alice, with the agent's identity at hand."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in workspace.environment_for("obo-agent").items():
            patch.setenv(name, value)
        with obo_auth.as_user(workspace.issue_token("alice"), host=workspace.url):
            yield


@pytest.fixture(scope="module")
def logged_chat_agent(workspace, example):
    with logging_as_alice(workspace):
        return example.log(example.CHAT_AGENT)


def _log_test_agent(workspace, path: Path, resources):
    with logging_as_alice(workspace):
        return obo_auth.log_model(str(path), resources=resources, name=path.stem, pip_requirements=["mlflow"])


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


def test_users_without_can_query_on_the_agent_endpoint_are_refused(workspace, store):
    seed = load_seed().model_dump()
    seed["serving_endpoints"].append({"name": "agent", "kind": "agent"})
    seed["grants"].append({"principal": "alice@example.com", "privilege": "CAN_QUERY", "on": {"serving_endpoint": "agent"}})
    info = _log_test_agent(workspace, AGENTS / "failing_stream_agent.py", [obo_auth.ServingEndpoint("chat-model")])
    with LocalWorkspace(seed) as ws, serve(info.model_uri, ws) as endpoint:
        assert ask(endpoint, ws.issue_token("alice"), {"input": [{"role": "user", "content": "hi"}]}).status_code == 200
        refused = ask(endpoint, ws.issue_token("bob"), {"input": [{"role": "user", "content": "hi"}]})
        assert refused.status_code == 403
        assert "CAN_QUERY" in refused.json()["message"] and "agent" in refused.json()["message"]


def test_a_stream_error_arrives_under_databricks_output_error_without_the_token(workspace, store, mocker):
    info = _log_test_agent(workspace, AGENTS / "failing_stream_agent.py", [obo_auth.ServingEndpoint("chat-model")])
    issued = mocker.spy(workspace.state.identity, "issue")
    with serve(info.model_uri, workspace) as endpoint:
        response = ask(endpoint, workspace.issue_token("carol"), {"input": [{"role": "user", "content": "hi"}], "stream": True})
    events = sse_events(response)
    assert events[0]["delta"] == "partial"
    error = events[-1]["databricks_output"]["error"]
    assert error["error_code"] == "INTERNAL_ERROR" and "the tool broke" in error["message"]
    tokens = issued.spy_return_list
    assert tokens and not any(token in response.text for token in tokens)


def test_an_unmodified_agent_is_served_one_request_at_a_time(workspace, store):
    info = _log_test_agent(workspace, AGENTS / "unmodified_agent.py", [obo_auth.ServingEndpoint("chat-model")])
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


def test_the_agent_is_registered_as_a_serving_endpoint_every_user_may_query(workspace, chat_endpoint):
    from databricks.sdk import WorkspaceClient

    for user in USERS:
        endpoint = WorkspaceClient(host=workspace.url, token=workspace.issue_token(user)).serving_endpoints.get("agent")
        assert (endpoint.name, endpoint.task) == ("agent", "agent/v1/chat")
