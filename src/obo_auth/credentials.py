"""Clients for a request: the invoker's, pinned to one token, and the agent's own.

Configuration is resolved once per process (the user client's per host, the system client's
per environment) and each request's user client is derived from it, so neither client costs a network round trip per request.

The user client plugs into the SDK's credentials-strategy protocol. Its ``auth_type`` is
``"pat"`` on purpose: the retriever tools branch on ``config.auth_type`` and, for ``pat``,
copy ``config.host`` and ``config.token``, the pinned token. The other branch they know,
``model_serving_user_credentials``, re-reads the process-wide token slot on every query,
which is exactly the hazard obo_auth exists to remove.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Callable

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.credentials_provider import CredentialsStrategy

from obo_auth.errors import NoInvokerError, RequestEndedError
from obo_auth.invoker import SERVING_FLAGS
from obo_auth.token import UserToken

# The serving runtime names the workspace host in one of these; outside it, DATABRICKS_HOST.
_HOST_VARIABLES = ("DATABRICKS_MODEL_SERVING_HOST_URL", "DB_MODEL_SERVING_HOST_URL", "DATABRICKS_HOST")
# What the agent's own identity depends on: when any of these changes, the system client is rebuilt.
_SYSTEM_ENVIRONMENT = (
    *_HOST_VARIABLES,
    "DATABRICKS_TOKEN",
    "DATABRICKS_CLIENT_ID",
    "DATABRICKS_CLIENT_SECRET",
    "DATABRICKS_CONFIG_PROFILE",
    "DATABRICKS_CONFIG_FILE",
    "SERVING_CREDENTIALS_DIR",
    *SERVING_FLAGS,
)


class PinnedUserToken(CredentialsStrategy):
    """Sends one invoker's token, and only while its request is active; then fails closed."""

    def __init__(self, token: UserToken | None, is_active: Callable[[], bool]):
        self._token = token
        self._is_active = is_active

    def auth_type(self) -> str:
        return "pat"  # see the module docstring: the branch the tools take to use *this* token

    def __call__(self, cfg: Config) -> Callable[[], dict[str, str]]:
        def headers() -> dict[str, str]:
            if self._token is None:
                raise NoInvokerError("This client has no user: derive user clients from obo_auth.current_request().")
            if not self._is_active():
                raise RequestEndedError(
                    f"This user client belonged to a request that has ended ({self._token.fingerprint}); it will not "
                    "act for anyone else. Use obo_auth.current_request().user_client inside the request instead."
                )
            return {"Authorization": f"Bearer {self._token.value}"}

        return headers

    def __repr__(self) -> str:
        return f"PinnedUserToken({self._token!r})"


_system_lock = threading.Lock()
_system: tuple[str, WorkspaceClient] | None = None  # (environment key, client): the latest environment only


def environment_host() -> str:
    for variable in _HOST_VARIABLES:
        if os.environ.get(variable):
            return os.environ[variable]
    raise NoInvokerError(
        "No workspace host: set DATABRICKS_HOST (in Model Serving the runtime sets DATABRICKS_MODEL_SERVING_HOST_URL), "
        "or pass host= to obo_auth.as_user(...)."
    )


def user_client(token: UserToken, host: str | None, is_active: Callable[[], bool]) -> WorkspaceClient:
    """A WorkspaceClient acting as ``token``'s user while ``is_active()``; no HTTP to build it."""
    base = _base_config(host or environment_host())
    config = base.copy()
    # Config.copy() shares the attribute store; give this request its own before setting the token.
    config._inner = dict(base._inner)
    config.token = token.value
    config._credentials_strategy = PinnedUserToken(token, is_active)
    config.init_auth()
    return WorkspaceClient(config=config)


@functools.lru_cache(maxsize=8)
def _base_config(host: str) -> Config:
    """Resolved once per host: the host-metadata round trip happens here, not per request."""
    return Config(host=host, credentials_strategy=PinnedUserToken(None, lambda: False))


def system_client() -> WorkspaceClient:
    """The agent's own identity (in serving: its credentials file), one per environment."""
    global _system
    key = _environment_key()
    with _system_lock:
        if _system is None or _system[0] != key:
            _system = (key, WorkspaceClient())
        return _system[1]


def _environment_key() -> str:
    # Hashed so that secrets in the environment never sit in a dict key in clear.
    values = "\0".join(f"{name}={os.environ.get(name, '')}" for name in _SYSTEM_ENVIRONMENT)
    return hashlib.sha256(values.encode()).hexdigest()
