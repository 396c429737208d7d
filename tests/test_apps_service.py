"""The local workspace's Databricks Apps (``local/apps/``), driven by the released databricks-sdk
(``WorkspaceClient.apps``) over real HTTP, registered through the admin API's client
(``WorkspaceLink.register_app``); and tokens minted for the Apps runtime, whose scopes are
checked against the Databricks Apps allowlist instead of Model Serving's.

The seed is the default seed plus two service principals and three Apps (``APPS``):
"hr-assistant" (running at a loopback URL; alice may use it, carol manages it, bob holds
nothing on it), "stopped-app" (no URL; every identity may use it) and "private-app" (alice
manages it). Nothing is mocked.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, PermissionDenied, ResourceDoesNotExist
from databricks.sdk.service.apps import ApplicationState, ComputeState
from databricks.sdk.service.sql import StatementState

from obo_auth.admin_api import ADMIN_PREFIX
from obo_auth.http_edge import BadRequest
from obo_auth.local import LocalWorkspace, SeedError
from obo_auth.local.sql.seed import derived_warehouse_id
from obo_auth.serving.workspace_link import WorkspaceLink, WorkspaceRefused
from seeds import default_seed

WAREHOUSE_ID = derived_warehouse_id("local-warehouse")
INDEX = "main.docs.handbook_index"
APPS = [
    {
        "name": "hr-assistant",
        "description": "Answers HR questions as the user who asks.",
        "service_principal": "hr-app-sp",
        "user_api_scopes": ["vector-search", "sql", " sql "],
        "url": "http://127.0.0.1:08000/",
    },
    {"name": "stopped-app", "service_principal": "hr-app-sp"},
    {"name": "private-app", "service_principal": "other-sp", "user_api_scopes": ["files"]},
]
GRANTS = [
    {"principal": "alice@example.com", "privilege": "CAN_USE", "on": {"app": "hr-assistant"}},
    {"principal": "carol@example.com", "privilege": "CAN_MANAGE", "on": {"app": "hr-assistant"}},
    {"principal": "users", "privilege": "CAN_USE", "on": {"app": "stopped-app"}},
    {"principal": "alice@example.com", "privilege": "CAN_MANAGE", "on": {"app": "private-app"}},
]


def _seed() -> dict:
    seed = default_seed()
    seed["service_principals"] += [{"name": "hr-app-sp"}, {"name": "other-sp", "application_id": "other-sp-client-id"}]
    seed["apps"] = copy.deepcopy(APPS)
    seed["grants"] += copy.deepcopy(GRANTS)
    return seed


@pytest.fixture(scope="module")
def ws():
    with LocalWorkspace(_seed()) as workspace:
        yield workspace


@pytest.fixture(scope="module")
def link(ws):
    link = WorkspaceLink(ws.url, ws.state.admin_token)
    yield link
    link.close()


def _client(ws: LocalWorkspace, who: str, scopes: list[str] | None = None) -> WorkspaceClient:
    return WorkspaceClient(host=ws.url, token=ws.issue_token(who, scopes=scopes))


def _admin_post(ws: LocalWorkspace, path: str, body: dict, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or ws.state.admin_token}"}
    return httpx.post(f"{ws.url}{ADMIN_PREFIX}{path}", json=body, headers=headers, trust_env=False)


# -- get and list, as databricks-sdk reads them ------------------------------------------------------


def test_alice_gets_a_running_app_with_every_field_the_sdk_reads(ws, link):
    app = _client(ws, "alice").apps.get("hr-assistant")
    assert app.name == "hr-assistant"
    assert app.description == "Answers HR questions as the user who asks."
    assert app.url == "http://127.0.0.1:8000"  # stored rebuilt from its parts
    assert app.user_api_scopes == ["sql", "vector-search"]  # normalised: sorted, trimmed, once each
    assert app.effective_user_api_scopes == ["sql", "vector-search"]
    assert app.service_principal_client_id == link.principal("hr-app-sp")["application_id"]
    assert app.service_principal_name == "hr-app-sp"
    assert app.service_principal_id is None  # the local workspace's ids are UUIDs, the SDK reads an int
    assert app.app_status.state == ApplicationState.RUNNING
    assert app.compute_status.state == ComputeState.ACTIVE
    assert app.creator == "workspace-admin"
    assert datetime.fromisoformat(app.create_time.replace("Z", "+00:00")) == datetime.fromisoformat(app.update_time.replace("Z", "+00:00"))
    record = [r for r in ws.audit() if r.path == "/api/2.0/apps/hr-assistant"][-1]
    assert (record.resource, record.needed_scope, record.decision) == ("app:hr-assistant", "apps.apps", "allow")
    assert record.reason == "alice@example.com has CAN_USE on app hr-assistant"


def test_an_app_without_a_url_is_not_running(ws):
    app = _client(ws, "bob").apps.get("stopped-app")
    assert app.url is None and app.user_api_scopes is None and app.effective_user_api_scopes is None  # absent, as the platform leaves empty lists
    assert app.app_status.state == ApplicationState.UNAVAILABLE
    assert app.compute_status.state == ComputeState.STOPPED
    assert app.service_principal_client_id == _client(ws, "alice").apps.get("hr-assistant").service_principal_client_id  # the same SP


def test_a_manager_may_use_the_app_too(ws):
    # CAN_MANAGE includes CAN_USE (the levels of the securable type).
    assert _client(ws, "carol").apps.get("hr-assistant").name == "hr-assistant"
    assert ws.audit()[-1].reason == "carol@example.com has CAN_MANAGE on app hr-assistant"


def test_the_listing_holds_only_the_apps_the_caller_may_use(ws):
    assert [a.name for a in _client(ws, "alice").apps.list()] == ["hr-assistant", "stopped-app", "private-app"]
    assert [a.name for a in _client(ws, "carol").apps.list()] == ["hr-assistant", "stopped-app"]
    assert [a.name for a in _client(ws, "bob").apps.list()] == ["stopped-app"]
    assert ws.audit()[-1].reason == "allowed; hid 2 Apps the caller may not use"


def test_the_listing_pages_by_page_token(ws):
    alice = _client(ws, "alice")
    assert [a.name for a in alice.apps.list(page_size=1)] == ["hr-assistant", "stopped-app", "private-app"]  # the SDK follows the tokens
    token = ws.issue_token("alice")
    headers = {"Authorization": f"Bearer {token}"}
    first = httpx.get(f"{ws.url}/api/2.0/apps", params={"page_size": 2}, headers=headers, trust_env=False).json()
    assert [a["name"] for a in first["apps"]] == ["hr-assistant", "stopped-app"] and first["next_page_token"] == "2"
    last = httpx.get(f"{ws.url}/api/2.0/apps", params={"page_size": 2, "page_token": "2"}, headers=headers, trust_env=False).json()
    assert [a["name"] for a in last["apps"]] == ["private-app"] and "next_page_token" not in last
    bad = httpx.get(f"{ws.url}/api/2.0/apps", params={"page_token": "x"}, headers=headers, trust_env=False)
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_an_app_the_caller_may_not_use_is_answered_as_one_that_does_not_exist(ws):
    bob = _client(ws, "bob")
    for name in ("hr-assistant", "no-such-app"):
        with pytest.raises(ResourceDoesNotExist) as missing:
            bob.apps.get(name)
        assert isinstance(missing.value, NotFound)
        assert str(missing.value) == f"App with name {name} does not exist or is deleted."
        assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    hidden, unknown = ws.audit()[-2:]
    assert (hidden.status, hidden.decision, hidden.resource) == (404, "deny", "app:hr-assistant")  # the audit log knows which
    assert (unknown.status, unknown.resource) == (404, None)


def test_the_apps_routes_need_the_apps_scope(ws):
    with pytest.raises(PermissionDenied, match="needs the API scope 'apps.apps'"):
        _client(ws, "alice", scopes=["sql"]).apps.get("hr-assistant")
    assert _client(ws, "alice", scopes=["apps"]).apps.get("hr-assistant").name == "hr-assistant"  # the umbrella covers it
    assert [a.name for a in _client(ws, "bob", scopes=["apps.apps"]).apps.list()] == ["stopped-app"]


def test_the_apps_are_among_the_workspace_securables(ws, link):
    assert link.resource_names()["app"] == ["hr-assistant", "private-app", "stopped-app"]
    link.check_can_use_app("alice", "hr-assistant")
    link.check_can_use_app("carol", "hr-assistant")
    with pytest.raises(WorkspaceRefused) as refused:
        link.check_can_use_app("bob", "hr-assistant")
    assert (refused.value.status, refused.value.error_code) == (403, "PERMISSION_DENIED")
    assert "does not have CAN_USE on app 'hr-assistant'" in refused.value.message


# -- registering an App through the admin API --------------------------------------------------------


def test_a_registered_app_may_be_used_by_everyone_and_registering_again_replaces_it(ws, link):
    created = link.register_app("new-app", "http://localhost:8123/", ["sql.statement-execution", "files"], "hr-app-sp")
    assert created["url"] == "http://localhost:8123" and created["app_status"]["state"] == "RUNNING"
    assert created["user_api_scopes"] == ["files", "sql.statement-execution"]
    assert ws.audit()[-1].reason == "admin registered App new-app at http://localhost:8123"
    bob = _client(ws, "bob")
    assert bob.apps.get("new-app").url == "http://localhost:8123"  # nothing was granted on it: CAN_USE for every identity

    again = link.register_app("new-app", None, ["genie"], "other-sp")
    assert "url" not in again and again["app_status"]["state"] == "UNAVAILABLE" and again["compute_status"]["state"] == "STOPPED"
    assert (again["service_principal_name"], again["service_principal_client_id"]) == ("other-sp", "other-sp-client-id")
    assert again["user_api_scopes"] == ["genie"] and again["create_time"] == created["create_time"]
    assert ws.audit()[-1].reason == "admin re-registered App new-app with no URL: not running now"
    assert bob.apps.get("new-app").service_principal_name == "other-sp"


def test_registering_a_seeded_app_keeps_its_grants(ws, link):
    seeded = _client(ws, "alice").apps.get("private-app")
    registered = link.register_app("private-app", "http://127.0.0.1:8200", ["files"], "other-sp")
    assert registered["url"] == "http://127.0.0.1:8200" and registered["create_time"] == seeded.create_time
    assert ws.audit()[-1].reason == "admin re-registered App private-app at http://127.0.0.1:8200"
    assert _client(ws, "alice").apps.get("private-app").url == "http://127.0.0.1:8200"
    with pytest.raises(ResourceDoesNotExist):
        _client(ws, "bob").apps.get("private-app")  # it existed: nothing was granted to everyone


def test_only_the_admin_credential_may_register_an_app(ws):
    body = {"name": "sneaky-app", "url": "http://127.0.0.1:8300", "user_api_scopes": ["sql"], "service_principal": "hr-app-sp"}
    refused = _admin_post(ws, "/apps", body, token=ws.issue_token("alice"))
    assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
    assert ws.state.services["apps"].app("sneaky-app") is None


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (["sql.warehouses"], "'sql.warehouses' (an App asks for 'sql')"),
        (["vector-serch"], "'vector-serch' (did you mean 'vector-search'?)"),
        (["sql", "unity-catalog"], "'unity-catalog'"),
        (["apps.apps"], "'apps.apps'"),
    ],
)
def test_registering_refuses_a_scope_not_on_the_apps_allowlist(ws, link, scopes, expected):
    with pytest.raises(WorkspaceRefused) as refused:
        link.register_app("scoped-app", None, scopes, "hr-app-sp")
    assert (refused.value.status, refused.value.error_code) == (400, "INVALID_PARAMETER_VALUE")
    assert refused.value.message.startswith(f"Invalid user API scope(s) {expected}: an App's user_api_scopes must be on the Databricks Apps allowlist: ")
    assert "\n" not in refused.value.message
    assert ws.state.services["apps"].app("scoped-app") is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com:8000", "only http:// to 127.0.0.1"),
        ("https://127.0.0.1:8000", "only http:// to 127.0.0.1"),
        ("http://127.0.0.1", "it has no port"),
        ("http://127.0.0.1:8000/app", "it has a path (an App answers at its root)"),
        ("http://127.0.0.1:8000?x=1", "it has a query"),
        ("http://127.0.0.1:80\r\nX: 1", "it has control characters"),
    ],
)
def test_registering_refuses_a_url_that_is_not_loopback(ws, link, url, why):
    with pytest.raises(WorkspaceRefused) as refused:
        link.register_app("url-app", url, [], "hr-app-sp")
    assert (refused.value.status, refused.value.error_code) == (400, "INVALID_PARAMETER_VALUE")
    assert refused.value.message.startswith("Field 'url' must be a loopback URL such as 'http://127.0.0.1:8000' (where the App listens): ")
    assert why in refused.value.message and refused.value.message.isprintable()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": "Bad_Name", "service_principal": "hr-app-sp"}, "Invalid App name 'Bad_Name': use 2-30 lowercase letters, digits and '-'."),
        ({"name": "a", "service_principal": "hr-app-sp"}, "Invalid App name 'a'"),
        ({"name": "x" * 31, "service_principal": "hr-app-sp"}, "Invalid App name"),
        ({"name": "user-app", "service_principal": "alice"}, "must name a service principal (the App's own identity), not the user alice@example.com"),
        ({"name": "nobody-app", "service_principal": "nobody"}, "Field 'service_principal': No user or service principal named 'nobody'"),
        ({"name": "admin-app", "service_principal": "workspace-admin"}, "names the workspace's own admin"),
        ({"name": "typed-app", "service_principal": "hr-app-sp", "user_api_scopes": "sql"}, "Field 'user_api_scopes' must be an array, got a string."),
        ({"name": "typed-app", "service_principal": "hr-app-sp", "user_api_scopes": [1]}, "Field 'user_api_scopes' must be an array of API scope strings."),
        ({"name": "no-sp-app"}, "Missing required field 'service_principal'."),
    ],
)
def test_registering_refuses_a_bad_body_with_a_400(ws, body, expected):
    response = _admin_post(ws, "/apps", body)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert expected in response.json()["message"]
    assert ws.state.services["apps"].app(body["name"]) is None


# -- seeds -----------------------------------------------------------------------------------------


def _with_app(**changes) -> dict:
    seed = _seed()
    seed["apps"][0].update(changes)
    return seed


BAD_SEEDS = {
    "scope not on the apps allowlist": (
        _with_app(user_api_scopes=["sql", "sql.warehouses"]),
        "field 'apps[0].user_api_scopes': 'sql.warehouses' (an App asks for 'sql'): not a scope a Databricks App may ask for; expected scopes of the Databricks Apps allowlist: ",
    ),
    "misspelt scope": (_with_app(user_api_scopes=["vector-serch"]), "'vector-serch' (did you mean 'vector-search'?)"),
    "scope not a string": (_with_app(user_api_scopes=[5]), "field 'apps[0].user_api_scopes[0]'"),
    "name with capitals": (_with_app(name="HR_Assistant"), "field 'apps[0].name': expected 2-30 lowercase letters, digits and '-', got 'HR_Assistant'"),
    "name too short": (_with_app(name="h"), "field 'apps[0].name': expected 2-30 lowercase letters"),
    "unknown service principal": (_with_app(service_principal="nobody"), "field 'apps[0].service_principal': 'nobody' is not a declared service principal name; declared: hr-app-sp, obo-agent, other-sp"),
    "a user as the service principal": (_with_app(service_principal="alice@example.com"), "field 'apps[0].service_principal': 'alice@example.com' is not a declared service principal name"),
    "missing service principal": (_with_app(service_principal=None), "field 'apps[0].service_principal'"),
    "url not loopback": (_with_app(url="http://example.com:8000"), "field 'apps[0].url': expected a loopback URL such as http://127.0.0.1:8000 (or none: not running), but only http://"),
    "unknown field": (_with_app(port=8000), "field 'apps[0].port': unknown field; expected one of: name, description, service_principal, user_api_scopes, url"),
}


def _duplicate_names() -> dict:
    seed = _seed()
    seed["apps"][2]["name"] = "hr-assistant"
    seed["grants"] = [g for g in seed["grants"] if g["on"] != {"app": "private-app"}]
    return seed


def _grant_on_unknown_app() -> dict:
    seed = _seed()
    seed["grants"].append({"principal": "bob@example.com", "privilege": "CAN_USE", "on": {"app": "no-such-app"}})
    return seed


def _wrong_privilege() -> dict:
    seed = _seed()
    seed["grants"].append({"principal": "bob@example.com", "privilege": "CAN_QUERY", "on": {"app": "hr-assistant"}})
    return seed


BAD_SEEDS |= {
    "duplicate names": (_duplicate_names(), "field 'apps[2].name': 'hr-assistant' already names apps[0].name"),
    "grant on an unknown app": (_grant_on_unknown_app(), "'no-such-app' is not a declared app; declared: hr-assistant, private-app, stopped-app"),
    "privilege an app has not": (_wrong_privilege(), "'CAN_QUERY' is not a privilege on a app; expected one of: CAN_MANAGE, CAN_USE"),
}


@pytest.mark.parametrize("name", list(BAD_SEEDS))
def test_a_bad_apps_seed_is_one_line_naming_the_field(name):
    seed, expected = BAD_SEEDS[name]
    with pytest.raises(SeedError) as error:
        LocalWorkspace(seed)
    header, *problems = str(error.value).splitlines()
    assert header == "seed dict: invalid seed:"
    assert len(problems) == 1, problems  # one problem, said on one line
    assert expected in problems[0]


def test_the_seed_apps_section_is_optional():
    with LocalWorkspace() as workspace:
        assert workspace.state.resource_names()["app"] == []
        assert list(WorkspaceClient(host=workspace.url, token=workspace.issue_token("alice")).apps.list()) == []


# -- tokens minted for the Apps runtime --------------------------------------------------------------


def _last_mint(ws: LocalWorkspace):
    return [r for r in ws.audit() if r.path == f"{ADMIN_PREFIX}/tokens"][-1]


def test_a_token_minted_for_an_app_holds_app_scopes_and_reaches_sql_and_vector_search(ws, link):
    token = link.mint("alice", scopes=["sql", "vector-search"], ttl=600, actor="hr-app-sp", runtime="apps")
    assert ws.state.identity.lookup(token).scopes == {"sql", "vector-search"}
    assert _last_mint(ws).reason == "admin issued a token for alice@example.com acting through hr-app-sp for Databricks Apps"

    # databricks-sdk's query (databricks-ai-search's client also reads the embedding endpoint, which needs model-serving).
    client = WorkspaceClient(host=ws.url, token=token)
    found = client.vector_search_indexes.query_index(INDEX, ["id", "audience"], query_text="parental leave salary", num_results=3)
    assert found.result.data_array and any(row[1] == "hr" for row in found.result.data_array)  # alice's own rows
    assert [r for r in ws.audit() if r.path.endswith("/query")][-1].needed_scope == "vectorsearch.vector-search-indexes"

    statement = client.statement_execution.execute_statement("SELECT current_user()", WAREHOUSE_ID)
    assert statement.status.state == StatementState.SUCCEEDED
    assert statement.result.data_array == [["alice@example.com"]]
    assert [r for r in ws.audit() if r.path.startswith("/api/2.0/sql/statements")][-1].needed_scope == "sql.statement-execution"


@pytest.mark.parametrize("scope", ["sql.warehouses", "unity-catalog"])
def test_a_token_minted_for_an_app_refuses_scopes_only_model_serving_grants(ws, link, scope):
    with pytest.raises(WorkspaceRefused) as refused:
        link.mint("alice", scopes=["sql", scope], ttl=600, runtime="apps")
    assert (refused.value.status, refused.value.error_code) == (400, "INVALID_PARAMETER_VALUE")
    assert refused.value.message.startswith(f"Unknown API scope(s) '{scope}': a downscoped token holds scopes of the Databricks Apps allowlist: ")
    with pytest.raises(ValueError, match=re.escape(f"'{scope}'")):
        ws.issue_token("alice", scopes=[scope], runtime="apps")


def test_model_serving_is_still_the_default_runtime_and_refuses_app_only_scopes(ws, link):
    for runtime in ({}, {"runtime": "model_serving"}):
        with pytest.raises(WorkspaceRefused) as refused:
            link.mint("alice", scopes=["catalog.tables:read"], ttl=600, **runtime)
        assert refused.value.status == 400
        assert refused.value.message.startswith("Unknown API scope(s) 'catalog.tables:read': a downscoped token holds scopes of the Model Serving allowlist: ")
    with pytest.raises(ValueError, match="Model Serving allowlist"):
        ws.issue_token("alice", scopes=["catalog.tables:read"])
    assert ws.state.identity.lookup(ws.issue_token("alice", scopes=["catalog.tables:read"], runtime="apps")).scopes == {"catalog.tables:read"}
    # What Model Serving grants, it still grants by default; the audit reason is what it was.
    link.mint("alice", scopes=["sql.warehouses", "unity-catalog"], ttl=600)
    assert _last_mint(ws).reason == "admin issued a token for alice@example.com"


@pytest.mark.parametrize("runtime", ["lakehouse", "APPS", 5])
def test_an_unknown_runtime_is_a_400(ws, runtime):
    response = _admin_post(ws, "/tokens", {"principal": "alice", "scopes": ["sql"], "runtime": runtime})
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert response.json()["message"].startswith("Field 'runtime' must be ")
    with pytest.raises(BadRequest, match=re.escape(f"Unknown runtime {str(runtime)!r}: a downscoped token is minted for one of model_serving, apps.")):
        ws.issue_token("alice", scopes=["sql"], runtime=str(runtime))


def test_no_token_appears_in_an_error_the_audit_or_a_repr(ws, link):
    token = link.mint("alice", scopes=["sql", "vector-search"], ttl=600, runtime="apps")
    # The Apps API needs apps.apps, which no App's user token can hold.
    with pytest.raises(PermissionDenied) as denied:
        WorkspaceClient(host=ws.url, token=token).apps.get("hr-assistant")
    assert "needs the API scope 'apps.apps'" in str(denied.value) and token not in str(denied.value)
    with pytest.raises(WorkspaceRefused) as refused:
        link.mint("alice", scopes=["sql.warehouses"], ttl=600, runtime="apps")
    assert ws.state.admin_token not in refused.value.message
    assert not any(token in repr(record) or ws.state.admin_token in repr(record) for record in ws.audit())
    assert ws.state.admin_token not in repr(link)
