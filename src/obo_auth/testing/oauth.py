"""A user's WorkspaceClient that authenticates with OAuth, as one does after ``databricks auth login``.

Calling a Databricks App by name (``DatabricksOpenAI(...).responses.create(model="apps/<name>")``)
needs an OAuth client: databricks_openai asks ``config.oauth_token()`` first and refuses a
personal access token. A local workspace has no browser login, so this presents a token the
workspace issued for the user through the SDK's own ``OAuthCredentialsProvider``: the released
client's check and its per-call ``Authorization`` header both go through the SDK's protocol.
"""

from __future__ import annotations

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.credentials_provider import CredentialsStrategy, OAuthCredentialsProvider
from databricks.sdk.oauth import Token

from obo_auth.credentials import IsolatedConfig
from obo_auth.token import UserToken

__all__ = ["oauth_user_client"]


class _UserOAuth(CredentialsStrategy):
    def __init__(self, token: UserToken):
        self._token = token

    def auth_type(self) -> str:
        return "oauth-u2m"

    def __call__(self, cfg: Config) -> OAuthCredentialsProvider:
        return OAuthCredentialsProvider(
            lambda: {"Authorization": f"Bearer {self._token.value}"},
            lambda: Token(access_token=self._token.value, token_type="Bearer"),
        )

    def __repr__(self) -> str:
        return f"UserOAuth({self._token.fingerprint})"


def oauth_user_client(host: str, token: str) -> WorkspaceClient:
    """A WorkspaceClient for ``host`` acting with the user's OAuth ``token``, and nothing from the
    environment or ``~/.databrickscfg`` (the developer's own login never joins it)."""
    return WorkspaceClient(config=IsolatedConfig(host=host, credentials_strategy=_UserOAuth(UserToken(token, "oauth_user_client"))))
