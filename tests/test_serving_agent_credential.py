"""The agent's own credential in local serving (``serving/agent_credential.py``), in-process
against a real local workspace: short-lived, rotated in its file, revoked and removed at the end.

Sibling: test_local_serving.py stops a real serving process with SIGTERM and checks the same.
"""

from __future__ import annotations

import json
import time

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import Unauthenticated

from obo_auth.serving import runtime
from obo_auth.serving.agent_credential import AgentCredential
from obo_auth.serving.revocation import SERVING_STOPPED
from obo_auth.serving.workspace_link import WorkspaceLink, WorkspaceRefused


@pytest.fixture
def link(workspace):
    link = WorkspaceLink(workspace.url, workspace.state.admin_token)
    yield link
    link.close()


def mounted(credential: AgentCredential) -> str:
    return json.loads((credential.directory / runtime.CREDENTIALS_FILE).read_text())["OAUTH_TOKEN"][0]["oauthTokenValue"]


def whoami(workspace, token: str) -> str:
    return WorkspaceClient(host=workspace.url, token=token).current_user.me().display_name


def test_the_credential_expires_is_rotated_and_is_revoked_and_removed_at_the_end(workspace, link):
    with AgentCredential(link, "obo-agent", ttl=60, rotate_after=0.2) as credential:
        first = credential.current
        runtime.write_agent_credentials(credential.directory, first)  # what runtime.install mounts
        assert credential.directory.stat().st_mode & 0o077 == 0  # the owner's only
        assert workspace.state.identity.lookup(first).expires_at <= time.time() + 60
        deadline = time.monotonic() + 30
        while mounted(credential) == first and time.monotonic() < deadline:
            time.sleep(0.05)
        rotated = mounted(credential)
        assert rotated != first and rotated in credential.tokens()
        # The one it replaced still works: a client may have read the file just before.
        assert whoami(workspace, first) == whoami(workspace, rotated) == "obo-agent"
        minted = credential.tokens()
    assert not credential.directory.exists()
    for token in minted:
        with pytest.raises(Unauthenticated, match=SERVING_STOPPED):
            whoami(workspace, token)
        assert SERVING_STOPPED in workspace.audit()[-1].reason


def test_a_credential_that_cannot_be_minted_leaves_no_directory(workspace, link, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where mkdtemp makes the directory
    monkeypatch.setattr("tempfile.tempdir", None)
    with pytest.raises(WorkspaceRefused, match="No user or service principal named 'nobody'"):
        with AgentCredential(link, "nobody"):
            pass
    assert not list(tmp_path.iterdir())
