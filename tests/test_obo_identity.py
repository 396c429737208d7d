"""Identity per request: the decorator, the request context, user and system clients.

Against the local workspace over real HTTP; the serving runtime's token slot and the
``mlflowserving`` module are in-process seams (pytest-mock). The tests that take ``runtime``
(conftest.py) run on Model Serving and on Databricks Apps; those about one of Model
Serving's token sources, or about a decorated stream opening its own request (which it
does not on Apps), do not. Concurrency lives in test_obo_concurrency.py; tools acting as the
user in test_obo_tools.py.
"""

from __future__ import annotations

import sys
import types

import pytest
from databricks.sdk import WorkspaceClient

import obo_auth
from obo_auth import NoInvokerError, OutsideRequestError, RequestEndedError


@obo_auth.on_behalf_of_user
def whoami() -> str:
    return obo_auth.current_request().user_client.current_user.me().user_name


@obo_auth.on_behalf_of_user
def keep_user_client() -> WorkspaceClient:
    return obo_auth.current_request().user_client


def test_user_client_acts_as_the_invoker(runtime, workspace, invoker_token):
    for user in ("alice", "bob", "carol"):
        with runtime.user(invoker_token(workspace, user), workspace.url):
            assert whoami() == f"{user}@example.com"
    record = workspace.audit()[-1]
    assert (record.principal, record.actor, record.path) == ("carol@example.com", "obo-agent", "/api/2.0/preview/scim/v2/Me")


def test_current_request_outside_a_decorated_call_says_how_to_fix_it():
    with pytest.raises(OutsideRequestError, match="on_behalf_of_user"):
        obo_auth.current_request()


def test_a_kept_user_client_acts_for_the_request_it_is_used_in_and_sends_nothing_outside_one(runtime, workspace, invoker_token):
    with runtime.user(invoker_token(workspace, "alice"), workspace.url):
        kept = keep_user_client()
    before = len(workspace.audit())
    with runtime.user(invoker_token(workspace, "bob"), workspace.url):
        assert obo_auth.on_behalf_of_user(lambda: kept.current_user.me().user_name)() == "bob@example.com"
    with pytest.raises(RequestEndedError, match="outside any request"):
        kept.current_user.me()
    # One call, bob's own: alice's kept client never acted as alice again, and outside a request sent nothing.
    assert [r.principal for r in workspace.audit()[before:]] == ["bob@example.com"]


def test_outside_serving_without_an_invoker_fails_closed_even_with_a_developer_login(workspace, monkeypatch):
    monkeypatch.setenv("DATABRICKS_HOST", workspace.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", workspace.issue_token("carol"))  # the developer's own login
    before = len(workspace.audit())
    with pytest.raises(NoInvokerError, match="as_user"):
        whoami()
    assert workspace.audit()[before:] == []


def test_in_serving_without_an_invoker_token_fails_closed(serving, workspace, agent_identity):
    agent_identity(workspace)  # the agent's own identity is there...
    with pytest.raises(NoInvokerError, match="no end-user token"):
        whoami()  # ...and is never used in the user's place


def test_in_serving_the_invoker_comes_from_the_main_thread_slot(serving, workspace, invoker_token):
    serving["invokers_token"] = invoker_token(workspace, "carol")
    assert whoami() == "carol@example.com"


def test_in_serving_mlflowserving_is_read_before_the_main_thread_slot(serving, workspace, mocker, invoker_token):
    serving["invokers_token"] = invoker_token(workspace, "carol")
    runtime = types.ModuleType("mlflowserving.scoring_server.agent_utils")
    runtime.fetch_obo_token = lambda: invoker_token(workspace, "alice")
    for name in ("mlflowserving", "mlflowserving.scoring_server"):
        mocker.patch.dict(sys.modules, {name: types.ModuleType(name)})
    mocker.patch.dict(sys.modules, {"mlflowserving.scoring_server.agent_utils": runtime})
    assert whoami() == "alice@example.com"


def test_the_token_is_read_once_at_entry(serving, workspace, invoker_token):
    """The runtime overwriting its one process-wide slot mid-request does not change who we act as."""

    @obo_auth.on_behalf_of_user
    def predict() -> list[str]:
        client = obo_auth.current_request().user_client
        first = client.current_user.me().user_name
        serving["invokers_token"] = invoker_token(workspace, "bob")  # the next request arrives
        return [first, client.current_user.me().user_name]

    serving["invokers_token"] = invoker_token(workspace, "alice")
    assert predict() == ["alice@example.com", "alice@example.com"]


def test_system_client_is_the_agent_and_is_reused_while_the_environment_is_unchanged(runtime, workspace, agent_identity, invoker_token):
    agent_identity(workspace)

    @obo_auth.on_behalf_of_user
    def clients():
        req = obo_auth.current_request()
        return req.system_client, req.system_client.current_user.me().display_name, whoami_inner(req)

    def whoami_inner(req):
        return req.user_client.current_user.me().user_name

    with runtime.user(invoker_token(workspace, "alice"), workspace.url):
        first, agent, user = clients()
        second, _, _ = clients()
    assert (agent, user) == ("obo-agent", "alice@example.com")
    assert first is second


def test_system_client_follows_a_new_workspace(runtime, workspace, agent_identity, invoker_token):
    from obo_auth.local import LocalWorkspace

    def system_me(ws):
        agent_identity(ws)

        @obo_auth.on_behalf_of_user
        def predict():
            return obo_auth.current_request().system_client.current_user.me().display_name

        with runtime.user(invoker_token(ws, "alice"), ws.url):
            return predict()

    assert system_me(workspace) == "obo-agent"
    with LocalWorkspace() as other:
        assert system_me(other) == "obo-agent"
        assert other.audit()[-1].principal == "obo-agent"


def test_no_round_trip_to_build_clients_per_request(runtime, workspace, agent_identity, invoker_token):
    agent_identity(workspace)

    @obo_auth.on_behalf_of_user
    def predict():
        req = obo_auth.current_request()
        req.system_client  # built (or reused) but not called
        return req.user_client.current_user.me().user_name

    token = invoker_token(workspace, "alice")
    with runtime.user(token, workspace.url):
        predict()  # warm: host metadata and the system client resolved once per process
    before = len(workspace.audit())
    for _ in range(5):  # five requests (on Apps, a request is a user block, not a decorated call)
        with runtime.user(token, workspace.url):
            predict()
    assert [r.path for r in workspace.audit()[before:]] == ["/api/2.0/preview/scim/v2/Me"] * 5


def test_a_stream_keeps_its_context_until_exhausted_and_drops_it_after(workspace, invoker_token):
    # Not on Apps (no runtime fixture): the decorated stream opens its own request, as on Model
    # Serving, and it outlives the block it started in. On Apps the request is app_request's
    # (for OboAppMiddleware, the whole ASGI call, its streamed body included): a stream started
    # in it joins it and ends with it.
    seen = []

    @obo_auth.on_behalf_of_user
    def predict_stream():
        req = obo_auth.current_request()
        for _ in range(3):
            seen.append(req.user_client)
            yield req.user_client.current_user.me().user_name

    with obo_auth.as_user(invoker_token(workspace, "alice"), host=workspace.url):
        stream = predict_stream()
        first = next(stream)  # the stream starts here, as alice's
    # Iterated after the as_user block, as a server iterates a response: still alice's stream.
    with pytest.raises(OutsideRequestError):
        obo_auth.current_request()  # the consumer never sees the stream's context
    assert [first, *stream] == ["alice@example.com"] * 3
    with pytest.raises(RequestEndedError):
        seen[0].current_user.me()


def test_a_stream_closed_early_ends_its_context(workspace, invoker_token):
    # Not on Apps (no runtime fixture): closing a stream ends the request the stream opened, as on
    # Model Serving. On Apps the stream joins app_request's request, which closing the stream
    # does not end (its block does).
    @obo_auth.on_behalf_of_user
    def predict_stream():
        req = obo_auth.current_request()
        while True:
            yield req

    with obo_auth.as_user(invoker_token(workspace, "bob"), host=workspace.url):
        stream = predict_stream()
        req = next(stream)
        assert req.active
        stream.close()
    assert not req.active
    with pytest.raises(RequestEndedError):
        req.user_client.current_user.me()


def test_a_stream_without_an_invoker_fails_before_yielding_anything():
    body_ran = []

    @obo_auth.on_behalf_of_user
    def predict_stream():
        body_ran.append(True)
        yield "never"

    with pytest.raises(NoInvokerError):
        next(predict_stream())
    assert body_ran == []


def test_a_decorated_stream_is_still_a_generator_function():
    """mlflow's ResponsesAgent wraps predict_stream with a tracer that requires one."""
    import inspect

    @obo_auth.on_behalf_of_user
    def predict_stream():
        yield 1

    assert inspect.isgeneratorfunction(predict_stream)


def test_async_functions_run_as_their_invoker(runtime, workspace, invoker_token):
    import asyncio

    @obo_auth.on_behalf_of_user
    async def predict():
        return obo_auth.current_request().user_client.current_user.me().user_name

    with runtime.user(invoker_token(workspace, "carol"), workspace.url):
        assert asyncio.run(predict()) == "carol@example.com"


def test_in_serving_an_empty_per_request_source_never_falls_back_to_the_shared_slot(serving, workspace, mocker, invoker_token):
    """The slot may hold another request's token; with the per-request source present, it is never read."""
    serving["invokers_token"] = invoker_token(workspace, "bob")
    runtime = types.ModuleType("mlflowserving.scoring_server.agent_utils")
    runtime.fetch_obo_token = lambda: None  # e.g. a worker thread that did not inherit the request
    for name in ("mlflowserving", "mlflowserving.scoring_server"):
        mocker.patch.dict(sys.modules, {name: types.ModuleType(name)})
    mocker.patch.dict(sys.modules, {"mlflowserving.scoring_server.agent_utils": runtime})
    with pytest.raises(NoInvokerError):
        whoami()
