"""Shared fixtures: one local workspace per test module, real HTTP on loopback."""

from __future__ import annotations

import gc
import threading
import types

import pytest
from hypothesis import settings
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from obo_auth.local import LocalWorkspace

# No timed assertions in tests (the machines are shared and noisy): hypothesis's per-example
# deadline is one, so it is off everywhere; speed is measured by benchmarks/ instead.
settings.register_profile("obo_auth", deadline=None)
settings.load_profile("obo_auth")


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory):
    """Traces and logged models go to a throwaway store, not ./mlflow.db, and obo_auth's state
    (runtime files, default model store) to a throwaway home, not ~/.obo-auth.

    Tests that set a tracking URI and reset it with ``mlflow.set_tracking_uri(None)`` fall
    back to this one (mlflow 3.17 refuses file:// stores, hence sqlite).
    """
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    # Created here with its artifact root beside it: mlflow's default root is ./mlruns.
    SqlAlchemyStore(uri, (root / "artifacts").as_uri()).engine.dispose()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("OBO_AUTH_HOME", str(tmp_path_factory.mktemp("obo-auth-home")))
        yield uri


@pytest.fixture(scope="module")
def workspace():
    with LocalWorkspace() as ws:
        yield ws


# What a vector-search agent's auth policy declares: the scopes Model Serving downscopes to.
AGENT_SCOPES = [
    "serving.serving-endpoints",
    "vectorsearch.vector-search-endpoints",
    "vectorsearch.vector-search-indexes",
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
