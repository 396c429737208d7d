"""What the reliability tests (tests/test_reliability_*.py, issue 14) share: a pytest plugin,
loaded by tests/conftest.py.

- ``logged_handbook_agent``: the example ChatAgent (examples/handbook_agent), logged once per
  session into the session's MLflow store (conftest's ``mlflow_store``), which serve() passes to
  the serving process: each module serves it without logging it again (logging costs ~8 s).
- ``logged_kept_tool_agent``: the same agent with its retriever tool kept across requests and
  users in a module global (tests/fixtures/kept_tool/), the mistake obo_auth makes safe.
- ``minted``: the tokens a workspace mints for a request (a user's token with an agent or App as
  actor), recorded as they are minted.
- ``live_request_tokens(workspace, minted)``: which of them still authenticate.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

import obo_auth
from obo_auth.local import LocalWorkspace
from obo_auth.redact import fingerprint


@pytest.fixture(scope="session")
def logged_handbook_agent(mlflow_store, handbook_example, logging_as_alice):
    # Log time runs predict as alice against a workspace of the default seed; the model then
    # serves against any workspace of that seed.
    with LocalWorkspace() as workspace, logging_as_alice(workspace):
        return handbook_example.log(handbook_example.CHAT_AGENT)


KEPT_TOOL = Path(__file__).resolve().parent / "fixtures" / "kept_tool"


@pytest.fixture(scope="session")
def logged_kept_tool_agent(mlflow_store, handbook_example):
    code = [handbook_example.LOGIC, handbook_example.CHAT_AGENT, KEPT_TOOL / "kept_retriever.py"]
    # mlflow loads a models-from-code file while logging it, without its code_paths on sys.path.
    sys.path[:0] = [str(handbook_example.HERE), str(KEPT_TOOL)]
    try:
        from handbook_logic import RESOURCES

        return obo_auth.log_model(
            str(KEPT_TOOL / "chat_agent_kept_tool.py"), resources=RESOURCES, name="handbook_kept_tool", code_paths=[str(f) for f in code]
        )
    finally:
        for path in (str(handbook_example.HERE), str(KEPT_TOOL)):
            sys.path.remove(path)
        # Loading it patched this process's handbook_logic: undone, so no other test keeps a tool.
        kept = sys.modules.pop("kept_retriever", None)
        if kept is not None:
            kept.handbook_logic.VectorSearchRetrieverTool = kept._build


@pytest.fixture
def minted(request, monkeypatch) -> list[str]:
    """``minted``: the tokens the test's workspace (its ``ws`` fixture, else ``workspace``) mints
    with an actor, in order."""
    workspace = request.getfixturevalue("ws" if "ws" in request.fixturenames else "workspace")
    identity = workspace.state.identity
    issue, tokens = identity.issue, []

    def issuing(principal, scopes=None, ttl=None, actor=None, *args, **kwargs):
        token = issue(principal, scopes, ttl, actor, *args, **kwargs)
        if actor is not None:
            tokens.append(token)
        return token

    monkeypatch.setattr(identity, "issue", issuing)
    return tokens


def _live_request_tokens(workspace, minted: list[str], seconds: float = 30) -> list[str]:
    """The fingerprints of ``minted`` tokens still live, once every one should have been revoked
    (a stream's token is revoked just after its last event: revocation may lag its answer)."""
    identity = workspace.state.identity
    deadline = time.monotonic() + seconds
    while True:
        live = [fingerprint(t) for t in minted if identity.lookup(t).unusable(identity.clock()) is None]
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.05)


@pytest.fixture(scope="session")
def live_request_tokens():
    """``live_request_tokens(workspace, minted)``: see _live_request_tokens."""
    return _live_request_tokens
