"""Authentication, API scopes and the audit log of the local workspace (``local/handler.py``),
over real HTTP with the unmodified databricks-sdk, and httpx where a request must be raw.

Siblings: tests/test_bad_input.py throws malformed requests at the same edge;
tests/test_two_workspaces.py checks that two workspaces share none of this state.
"""

from __future__ import annotations

import logging

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.credentials_provider import CredentialsStrategy
from databricks.sdk.errors import DatabricksError, PermissionDenied, Unauthenticated
from databricks.sdk.service.serving import ExternalFunctionRequestHttpMethod

from obo_auth.local import LocalWorkspace
from obo_auth.local.admin.routes import ADMIN_PREFIX
from obo_auth.local.registry import api_scopes
from obo_auth.local.identity.models import user_id
from obo_auth.local.seed import seed_model
from obo_auth.local.sql.seed import derived_warehouse_id
from obo_auth.redact import fingerprint
from obo_auth.scopes import ALWAYS_GRANTED_SCOPES, UMBRELLA_SCOPES

ME = "/api/2.0/preview/scim/v2/Me"
INDEX = "main.docs.handbook_index"
WAREHOUSE_ID = derived_warehouse_id("local-warehouse")


class Clock:
    """The workspace's clock seam: time stands still until a test moves it."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class NoCredentials(CredentialsStrategy):
    """The SDK's own credentials protocol, giving no header: requests without Authorization."""

    def auth_type(self) -> str:
        return "no-credentials"

    def __call__(self, cfg):
        return lambda: {}


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def ws(clock):
    with LocalWorkspace(clock=clock) as workspace:
        yield workspace


def sdk(ws: LocalWorkspace, token: str | None) -> WorkspaceClient:
    if token is None:
        return WorkspaceClient(host=ws.url, credentials_strategy=NoCredentials())
    return WorkspaceClient(host=ws.url, token=token)


def raw(ws: LocalWorkspace, method: str, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, ws.url + path, headers=headers)


# -- 401 ------------------------------------------------------------------------------------
# Each case: how to get the token, how to spoil it after one successful call (None: it never
# worked), and what the message must say.
UNAUTHENTICATED_CASES = {
    "no header": (lambda ws: None, None, "No access token"),
    "unknown token": (lambda ws: "dapi" + "0" * 32, None, "did not issue it"),
    "expired token": (lambda ws: ws.issue_token("alice", ttl=60), lambda ws, clock, token: setattr(clock, "now", clock.now + 61), "expired"),
    "revoked token": (lambda ws: ws.issue_token("alice"), lambda ws, clock, token: ws.revoke(token), "revoked"),
}


@pytest.mark.parametrize("case", list(UNAUTHENTICATED_CASES))
def test_every_401_has_the_databricks_shape_and_the_sdk_raises_unauthenticated(ws, clock, case):
    get_token, spoil, says = UNAUTHENTICATED_CASES[case]
    token = get_token(ws)
    if spoil is not None:
        assert raw(ws, "GET", ME, token).status_code == 200, "the token must work before it is spoiled"
        spoil(ws, clock, token)

    response = raw(ws, "GET", ME, token)
    assert response.status_code == 401
    assert set(response.json()) == {"error_code", "message"}
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert says in response.json()["message"]

    with pytest.raises(Unauthenticated, match=says):
        sdk(ws, token).current_user.me()


# -- 403 Invalid scope ------------------------------------------------------------------------
# One SDK call per API family a downscoped token can be denied (the always-granted ones cannot).
SDK_CALLS = {
    "apps": lambda w: list(w.apps.list()),
    "vector-search.endpoints": lambda w: w.vector_search_endpoints.get_endpoint("docs-endpoint"),
    "vector-search.indexes": lambda w: w.vector_search_indexes.get_index(INDEX),
    "serving.endpoints": lambda w: w.serving_endpoints.get("chat-model"),
    "unity-catalog.tables": lambda w: w.tables.get(INDEX),
    "unity-catalog.functions": lambda w: w.functions.get("main.tools.whoami"),
    "sql.warehouses": lambda w: w.warehouses.get(WAREHOUSE_ID),
    "sql.statements": lambda w: w.statement_execution.execute_statement("SELECT 1", WAREHOUSE_ID),
    "genie": lambda w: w.genie.list_spaces(),
    "unity-catalog.connections": lambda w: w.serving_endpoints.http_request(conn="echo", method=ExternalFunctionRequestHttpMethod.GET, path="/"),
}
# Scopes a family's routes need besides its own (UC connections: the platform pairs two;
# obo_auth/local/connections/scopes.py).
ALSO_NEEDED = {"unity-catalog.connections": ["serving.serving-endpoints"]}


def test_every_deniable_api_family_has_an_sdk_call_here():
    assert set(SDK_CALLS) == {family for family, s in api_scopes().items() if s.scope not in ALWAYS_GRANTED_SCOPES}


@pytest.mark.parametrize("family", sorted(SDK_CALLS))
def test_a_token_without_the_scope_gets_403_invalid_scope_naming_it(ws, family):
    needed = api_scopes()[family].scope
    every_other_scope = sorted({s.scope for s in api_scopes().values()} - {needed})

    with pytest.raises(PermissionDenied) as denied:
        SDK_CALLS[family](sdk(ws, ws.issue_token("alice", scopes=every_other_scope)))
    assert "Invalid scope" in str(denied.value)
    assert f"'{needed}'" in str(denied.value)
    # With the scope the same call succeeds: the denial was the scope, not alice's grants.
    SDK_CALLS[family](sdk(ws, ws.issue_token("alice", scopes=[needed, *ALSO_NEEDED.get(family, [])])))


# What each short umbrella name covers, among the API families above (Databricks OBO docs, newer
# edition); written out here rather than read from obo_auth.scopes, so the test can disagree.
UMBRELLA_COVERS = {
    "vector-search": {"vector-search.endpoints", "vector-search.indexes"},
    "model-serving": {"serving.endpoints"},
    "sql": {"sql.warehouses", "sql.statements"},
    "genie": {"genie"},
    "apps": {"apps"},
}


def test_every_umbrella_scope_is_tested():
    assert set(UMBRELLA_COVERS) == set(UMBRELLA_SCOPES)


@pytest.mark.parametrize("umbrella", sorted(UMBRELLA_COVERS))
@pytest.mark.parametrize("family", sorted(SDK_CALLS))
def test_an_umbrella_scope_covers_its_dotted_scopes_and_nothing_else(ws, umbrella, family):
    w = sdk(ws, ws.issue_token("alice", scopes=[umbrella]))
    if family in UMBRELLA_COVERS[umbrella]:
        SDK_CALLS[family](w)
    else:
        with pytest.raises(PermissionDenied, match="Invalid scope"):
            SDK_CALLS[family](w)


@pytest.mark.parametrize("scopes", [[], ["serving.serving-endpoints"], ["vector-search"], ["unity-catalog"]])
def test_current_user_and_directory_reads_are_always_granted(ws, scopes):
    w = sdk(ws, ws.issue_token("alice", scopes=scopes))
    assert w.current_user.me().user_name == "alice@example.com"
    assert "bob@example.com" in {u.user_name for u in w.users.list()}


# -- the audit log -----------------------------------------------------------------------------
def test_one_audit_record_per_request_allowed_or_denied(ws, clock):
    agent = ws.issue_token("alice", scopes=["vector-search"], actor="obo-agent")
    bob = ws.issue_token("bob")
    revoked = ws.issue_token("carol")
    ws.revoke(revoked)
    index_path = f"/api/2.0/vector-search/indexes/{INDEX}"
    # token, method, path -> status, principal, actor, resource, decision, what the reason says
    calls = [
        (agent, "GET", index_path, 200, "alice@example.com", "obo-agent", f"index:{INDEX}", "allow", "has SELECT"),
        (agent, "GET", "/api/2.0/serving-endpoints/chat-model", 403, "alice@example.com", "obo-agent", None, "deny", "Invalid scope"),
        (bob, "GET", index_path, 403, "bob@example.com", None, f"index:{INDEX}", "deny", "does not have SELECT"),
        (revoked, "GET", ME, 401, "carol@example.com", None, None, "deny", "revoked"),
        (None, "GET", ME, 401, None, None, None, "deny", "No access token"),
        (bob, "DELETE", ME, 404, "bob@example.com", None, None, "deny", "No API found"),
    ]
    before = len(ws.audit())
    times = []
    for token, method, path, status, *_ in calls:
        clock.now += 1
        times.append(clock.now)
        response = raw(ws, method, path, token)
        assert response.status_code == status
        assert status == 200 or set(response.json()) == {"error_code", "message"}

    records = ws.audit()[before:]
    assert len(records) == len(calls)
    for record, when, (token, method, path, status, principal, actor, resource, decision, says) in zip(records, times, calls):
        assert (record.time, record.method, record.path, record.status) == (when, method, path, status)
        assert (record.principal, record.actor, record.resource, record.decision) == (principal, actor, resource, decision)
        assert says in record.reason
        assert record.scopes == (("vector-search",) if token == agent else None)
        assert record.token_fingerprint == (fingerprint(token) if token else None)


def test_no_token_appears_in_audit_responses_errors_reprs_or_logs(ws, clock, caplog, capfd):
    # Every logger at DEBUG (the SDK's and urllib3's included); loggers that do not propagate to
    # caplog (uvicorn's) write to the process's stderr, which capfd (capsys at fd level) sees.
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    secrets = {
        "never issued": "dapi" + "5ec7e7" * 5 + "00",
        "workspace admin": ws.state.admin_token,
        "pat": ws.issue_token("alice"),
        "downscoped": ws.issue_token("alice", scopes=["serving.serving-endpoints"], actor="obo-agent"),
        "denied by grants": ws.issue_token("bob"),
        "revoked": ws.issue_token("carol"),
        "expired": ws.issue_token("carol", ttl=5),
    }
    ws.revoke(secrets["revoked"])
    clock.now += 10
    client_id, secrets["client secret"] = ws.client_credentials("obo-agent")
    m2m = WorkspaceClient(host=ws.url, client_id=client_id, client_secret=secrets["client secret"])
    secrets["m2m"] = m2m.config.authenticate()["Authorization"].removeprefix("Bearer ")

    bodies: list[str] = []
    errors: list[DatabricksError] = []
    clients = [m2m, *(sdk(ws, secrets[name]) for name in ("never issued", "pat", "downscoped", "denied by grants", "revoked", "expired"))]
    calls = (lambda w: w.current_user.me(), *SDK_CALLS.values(), lambda w: w.vector_search_indexes.get_index("main.docs.nope"))
    for w in clients:
        # An observer on the SDK's own HTTP session: it sees every workspace response the SDK reads.
        w.api_client._api_client._session.hooks["response"].append(lambda r, *args, **kwargs: bodies.append(r.text))
        for call in calls:
            try:
                call(w)
            except DatabricksError as error:
                errors.append(error)
    assert {type(e) for e in errors} >= {Unauthenticated, PermissionDenied}, "the canary needs denied calls"
    assert len(errors) < len(clients) * len(calls), "the canary needs allowed calls"
    assert any(r.name.startswith("databricks.sdk") for r in caplog.records), "the SDK's debug log must be captured"

    out, err = capfd.readouterr()
    where = {
        "audit": [text for r in ws.audit() for text in (str(r), repr(r), str(r.to_dict()))],
        "response bodies": bodies,
        "SDK errors": [text for e in errors for text in (str(e), repr(e), str(e.details))],
        "reprs": [repr(ws), repr(ws.state.identity.lookup(secrets["pat"]))],
        "logs": [caplog.text, *(r.getMessage() for r in caplog.records), out, err],
    }
    for name, secret in secrets.items():
        for place, texts in where.items():
            assert not any(secret in text for text in texts), f"the {name} token leaked into {place}"


@pytest.mark.parametrize("route", ["/tokens", "/tokens/introspect", "/tokens/revoke", "/permissions/check", "/serving-endpoints"])
def test_only_the_admin_credential_may_call_the_admin_api(workspace, route):
    body = {"principal": "alice", "token": "x", "reason": "r", "privilege": "CAN_QUERY", "on": {"serving_endpoint": "chat-model"}, "name": "agent"}
    for caller in ("alice", "obo-agent"):
        response = httpx.post(
            f"{workspace.url}{ADMIN_PREFIX}{route}", json=body, headers={"Authorization": f"Bearer {workspace.issue_token(caller)}"}
        )
        assert response.status_code == 403 and "admin credential" in response.json()["message"]
        assert workspace.audit()[-1].decision == "deny"
    allowed = httpx.post(f"{workspace.url}{ADMIN_PREFIX}/tokens", json={"principal": "alice"}, headers={"Authorization": f"Bearer {workspace.state.admin_token}"})
    assert allowed.status_code == 200 and workspace.audit()[-1].principal == "workspace-admin"


def test_a_display_name_never_stands_for_a_group_or_another_principal():
    """Display names are not unique: a user displayed as 'hr' or 'obo-agent' gains nothing by it."""
    seed = {
        "users": [{"user_name": "mallory@example.com", "display_name": "hr"}, {"user_name": "eve@example.com", "display_name": "obo-agent"}],
        "groups": [{"name": "hr", "members": []}],
        "service_principals": [{"name": "obo-agent"}],
        "serving_endpoints": [{"name": "chat-model", "kind": "chat"}],
        "grants": [{"principal": "hr", "privilege": "CAN_QUERY", "on": {"serving_endpoint": "chat-model"}}],
    }
    with LocalWorkspace(seed) as ws:
        mallory = WorkspaceClient(host=ws.url, token=ws.issue_token("mallory"))
        with pytest.raises(PermissionDenied):
            mallory.serving_endpoints.get("chat-model")
        agent = WorkspaceClient(host=ws.url, token=ws.issue_token("obo-agent"))
        me = agent.current_user.me()
        # As the platform answers: a service principal's userName is its application id.
        assert (me.display_name, me.user_name) == ("obo-agent", ws.client_credentials("obo-agent")[0])


def admin_post(ws: LocalWorkspace, route: str, body: dict) -> httpx.Response:
    return httpx.post(f"{ws.url}{ADMIN_PREFIX}{route}", json=body, headers={"Authorization": f"Bearer {ws.state.admin_token}"})


def test_a_token_revoked_through_the_admin_api_says_why_in_its_401_and_audit_record(ws):
    token = ws.issue_token("bob")
    revoked = admin_post(ws, "/tokens/revoke", {"token": token, "reason": "token of a test that ended"})
    assert revoked.status_code == 200 and token not in revoked.text
    assert ws.audit()[-1].reason == "admin revoked a token of bob@example.com (token of a test that ended)"
    # Revoked again, it keeps the first reason: when and why it stopped working.
    assert admin_post(ws, "/tokens/revoke", {"token": token, "reason": "another reason"}).json()["reason"] == "token of a test that ended"

    with pytest.raises(Unauthenticated, match=r"revoked \(token of a test that ended\)"):
        sdk(ws, token).current_user.me()
    assert "token of a test that ended" in ws.audit()[-1].reason and ws.audit()[-1].principal == "bob@example.com"


@pytest.mark.parametrize("reason", ["", "two\nlines", "x" * 201])
def test_a_revocation_reason_is_one_short_line(ws, reason):
    refused = admin_post(ws, "/tokens/revoke", {"token": ws.issue_token("bob"), "reason": reason})
    assert refused.status_code == 400 and "Field 'reason'" in refused.json()["message"]


def test_oauth_m2m_finds_the_client_by_its_application_id_only(mocker):
    """Were a seed to give a service principal alice's principal id as its application id (the seed
    check refuses it: test_seed.py), client credentials would still sign in that client, never alice."""
    seed = {"users": [{"user_name": "alice@example.com"}], "service_principals": [{"name": "bot", "application_id": user_id("alice@example.com")}]}
    mocker.patch("obo_auth.local.workspace.load_seed", seed_model().model_validate)  # past the seed check
    with LocalWorkspace(seed) as ws:
        client_id, client_secret = ws.client_credentials("bot")
        m2m = WorkspaceClient(host=ws.url, client_id=client_id, client_secret=client_secret, auth_type="oauth-m2m")
        assert m2m.current_user.me().display_name == "bot"
        assert ws.audit()[-1].principal == "bot"
        # The client's name is not its client id, even with its own secret.
        with pytest.raises(ValueError, match="invalid_client"):
            WorkspaceClient(host=ws.url, client_id="bot", client_secret=client_secret, auth_type="oauth-m2m").current_user.me()
