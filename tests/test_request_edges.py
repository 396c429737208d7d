"""The edges of a request: nested calls, streams nobody closes, the runtime's token sources,
malformed tokens and introspection. Against the local workspace over real HTTP; the runtime's
token slot, ``mlflowserving`` and the clock are in-process seams (pytest-mock). The tests
that take ``runtime`` (conftest.py) run on Model Serving and on Databricks Apps; those about
one of Model Serving's token sources, as_user, or a decorated stream opening its own request
(which it does not on Apps), do not.

Sibling: test_request_bound.py (kept clients and tools, per client class).
"""

from __future__ import annotations

import contextvars
import copy
import dataclasses
import gc
import json
import sys
import threading
import types

import pytest

import obo_auth
from obo_auth import CrossRequestError, MalformedTokenError, NoInvokerError, OboAuthError, RequestEndedError
from obo_auth import context as context_module
from obo_auth import credentials


@obo_auth.on_behalf_of_user
def whoami() -> str:
    return obo_auth.current_request().user_client.current_user.me().user_name


def install_runtime(mocker, agent_utils: types.ModuleType | None) -> None:
    """Makes ``mlflowserving`` importable, with ``agent_utils`` as its per-request module (None: broken package)."""
    for name in ("mlflowserving", "mlflowserving.scoring_server"):
        mocker.patch.dict(sys.modules, {name: types.ModuleType(name)})
    mocker.patch.dict(sys.modules, {"mlflowserving.scoring_server.agent_utils": agent_utils})


# -- nested calls keep the outer request's identity ------------------------------------------
def test_a_decorated_helper_inside_a_request_keeps_the_outer_user_when_the_slot_changes(serving, workspace, invoker_token):
    # Model Serving only: what could change mid-request is the runtime's process-wide slot. On Apps
    # the token is the request's header, which nothing changes, and every decorated call joins
    # app_request's request (as every Apps run of the runtime-parametrised tests shows).
    @obo_auth.on_behalf_of_user
    def predict():
        first = whoami()
        serving["invokers_token"] = invoker_token(workspace, "bob")  # the next request has arrived
        return first, whoami(), obo_auth.current_request()

    serving["invokers_token"] = invoker_token(workspace, "alice")
    first, nested, req = predict()
    assert (first, nested) == ("alice@example.com", "alice@example.com")
    assert not req.active  # the helper joined the outer request; the outer call ended it


def test_a_thread_that_outlives_its_request_never_reads_the_runtime_again(runtime, workspace, invoker_token):
    """A worker started inside alice's request (with her context) runs a decorated helper after it ended."""
    outcome = []

    @obo_auth.on_behalf_of_user
    def predict():
        return contextvars.copy_context()

    with runtime.user(invoker_token(workspace, "alice"), workspace.url):
        alices_context = predict()
    before = len(workspace.audit())

    def late_worker():
        try:
            outcome.append(whoami())
        except RequestEndedError as ended:
            outcome.append(ended)

    worker = threading.Thread(target=alices_context.run, args=(late_worker,))
    worker.start()
    worker.join(30)
    assert isinstance(outcome[0], RequestEndedError)  # a fresh read would have acted, or said there was no user
    assert workspace.audit()[before:] == []  # it acted for no one


def test_as_user_cannot_switch_users_inside_a_request(workspace, invoker_token):
    @obo_auth.on_behalf_of_user
    def predict():
        with obo_auth.as_user(invoker_token(workspace, "bob"), host=workspace.url):
            return whoami()

    with obo_auth.as_user(invoker_token(workspace, "alice"), host=workspace.url):
        with pytest.raises(OboAuthError, match="inside a request"):
            predict()


def test_a_stream_pulled_inside_another_users_request_fails_instead_of_serving_its_user(runtime, workspace, invoker_token):
    """alice's stream, kept and pulled inside bob's request, would hand alice's rows to bob."""

    @obo_auth.on_behalf_of_user
    def predict_stream():
        while True:
            yield obo_auth.current_request().user_client.current_user.me().user_name

    with runtime.user(invoker_token(workspace, "alice"), workspace.url):
        alices = predict_stream()
        assert next(alices) == "alice@example.com"

    @obo_auth.on_behalf_of_user
    def bobs_request():
        with pytest.raises(CrossRequestError):
            next(alices)
        return whoami()

    before = len(workspace.audit())
    with runtime.user(invoker_token(workspace, "bob"), workspace.url):
        assert bobs_request() == "bob@example.com"
    assert [r.principal for r in workspace.audit()[before:]] == ["bob@example.com"]
    with pytest.raises(StopIteration):
        next(alices)  # the attempt ended alice's stream


def test_a_stream_with_bad_arguments_leaves_no_request_open(serving, workspace, invoker_token):
    """With only the slot, a request left open would lock every later request out."""

    @obo_auth.on_behalf_of_user
    def predict_stream(question):
        yield question

    serving["invokers_token"] = invoker_token(workspace, "alice")
    with pytest.raises(TypeError):
        next(predict_stream())
    assert whoami() == "alice@example.com"


def test_an_ended_request_holds_no_token_and_cannot_be_copied(runtime, workspace, invoker_token, reachable_strings):
    canary = invoker_token(workspace, "alice")

    @obo_auth.on_behalf_of_user
    def predict():
        return obo_auth.current_request()

    with runtime.user(canary, workspace.url):
        req = predict()
    assert not [s for s in reachable_strings(req) if canary in s]
    with pytest.raises(TypeError, match="cannot be copied"):
        copy.copy(req)


# -- a stream nobody closes does not keep its request alive ----------------------------------
@obo_auth.on_behalf_of_user
def open_stream():
    req = obo_auth.current_request()
    while True:
        yield req


def test_an_abandoned_stream_ends_its_request_when_collected(workspace, invoker_token):
    # Not on Apps (no runtime fixture): the decorated stream opens its own request, as on Model
    # Serving, which outlives the block it started in until the stream is collected. On Apps a
    # stream joins app_request's request, which ends with its block whatever the stream does.
    with obo_auth.as_user(invoker_token(workspace, "alice"), host=workspace.url):
        stream = open_stream()
        req = next(stream)
    assert req.active
    del stream
    gc.collect()
    assert not req.active
    with pytest.raises(RequestEndedError, match="has ended"):
        req.user_client


def test_a_stream_ends_at_its_maximum_lifetime(runtime, workspace, invoker_token, mocker):
    now = [1000.0]
    mocker.patch.object(context_module, "_clock", lambda: now[0])

    @obo_auth.on_behalf_of_user(max_request_seconds=60)
    def predict_stream():
        req = obo_auth.current_request()
        while True:
            yield req.user_client.current_user.me().user_name

    # The lifetime runs out while the request is otherwise open: on Model Serving the stream's
    # own (the block does not matter to it), on Apps app_request's, which the stream joins.
    with runtime.user(invoker_token(workspace, "alice"), workspace.url, max_request_seconds=60):
        stream = predict_stream()
        assert next(stream) == "alice@example.com"
        now[0] += 61
        before = len(workspace.audit())
        with pytest.raises(RequestEndedError, match="maximum lifetime"):
            next(stream)
    assert workspace.audit()[before:] == []


def test_the_maximum_lifetime_must_be_positive():
    with pytest.raises(ValueError, match="max_request_seconds"):
        obo_auth.on_behalf_of_user(max_request_seconds=0)


# -- only a per-request token source is trusted with concurrency -----------------------------
def test_with_only_the_slot_a_second_request_in_flight_fails_closed(serving, workspace, invoker_token):
    serving["invokers_token"] = invoker_token(workspace, "alice")
    entered, release = threading.Event(), threading.Event()

    @obo_auth.on_behalf_of_user
    def slow():
        entered.set()
        release.wait(30)
        return obo_auth.current_request().user_client.current_user.me().user_name

    results = []
    first = threading.Thread(target=lambda: results.append(slow()))
    first.start()
    entered.wait(30)
    serving["invokers_token"] = invoker_token(workspace, "bob")  # the runtime overwrote the slot for request 2
    before = len(workspace.audit())
    try:
        with pytest.raises(NoInvokerError, match="process-wide slot"):
            whoami()
        assert workspace.audit()[before:] == []
    finally:
        release.set()
        first.join(30)
    assert results == ["alice@example.com"]
    assert whoami() == "bob@example.com"  # one at a time is fine


def test_with_only_the_slot_an_abandoned_stream_releases_the_process_at_its_lifetime(serving, workspace, invoker_token, mocker):
    now = [1000.0]
    mocker.patch.object(context_module, "_clock", lambda: now[0])
    serving["invokers_token"] = invoker_token(workspace, "alice")
    stream = open_stream()
    next(stream)
    with pytest.raises(NoInvokerError, match="process-wide slot"):
        whoami()
    now[0] += context_module.DEFAULT_MAX_REQUEST_SECONDS + 1
    assert whoami() == "alice@example.com"
    stream.close()


def test_a_runtime_whose_per_request_function_cannot_be_imported_fails_closed(serving, workspace, invoker_token, mocker):
    serving["invokers_token"] = invoker_token(workspace, "bob")  # must never be read instead
    install_runtime(mocker, types.ModuleType("mlflowserving.scoring_server.agent_utils"))  # no fetch_obo_token
    before = len(workspace.audit())
    with pytest.raises(NoInvokerError, match="will not fall back to the process-wide slot"):
        whoami()
    assert workspace.audit()[before:] == []


def test_a_runtime_whose_per_request_module_is_missing_fails_closed(serving, workspace, invoker_token, mocker):
    serving["invokers_token"] = invoker_token(workspace, "bob")
    install_runtime(mocker, None)  # the package exists, its module cannot be imported
    with pytest.raises(NoInvokerError, match="cannot be used"):
        whoami()


@pytest.mark.parametrize("value", [None, "not a function", 0])
def test_a_runtime_whose_per_request_function_is_not_a_function_fails_closed(serving, workspace, invoker_token, mocker, value):
    """Found by review: ``fetch_obo_token = None`` was taken for an older runtime, and the slot read."""
    serving["invokers_token"] = invoker_token(workspace, "bob")
    runtime = types.ModuleType("mlflowserving.scoring_server.agent_utils")
    runtime.fetch_obo_token = value
    install_runtime(mocker, runtime)
    before = len(workspace.audit())
    with pytest.raises(NoInvokerError, match=r"cannot be used \(TypeError\)"):
        whoami()
    assert workspace.audit()[before:] == []


def test_a_runtime_on_sys_path_whose_import_is_blocked_fails_closed(serving, workspace, invoker_token, mocker, tmp_path):
    """Found by review: the package on sys.path but ``sys.modules["mlflowserving"] = None`` (an
    import blocker) was taken for an older runtime, and the slot read. Without the package on
    sys.path, the same None entry is an older runtime, as before."""
    serving["invokers_token"] = invoker_token(workspace, "bob")
    (tmp_path / "mlflowserving").mkdir()
    (tmp_path / "mlflowserving" / "__init__.py").write_text("")
    mocker.patch.object(sys, "path", [str(tmp_path), *sys.path])
    mocker.patch.dict(sys.modules, {"mlflowserving": None})
    before = len(workspace.audit())
    with pytest.raises(NoInvokerError, match="cannot be used"):
        whoami()
    assert workspace.audit()[before:] == []
    sys.path.remove(str(tmp_path))  # not there: an older runtime, whose slot holds bob's token
    assert whoami() == "bob@example.com"


def test_a_failing_per_request_function_fails_closed(serving, workspace, invoker_token, mocker):
    serving["invokers_token"] = invoker_token(workspace, "bob")
    runtime = types.ModuleType("mlflowserving.scoring_server.agent_utils")

    def broken():
        raise RuntimeError("greenlet lost its request")

    runtime.fetch_obo_token = broken
    install_runtime(mocker, runtime)
    with pytest.raises(NoInvokerError, match="RuntimeError"):
        whoami()


# -- malformed tokens are refused at the boundary --------------------------------------------
@pytest.mark.parametrize("bad", ["abc\r\nX-Injected: 1", "abc\ndef", "abc\x00def", "abc def", "abc\x7f", "tök"])
def test_a_malformed_token_is_refused_by_as_user_naming_only_a_fingerprint(bad):
    from obo_auth.redact import fingerprint

    with pytest.raises(MalformedTokenError) as raised:
        with obo_auth.as_user(bad, host="http://127.0.0.1:9"):
            pass
    assert fingerprint(bad) in str(raised.value)
    assert bad not in str(raised.value) and "abc" not in str(raised.value)


@pytest.mark.parametrize("bad", ["alice\r\nX-Injected: 1", b"bytes-token", 42])
def test_a_malformed_token_from_the_runtime_is_refused_before_anything_is_sent(serving, workspace, bad):
    serving["invokers_token"] = bad
    before = len(workspace.audit())
    with pytest.raises(MalformedTokenError):
        whoami()
    assert workspace.audit()[before:] == []


def test_surrounding_whitespace_is_stripped(workspace, invoker_token):
    with obo_auth.as_user(f"  {invoker_token(workspace, 'carol')}\n", host=workspace.url):
        assert whoami() == "carol@example.com"


# -- secrets stay out of introspection -------------------------------------------------------
def test_the_token_holders_are_not_serialized_by_traces_or_asdict(workspace, invoker_token):
    from mlflow.tracing.utils import TraceJSONEncoder

    from obo_auth.invoker import explicit_user
    from obo_auth.token import UserToken

    canary = invoker_token(workspace, "alice")

    @obo_auth.on_behalf_of_user
    def predict():
        return obo_auth.current_request(), explicit_user()

    with obo_auth.as_user(canary, host=workspace.url):
        req, explicit = predict()
    token = UserToken(canary, "test")
    assert not dataclasses.is_dataclass(token)
    encoded = json.dumps({"req": req, "explicit": explicit, "token": token}, cls=TraceJSONEncoder)
    assert canary not in encoded
    with pytest.raises(TypeError, match="cannot be pickled"):
        __import__("pickle").dumps(token)


def test_the_user_client_carries_no_ambient_credentials(runtime, workspace, invoker_token, monkeypatch, tmp_path):
    profile = tmp_path / "databrickscfg"
    profile.write_text("[DEFAULT]\nhost = https://elsewhere.example.com\ntoken = dapi-developer-profile-token\n")
    monkeypatch.setenv("DATABRICKS_CLIENT_ID", "agent-client-id")
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", "agent-client-secret")
    monkeypatch.setenv("DATABRICKS_TOKEN", "developer-token")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(profile))
    monkeypatch.setenv("DATABRICKS_CONFIG_PROFILE", "DEFAULT")
    credentials.user_client.cache_clear()  # built anew under this environment

    @obo_auth.on_behalf_of_user
    def predict():
        return obo_auth.current_request().user_client.config

    with runtime.user(invoker_token(workspace, "alice"), workspace.url):
        config = predict()
    assert (config.client_id, config.client_secret, config.profile, config.config_file) == (None, None, None, None)
    values = " ".join(str(v) for v in config.as_dict().values())
    assert not any(secret in values for secret in ("agent-client", "developer-token", "developer-profile"))
    credentials.user_client.cache_clear()
