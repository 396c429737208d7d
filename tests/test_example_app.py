"""The handbook agent as a Databricks App (examples/handbook_agent/app.py), end to end over real HTTP.

mlflow's agent server with ``OboAppMiddleware``, run by ``serve_app`` behind the local Apps
proxy, called by name as the released client does it
(``DatabricksOpenAI().responses.create(model="apps/handbook-app")``) as alice, bob and carol,
whole and streamed; a client forging the proxy's headers, and a call without a user.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from databricks_openai import DatabricksOpenAI

from obo_auth.serving import serve_app
from obo_auth.testing.oauth import oauth_user_client

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "handbook_agent"
APP = "handbook-app"
QUESTION = [{"role": "user", "content": "How does parental leave pay work?"}]
ALICE_ONLY = "parental-leave#5"  # the handbook's HR-only chunk: alice (hr) may read it, carol not


@pytest.fixture(scope="module")
def app(workspace) -> Iterator:
    with serve_app("app:app", workspace, APP, app_dir=EXAMPLE) as served:
        yield served


def ask(workspace, user: str, *, stream: bool = False, headers: dict | None = None):
    llm = DatabricksOpenAI(workspace_client=oauth_user_client(workspace.url, workspace.issue_token(user)))
    return llm.responses.create(model=f"apps/{APP}", input=QUESTION, stream=stream, extra_headers=headers or {})


def sources(response) -> list[str]:
    return (getattr(response, "custom_outputs", None) or {}).get("sources", [])


def test_the_app_serves_its_bundles_scopes(app):
    assert app.user_api_scopes == ("serving.serving-endpoints", "vectorsearch.vector-search-endpoints", "vectorsearch.vector-search-indexes")


def test_each_user_gets_what_unity_catalog_lets_them_read(workspace, app):
    before = len(workspace.audit())
    alice, bob, carol = (ask(workspace, user) for user in ("alice", "bob", "carol"))
    assert any(ALICE_ONLY in s for s in sources(alice))
    assert sources(carol) and not any(ALICE_ONLY in s for s in sources(carol))
    assert sources(bob) == [] and bob.custom_outputs["unavailable_tools"] == [{"name": "the company handbook", "reason": "permission_denied"}]
    index_reads = [r for r in workspace.audit()[before:] if r.path.startswith("/api/2.0/vector-search/indexes/")]
    assert {r.principal for r in index_reads} == {"alice@example.com", "bob@example.com", "carol@example.com"}
    assert {r.actor for r in index_reads} == {"obo-agent"}  # the App's service principal, acting for each user
    assert not [r for r in workspace.audit()[before:] if r.principal == "obo-agent" and r.path.startswith("/api/2.0/vector-search")]


def test_a_streamed_answer_is_its_users_to_the_end(workspace, app):
    for user, reads_hr_only in (("alice", True), ("carol", False)):
        events = list(ask(workspace, user, stream=True))
        done = [e for e in events if e.type == "response.output_item.done"]
        assert done and (ALICE_ONLY in str(done[-1].model_dump())) is reads_hr_only


def test_a_client_forging_the_proxys_headers_changes_nothing(workspace, app):
    forged = {"x-forwarded-access-token": workspace.issue_token("alice"), "x-forwarded-email": "alice@example.com"}
    assert sources(ask(workspace, "carol", headers=forged)) == sources(ask(workspace, "carol"))


def test_a_call_without_a_user_never_reaches_the_app_and_health_needs_no_user(workspace, app):
    before = len(workspace.audit())
    refused = httpx.post(f"{app.url}/responses", json={"input": QUESTION}, timeout=30, trust_env=False)
    assert refused.status_code == 401 and refused.json()["error_code"] == "UNAUTHENTICATED"
    assert [r for r in workspace.audit()[before:] if r.principal == "obo-agent"] == []  # the App did not run, as anyone
    token = workspace.issue_token("bob")
    health = httpx.get(f"{app.url}/health", headers={"Authorization": f"Bearer {token}"}, timeout=30, trust_env=False)
    assert health.json() == {"status": "healthy"}
