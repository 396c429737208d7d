"""Shared fixtures: one local workspace per test module, real HTTP on loopback."""

from __future__ import annotations

import gc
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
import threading
import time
import types
from pathlib import Path

import pytest
import mlflow
from hypothesis import settings
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

import obo_auth
from obo_auth.invoker import SERVING_FLAGS
from obo_auth.local import LocalWorkspace

from canary_scan import files_holding_a_token, pytest_runtest_makereport  # noqa: F401 (a hook: a failing test's report shows no token)

# The reliability tests' fixtures (issue 14): minted tokens, the example agent logged once per session.
pytest_plugins = ["reliability_support"]

# mlflow 3's telemetry fetches its config and sends events from daemon threads in every process
# that uses mlflow, the tests' serving and CLI processes (which inherit this) included. Tests send
# nothing anywhere; and a process that exits while that thread is still in requests.get (a serving
# process refusing to start, say) could print "Exception ignored in: ... weakref ... _exitfunc"
# into the stderr the tests read.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

# No timed assertions in tests (the machines are shared and noisy): hypothesis's per-example
# deadline is one, so it is off everywhere; speed is measured by benchmarks/ instead.
settings.register_profile("obo_auth", deadline=None)
settings.load_profile("obo_auth")


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory):
    """Traces and logged models go to a throwaway store, not ./mlflow.db, and obo_auth's state
    (runtime files, default model store) to a throwaway home, not ~/.obo-auth.

    A test that sets another store restores the previous one: ``mlflow.set_tracking_uri(None)``
    also unsets MLFLOW_TRACKING_URI in mlflow 3.17, which would leave the rest of the session
    on ./mlflow.db. mlflow 3.17 refuses file:// stores, hence sqlite. The session fails if the
    tests leave ./mlflow.db, ./mlruns or an obo-auth-* temporary directory behind, or if any file
    they wrote under this session's temporary directory (their tmp_paths, this store and its
    traces, obo_auth's home) holds a token (canary_scan.py).
    """
    started = time.time() - 1
    strays = [Path.cwd() / "mlflow.db", Path.cwd() / "mlruns"]  # mlflow's defaults in the working directory
    there_before = {stray for stray in strays if stray.exists()}
    temporary_before = set(Path(tempfile.gettempdir()).glob("obo-auth-*"))  # serving's scratch and credential directories
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    # Created here with its artifact root beside it: mlflow's default root is ./mlruns.
    SqlAlchemyStore(uri, (root / "artifacts").as_uri()).engine.dispose()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("OBO_AUTH_HOME", str(tmp_path_factory.mktemp("obo-auth-home")))
        yield uri
        mlflow.flush_trace_async_logging()  # queued traces go to this store, not to whatever is left at exit
    left = [str(stray) for stray in strays if stray.exists() and stray not in there_before]
    assert not left, f"tests left {left}: one reset mlflow's tracking URI to None, or used mlflow's default artifact root"
    left_in_temp = sorted(str(p) for p in set(Path(tempfile.gettempdir()).glob("obo-auth-*")) - temporary_before)
    assert not left_in_temp, f"tests left temporary directories behind: {left_in_temp}"
    holding = files_holding_a_token(tmp_path_factory.getbasetemp(), since=started)
    assert not holding, "files written by the tests hold a token:\n" + "\n".join(holding[:20])


@contextmanager
def _own_mlflow_store(root: Path, experiment: str) -> Iterator[str]:
    """An MLflow store of its own (this process logs to it, serving processes load from it),
    with its own experiment; the previous store and experiment are back afterwards."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_RECORD_ENV_VARS_IN_MODEL_LOGGING", "false")
        # set_experiment exports MLFLOW_EXPERIMENT_ID and sets mlflow's active experiment:
        # both recorded through the patch first, so both are undone.
        patch.setenv("MLFLOW_EXPERIMENT_ID", "0")
        patch.setattr("mlflow.tracking.fluent._active_experiment_id", None)
        mlflow.set_tracking_uri(uri)  # (it exports MLFLOW_TRACKING_URI too)
        mlflow.set_experiment(experiment_id=mlflow.create_experiment(experiment, artifact_location=(root / "artifacts").as_uri()))
        try:
            yield uri
        finally:
            mlflow.set_tracking_uri(previous)  # never None: mlflow 3.17 would unset MLFLOW_TRACKING_URI


@pytest.fixture(scope="session")
def own_mlflow_store():
    """``with own_mlflow_store(root, "experiment") as uri:``: see _own_mlflow_store."""
    return _own_mlflow_store


@pytest.fixture(scope="session")
def handbook_example():
    """The example agent's package (examples/handbook_agent): its files, RESOURCES and ``log()``."""
    root = str(Path(__file__).resolve().parents[1])
    sys.path.insert(0, root)
    try:
        from examples import handbook_agent
    finally:
        sys.path.remove(root)
    return handbook_agent


@contextmanager
def _logging_as_alice(workspace: LocalWorkspace) -> Iterator[None]:
    """mlflow's log-time predict runs as alice, with the agent's own identity at hand."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in workspace.environment_for("obo-agent").items():
            patch.setenv(name, value)
        with obo_auth.as_user(workspace.issue_token("alice"), host=workspace.url):
            yield


@pytest.fixture(scope="session")
def logging_as_alice():
    """``with logging_as_alice(ws):`` log a model: see _logging_as_alice."""
    return _logging_as_alice


@pytest.fixture(scope="module")
def workspace():
    with LocalWorkspace() as ws:
        yield ws


# What a vector-search agent's auth policy declares: the scopes Model Serving downscopes to.
AGENT_SCOPES = [
    "serving.serving-endpoints",
    "vectorsearch.vector-search-endpoints",
    "vectorsearch.vector-search-indexes",
    "dashboards.genie",
    "catalog.connections",
    "sql",
]


@pytest.fixture
def invoker_token():
    """``invoker_token(ws, "alice")``: a downscoped token minted for the agent, as serving hands it over."""

    def mint(workspace: LocalWorkspace, user: str) -> str:
        return workspace.issue_token(user, scopes=AGENT_SCOPES, actor="obo-agent")

    return mint


@pytest.fixture
def agent_identity(monkeypatch):
    """``agent_identity(ws)``: the agent's own identity (obo-agent, OAuth M2M) in the environment."""

    def use(workspace: LocalWorkspace) -> None:
        for name, value in workspace.environment_for("obo-agent").items():
            monkeypatch.setenv(name, value)

    return use


@pytest.fixture
def serving(monkeypatch, workspace):
    """The Model Serving process environment (not its HTTP): flags, host, and the runtime's
    process-wide token slot, which the test fills (``serving["invokers_token"] = ...``)."""
    monkeypatch.setenv("IS_IN_DB_MODEL_SERVING_ENV", "true")
    monkeypatch.setenv("DATABRICKS_MODEL_SERVING_HOST_URL", workspace.url)
    slot = threading.main_thread().__dict__
    yield slot
    slot.pop("invokers_token", None)


class _ServingRequest:
    """What the fake Model Serving runtime hands over for the requests of one ``user(...)`` block."""

    def __init__(self, token: str):
        self.token = token
        self.reads = 0  # how often a decorated call read it: proof the serving branch ran


# The request the fake runtime is serving here: per thread, asyncio task and greenlet, as the
# real runtime's per-request fetch_obo_token() is.
_serving_request: ContextVar[_ServingRequest | None] = ContextVar("tests_serving_request", default=None)


class _ModelServingRuntime:
    """Model Serving with its per-request token source, ``mlflowserving...fetch_obo_token()``.

    ``user(token, host)``: decorated calls inside the block open their request through
    open_request's serving branch, which reads the token from the fake runtime (not as_user,
    not the main-thread slot). The host is the runtime's DATABRICKS_MODEL_SERVING_HOST_URL:
    one per process, so it changes only while no other ``user`` block is open.
    ``request_options`` (``strict``, ``max_request_seconds``) are ignored: on Model Serving
    the decorated call opens the request, with the decorator's own options.
    """

    name = "model-serving"

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self._monkeypatch = monkeypatch
        self._lock = threading.Lock()
        self._open_blocks = 0
        monkeypatch.setenv("IS_IN_DB_MODEL_SERVING_ENV", "true")
        agent_utils = types.ModuleType("mlflowserving.scoring_server.agent_utils")
        agent_utils.fetch_obo_token = self._fetch_obo_token
        for name in ("mlflowserving", "mlflowserving.scoring_server"):
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
        monkeypatch.setitem(sys.modules, "mlflowserving.scoring_server.agent_utils", agent_utils)

    @staticmethod
    def _fetch_obo_token() -> str | None:
        request = _serving_request.get()
        if request is None:
            return None  # no request here: open_request fails closed (NoInvokerError)
        request.reads += 1
        return request.token

    @contextmanager
    def user(self, token: str, host: str, **request_options) -> Iterator[None]:
        self._serve_host(host)
        request = _ServingRequest(token)
        reset = _serving_request.set(request)
        try:
            yield
        finally:
            _serving_request.reset(reset)
            with self._lock:
                self._open_blocks -= 1
        assert request.reads, "no decorated call in this block read Model Serving's per-request token source"

    def _serve_host(self, host: str) -> None:
        with self._lock:
            if os.environ.get("DATABRICKS_MODEL_SERVING_HOST_URL") != host:
                assert not self._open_blocks, "a Model Serving process serves one workspace: no second host while a request is open"
                self._monkeypatch.setenv("DATABRICKS_MODEL_SERVING_HOST_URL", host)
            self._open_blocks += 1


class _AppsRuntime:
    """A Databricks App: ``user(token, host)`` is ``obo_auth.app_request`` for a request whose
    proxy forwarded ``token``. The request spans the block and decorated calls inside join it;
    ``request_options`` (``strict``, ``max_request_seconds``) are app_request's."""

    name = "apps"

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        for flag in SERVING_FLAGS:  # an App does not run in Model Serving
            monkeypatch.delenv(flag, raising=False)

    @contextmanager
    def user(self, token: str, host: str, **request_options) -> Iterator[None]:
        with obo_auth.app_request({"x-forwarded-access-token": token}, host=host, **request_options):
            yield


@pytest.fixture(params=[_ModelServingRuntime, _AppsRuntime], ids=["model-serving", "apps"])
def runtime(request, monkeypatch):
    """A runtime obo_auth serves on: ``with runtime.user(token, host):`` decorated calls run as that user.

    The tests of what obo_auth guarantees on every runtime (pinning, isolation, request-bound
    tools, degradation, no token in logs) take it, so each runs on Model Serving and on Apps.
    """
    return request.param(monkeypatch)


def _reachable_strings(root: object, limit: int = 300_000) -> list[str]:
    """Every str and bytes value reachable from ``root``: what the garbage collector sees it
    refer to (attributes, slots, containers, closures, partials, bound methods, suspended
    frames), never walking into modules or classes, which would reach everything."""
    found, seen, todo = [], set(), [root]
    while todo and len(seen) < limit:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (type, types.ModuleType)):
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            found.append(str.__str__(obj))  # its characters, not what a subclass says it is
        elif isinstance(obj, (bytes, bytearray)):
            found.append(bytes(obj).decode("latin-1"))
        elif isinstance(obj, dict) and "__builtins__" in obj:
            continue  # a module's globals
        else:
            todo.extend(gc.get_referents(obj))
    return found


@pytest.fixture
def reachable_strings():
    """``reachable_strings(obj)``: every string and bytes value reachable from ``obj``."""
    return _reachable_strings
