"""Two local workspaces in one process: different URLs, ids, identities, tokens and audit logs.

Sibling: tests/test_auth.py covers tokens and the audit log of one workspace.
"""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import Unauthenticated

from obo_auth.http_edge import NotFound
from obo_auth.local import LocalWorkspace

ONLY_DAVE = {"users": [{"user_name": "dave@example.com"}]}


@pytest.fixture(scope="module")
def pair():
    with LocalWorkspace() as first, LocalWorkspace(ONLY_DAVE) as second:
        yield first, second


def test_they_listen_on_different_urls_with_different_workspace_ids(pair):
    first, second = pair
    assert first.url != second.url
    ids = {WorkspaceClient(host=ws.url, token=ws.issue_token(ws.users()[0])).get_workspace_id() for ws in pair}
    assert ids == {int(first.state.workspace_id), int(second.state.workspace_id)} and len(ids) == 2


def test_a_token_from_one_is_401_on_the_other(pair):
    first, second = pair
    token = first.issue_token("alice")
    assert WorkspaceClient(host=first.url, token=token).current_user.me().user_name == "alice@example.com"
    with pytest.raises(Unauthenticated, match="did not issue it"):
        WorkspaceClient(host=second.url, token=token).current_user.me()


def test_identities_and_revocations_are_separate(pair):
    first, second = pair
    assert second.users() == ["dave@example.com"]
    with pytest.raises(NotFound):
        second.issue_token("alice")
    dave = second.issue_token("dave")
    alice = first.issue_token("alice")
    first.revoke(alice)
    with pytest.raises(NotFound):
        first.revoke(dave)  # the first workspace never issued it
    assert WorkspaceClient(host=second.url, token=dave).current_user.me().user_name == "dave@example.com"


def test_audit_logs_are_separate(pair):
    first, second = pair
    before = len(first.audit()), len(second.audit())
    w = WorkspaceClient(host=second.url, token=second.issue_token("dave"))
    for _ in range(3):
        w.current_user.me()

    assert len(first.audit()) == before[0]
    new = second.audit()[before[1] :]
    # The SDK's host-metadata request, then the three calls.
    assert [(r.path, r.principal) for r in new] == [("/.well-known/databricks-config", None)] + [
        ("/api/2.0/preview/scim/v2/Me", "dave@example.com")
    ] * 3
