"""What a caller of local serving may be told about a failure: never a token (``redact.scrub``,
``serving/app.py``). Tokens by shape, even glued to other word characters, and serving's own
credentials by value, whatever their shape; the app in-process, over a real workspace link.

Siblings: test_local_serving.py (a served agent's errors, streamed and not);
test_obo_redaction.py (the request edge's own reprs and errors).
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from obo_auth.redact import fingerprint, scrub
from obo_auth.serving.app import ServedModel, build_app
from obo_auth.serving.revocation import LiveTokens
from obo_auth.serving.workspace_link import WorkspaceLink

PAT = "dapi" + "0123456789abcdef" * 2  # also the shape of every token the local workspace issues
AZURE_PAT = PAT + "-2"
CLIENT_SECRET = "dose" + "fedcba9876543210" * 2
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "text, token",
    [
        (f"used {PAT} here", PAT),
        (f"token{PAT}", PAT),
        (f"x{PAT}y", PAT),
        (f"_{AZURE_PAT}_", AZURE_PAT),
        (f"secret={CLIENT_SECRET}", CLIENT_SECRET),
        (f"client{CLIENT_SECRET}9", CLIENT_SECRET),
        (f"Bearer {JWT}", JWT),
        (f"token{JWT}", JWT),
        (f"Bearer{JWT}", JWT),
    ],
)
def test_anything_token_shaped_is_scrubbed_even_glued_to_word_characters(text, token):
    scrubbed = scrub(text)
    assert token not in scrubbed and fingerprint(token) in scrubbed


def test_secrets_given_by_value_are_scrubbed_whatever_their_shape():
    scrubbed = scrub("admin:my-admin-secret agent:abc123xyz", ["my-admin-secret", "abc123xyz"])
    assert scrubbed == f"admin:{fingerprint('my-admin-secret')} agent:{fingerprint('abc123xyz')}"


class _Leaky:
    """A served model whose failure quotes serving's own credentials."""

    def __init__(self, quoted: str):
        self.quoted = quoted

    def predict(self, payload):
        raise RuntimeError(f"the tool broke: {self.quoted}")


def test_serving_scrubs_its_own_credentials_from_errors_by_value(workspace):
    standing = ["admin-credential-of-any-shape", "agent-credential-of-any-shape"]
    link = WorkspaceLink(workspace.url, workspace.state.admin_token)
    link.register_endpoint("scrubbed")
    served = ServedModel(model=_Leaky(" and ".join(standing)), endpoint="scrubbed", user_scopes=None, agent_principal="obo-agent", serialize=False)
    try:
        with TestClient(build_app(served, link, standing_secrets=lambda: standing, live=LiveTokens())) as client:
            response = client.post("/invocations", json={"input": []}, headers={"Authorization": f"Bearer {workspace.issue_token('alice')}"})
    finally:
        link.close()
    assert response.status_code == 500 and "the tool broke" in response.json()["message"]
    for secret in standing:
        assert secret not in response.text and fingerprint(secret) in response.text
