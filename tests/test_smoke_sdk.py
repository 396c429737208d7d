"""databricks-sdk against the local workspace: construction, PAT and OAuth M2M auth, SCIM."""

from databricks.sdk import WorkspaceClient


def test_pat_client_knows_who_it_is(workspace):
    w = WorkspaceClient(host=workspace.url, token=workspace.issue_token("alice"))
    assert w.current_user.me().user_name == "alice@example.com"
    assert w.config.auth_type == "pat"


def test_oauth_m2m_client_acts_as_the_service_principal(workspace):
    client_id, client_secret = workspace.client_credentials("obo-agent")
    w = WorkspaceClient(host=workspace.url, client_id=client_id, client_secret=client_secret)
    assert w.config.auth_type == "oauth-m2m"
    assert w.current_user.me().display_name == "obo-agent"
    assert workspace.audit()[-1].principal == "obo-agent"
    token_requests = [r for r in workspace.audit() if r.path == "/oidc/v1/token"]
    assert token_requests and {(r.principal, r.decision) for r in token_requests} == {("obo-agent", "allow")}
