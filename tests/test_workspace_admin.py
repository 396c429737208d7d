"""The admin API the CLI and local serving use (``local/admin/routes.py``) through their client,
``serving/workspace_link.WorkspaceLink``; the audit log's subscribers; and the scope check
every token the workspace mints goes through. Real HTTP against an in-process workspace.

Siblings: test_workspace_invocations.py (relaying to a served agent), test_cli.py (the same
APIs through the ``obo-auth workspace`` commands), test_auth.py (the admin-only rule for the
older admin routes).
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import httpx
import pytest
from databricks.sdk import WorkspaceClient

from obo_auth.admin_api import ADMIN_PREFIX, AUDIT_PATH
from obo_auth.http_edge import BadRequest
from obo_auth.local import LocalWorkspace
from obo_auth.local.registry import api_scopes
from obo_auth.local.audit import AuditRecord
from obo_auth.scopes import MODEL_SERVING_ALLOWED_SCOPES, UMBRELLA_SCOPES
from obo_auth.serving.workspace_link import WorkspaceLink, WorkspaceRefused


@pytest.fixture
def link(workspace):
    link = WorkspaceLink(workspace.url, workspace.state.admin_token)
    yield link
    link.close()


# -- resource names ------------------------------------------------------------------------------
def test_resource_names_lists_every_securable_by_kind(workspace, link):
    names = link.resource_names()
    # Every kind a service holds (kinds no service holds are left out: the platform's to check).
    assert set(names) == {"serving_endpoint", "vector_search_index", "vector_search_endpoint", "table", "function", "sql_warehouse", "uc_connection", "genie_space", "app"}
    assert names["serving_endpoint"] == ["chat-model", "databricks-gte-large-en"]
    assert names["vector_search_index"] == ["main.docs.handbook_index"]
    assert names["vector_search_endpoint"] == ["docs-endpoint"]
    assert names["table"] == ["main.docs.handbook", "main.hr.employees"]
    assert names["function"] == ["main.tools.whoami"]
    assert names["uc_connection"] == ["echo", "echo_per_user"]
    assert names["genie_space"] == ["1eec1f60c07f5b62857d1e7828e413a0"]  # derived from its title
    record = workspace.audit()[-1]
    assert (record.principal, record.path, record.decision) == ("workspace-admin", f"{ADMIN_PREFIX}/resources", "allow")


def test_a_registered_agent_is_among_the_serving_endpoints(link):
    link.register_endpoint("listed-agent")
    assert "listed-agent" in link.resource_names()["serving_endpoint"]


# -- registering an agent endpoint ---------------------------------------------------------------
def test_registering_again_replaces_the_url(workspace, link):
    link.register_endpoint("moving", url=None)
    assert workspace.state.services["serving"].endpoint("moving").url is None
    link.register_endpoint("moving", url="http://127.0.0.1:8001")
    link.register_endpoint("moving", url="http://127.0.0.1:8002/")
    assert workspace.state.services["serving"].endpoint("moving").url == "http://127.0.0.1:8002"
    assert workspace.audit()[-1].reason == "admin re-registered agent endpoint moving served at http://127.0.0.1:8002"


BAD_AGENT_URLS = {
    "http://example.com:8080": "only http:// to 127.0.0.1",
    "https://127.0.0.1:8080": "only http:// to 127.0.0.1",
    "http://127.0.0.1.example.com:8080": "only http:// to 127.0.0.1",
    "http://127.0.0.1": "it has no port",
    "http://127.0.0.1:99999": "its port is not between 1 and 65535",
    "http://127.0.0.1:0": "its port is not between 1 and 65535",
    "http://127.0.0.1:8080/x": "it has a path",
    "http://127.0.0.1:8080//": "it has a path",
    "http://u@127.0.0.1:80": "without user info",
    "http://@127.0.0.1:80": "without user info",
    "http://127.0.0.1:80?": "it has a query",
    "http://127.0.0.1:80/?next=http://example.com": "it has a query",
    "http://127.0.0.1:80#": "it has a fragment",
    "http://127.0.0.1:80\n": "it has control characters",  # urlsplit drops \t \r \n silently
    "http://127.0.0.1:8\t0": "it has control characters",
    "http://127.0.0.1:80\r\nX-Injected: 1": "it has control characters",
    "http://127.0.0.1:80\x1b[2J": "it has control characters",
    " http://127.0.0.1:80": "it has control characters or spaces",
}


@pytest.mark.parametrize(("url", "why"), BAD_AGENT_URLS.items())
def test_an_agent_url_must_be_where_local_serving_listens(workspace, link, url, why):
    # The workspace hands callers' tokens to this URL: only loopback, as local serving listens.
    with pytest.raises(WorkspaceRefused) as refused:
        link.register_endpoint("elsewhere", url=url)
    assert refused.value.status == 400 and refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "loopback URL" in refused.value.message and why in refused.value.message
    assert refused.value.message.isprintable()  # the URL is quoted escaped
    with pytest.raises(Exception, match="does not exist"):
        workspace.state.services["serving"].endpoint("elsewhere")  # nothing was registered


def test_a_bad_agent_url_is_a_databricks_shaped_400(workspace):
    response = httpx.post(
        f"{workspace.url}{ADMIN_PREFIX}/serving-endpoints",
        json={"name": "elsewhere", "url": "http://127.0.0.1:80?x=1"},
        headers={"Authorization": f"Bearer {workspace.state.admin_token}"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Field 'url' must be a loopback URL such as 'http://127.0.0.1:8080' (where local serving listens): it has a query, got 'http://127.0.0.1:80?x=1'.",
    }


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("http://127.0.0.1:8002", "http://127.0.0.1:8002"),
        ("http://127.0.0.1:08002/", "http://127.0.0.1:8002"),
        ("http://localhost:8003/", "http://localhost:8003"),
        ("http://[::1]:08004", "http://[::1]:8004"),
    ],
)
def test_an_agent_url_is_stored_rebuilt_from_its_parts(workspace, link, given, stored):
    link.register_endpoint("rebuilt", url=given)
    assert workspace.state.services["serving"].endpoint("rebuilt").url == stored
    assert workspace.audit()[-1].reason.endswith(f" served at {stored}")


def test_the_workspace_state_refuses_a_bad_agent_url_too(workspace):
    # Not only the admin route: whatever registers an agent goes through the same check (the backend's).
    with pytest.raises(BadRequest, match="only http:// to 127.0.0.1"):
        workspace.state.services["serving"].register_agent("direct", "http://example.com:80")
    assert workspace.state.services["serving"].register_agent("direct", "http://127.0.0.1:0080/") is True
    assert workspace.state.services["serving"].endpoint("direct").url == "http://127.0.0.1:80"


def test_registering_no_url_clears_the_one_registered(workspace, link):
    # Serving stopped: its port may be anyone's next, so the workspace must not relay there.
    link.register_endpoint("stopping", url="http://127.0.0.1:8005")
    link.register_endpoint("stopping", url=None)
    assert workspace.state.services["serving"].endpoint("stopping").url is None
    record = workspace.audit()[-1]
    assert (record.decision, record.reason) == ("allow", "admin re-registered agent endpoint stopping with no URL: nothing serves it now")
    link._post("/serving-endpoints", {"name": "stopping", "url": "http://127.0.0.1:8005"})
    link._post("/serving-endpoints", {"name": "stopping"})  # no "url" at all: the same
    assert workspace.state.services["serving"].endpoint("stopping").url is None


def test_an_agent_cannot_take_the_name_of_a_seeded_model(workspace, link):
    with pytest.raises(WorkspaceRefused, match="is a chat endpoint of the seed") as refused:
        link.register_endpoint("chat-model", url="http://127.0.0.1:8001")
    assert refused.value.status == 400
    assert workspace.state.services["serving"].endpoint("chat-model").kind == "chat"


# -- the audit log over HTTP ---------------------------------------------------------------------
def test_the_audit_log_reads_from_a_cursor(workspace, link):
    _, cursor = link.audit()
    httpx.get(f"{workspace.url}/api/2.0/preview/scim/v2/Me", headers={"Authorization": f"Bearer {workspace.issue_token('bob')}"})
    records, after = link.audit(cursor)
    # The first read itself, then bob's call; the cursor moves past both.
    assert [(r["principal"], r["path"]) for r in records] == [("workspace-admin", AUDIT_PATH), ("bob@example.com", "/api/2.0/preview/scim/v2/Me")]
    assert after == cursor + 2
    assert set(records[1]) == {f.name for f in dataclasses.fields(AuditRecord)}
    assert link.audit(after + 100) == ([], after + 1)  # a cursor past the end: nothing, and where the end is


@pytest.mark.parametrize(("method", "route"), [("GET", "/resources"), ("GET", "/audit"), ("GET", "/principals/alice"), ("POST", "/client-credentials")])
def test_only_the_admin_credential_may_call_the_new_admin_routes(workspace, method, route):
    for caller in ("alice", "obo-agent"):
        response = httpx.request(
            method, f"{workspace.url}{ADMIN_PREFIX}{route}", json={"principal": "obo-agent"}, headers={"Authorization": f"Bearer {workspace.issue_token(caller)}"}
        )
        assert response.status_code == 403 and "admin credential" in response.json()["message"]
        assert "dose" not in response.text  # no client secret
        assert (workspace.audit()[-1].decision, workspace.audit()[-1].path) == ("deny", f"{ADMIN_PREFIX}{route}")


def test_principals_and_client_credentials(workspace, link):
    assert link.principal("alice") == {"name": "alice@example.com", "kind": "user", "application_id": None}
    agent = link.principal("obo-agent")
    assert agent["kind"] == "service_principal"
    client_id, client_secret = link.client_credentials("obo-agent")
    assert (client_id, client_secret) == workspace.client_credentials("obo-agent")
    m2m = WorkspaceClient(host=workspace.url, client_id=client_id, client_secret=client_secret, auth_type="oauth-m2m")
    assert m2m.current_user.me().display_name == "obo-agent"
    with pytest.raises(WorkspaceRefused, match="only service principals have OAuth client credentials"):
        link.client_credentials("alice")
    with pytest.raises(WorkspaceRefused, match="known: alice, bob, carol"):
        link.principal("zed")


# -- audit subscribers ---------------------------------------------------------------------------
def test_subscribers_see_each_record_once_it_is_in_the_log_and_cannot_break_a_request():
    with LocalWorkspace() as ws:
        seen = []

        def broken(record):
            raise RuntimeError("a subscriber that fails")

        # Reading the log from a subscriber would hang the request were subscribers called under its lock.
        ws.state.audit.subscribe(broken)
        ws.state.audit.subscribe(lambda record: seen.append((record, ws.audit()[-1])))
        response = httpx.get(f"{ws.url}/api/2.0/preview/scim/v2/Me", headers={"Authorization": f"Bearer {ws.issue_token('carol')}"}, timeout=10)
        assert response.status_code == 200
        assert len(seen) == 1 and seen[0][0] is seen[0][1] and seen[0][0].principal == "carol@example.com"


def test_a_workspace_prints_nothing_of_its_own(capfd):
    with LocalWorkspace() as ws:
        WorkspaceClient(host=ws.url, token=ws.issue_token("alice")).current_user.me()
    assert capfd.readouterr() == ("", "")


# -- the scopes a token may hold -----------------------------------------------------------------
TYPO, NEAREST = "vectorsearch.vector-search-index", "vectorsearch.vector-search-indexes"


def test_an_unknown_scope_is_a_value_error_naming_the_nearest_valid_one(workspace):
    with pytest.raises(ValueError, match=re.escape(f"'{TYPO}' (did you mean '{NEAREST}'?)")):
        workspace.issue_token("alice", scopes=["sql", TYPO])


def test_the_admin_api_refuses_an_unknown_scope_with_a_400(workspace):
    response = httpx.post(
        f"{workspace.url}{ADMIN_PREFIX}/tokens", json={"principal": "alice", "scopes": [TYPO]}, headers={"Authorization": f"Bearer {workspace.state.admin_token}"}
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert f"did you mean '{NEAREST}'" in response.json()["message"]


def test_the_workspace_accepts_every_scope_model_serving_may_grant():
    with LocalWorkspace() as ws:
        token = ws.issue_token("alice", scopes=sorted(MODEL_SERVING_ALLOWED_SCOPES) + [" sql "])
        assert ws.state.identity.lookup(token).scopes == MODEL_SERVING_ALLOWED_SCOPES


def test_every_scope_the_workspace_checks_can_be_granted():
    # Else an API of the emulator would be out of reach of every downscoped token.
    assert {s.scope for s in api_scopes().values()} | set(UMBRELLA_SCOPES) <= MODEL_SERVING_ALLOWED_SCOPES


# -- what the CLI's quick commands import --------------------------------------------------------
def test_the_cli_and_the_admin_client_import_neither_the_workspace_nor_the_sdk():
    probe = (
        "import sys, obo_auth.cli.workspace, obo_auth.serving.workspace_link\n"
        "heavy = ('obo_auth.local', 'databricks', 'starlette', 'pydantic', 'yaml', 'uvicorn', 'mlflow')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
