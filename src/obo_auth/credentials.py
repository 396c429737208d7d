"""Clients for a request: the invoker's, bound to whichever request uses it, and the agent's own.

The user client plugs into the SDK's credentials-strategy protocol, and holds no token: its
strategy asks scope.invoker_token() for the token of the request in progress on every call.
Its ``auth_type`` is ``"pat"`` on purpose: the retriever tools branch on ``config.auth_type``
and, for ``pat``, copy ``config.host`` and ``config.token`` into the vector-search client,
which formats ``f"Bearer {token}"`` per request. ``config.token`` is therefore a
:class:`RequestBoundToken`: a string whose characters are an inert placeholder and whose
formatted value is the current request's token. The other branch the tools know,
``model_serving_user_credentials``, re-reads the process-wide token slot on every query,
which is exactly the hazard obo_auth exists to remove.

Configuration is resolved once per process (the user client per host, the system client per
environment), so neither client costs a network round trip per request.
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

from obo_auth.errors import NoInvokerError
from obo_auth.invoker import SERVING_FLAGS
from obo_auth.scope import invoker_token

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
# How long the user client and the system client retry a call the workspace answers with 429 or
# 503, or cannot be reached for, before it raises (databricks-sdk's retried(): TimeoutError, the last error as its
# cause). The SDK's default is 300 s, longer than the request it runs in: Model Serving ends a
# request at 297 s (obo_auth's max_request_seconds defaults to 300), so a throttled or unreachable
# workspace would hang the request until the platform kills it, and the user would get a gateway
# timeout instead of an answer that says what failed. 30 s rides
# out a throttling burst or a restart (about 15 attempts at the SDK's 1 s default Retry-After, or
# 6 connection attempts at its 1, 2, 3 ... s back-off), and leaves the request 267 s: an agent can
# make several such calls in a row, and still answer. The bound also applies to the host-metadata
# probe when a client is first built, so a workspace unreachable from the very first
# request costs two bounds. A Retry-After longer than the bound is still honoured once: the SDK
# checks its deadline only between attempts.
RETRY_TIMEOUT_SECONDS = 30
# What a request-bound token's characters are: not a token, refused by any workspace, and
# refused by obo_auth.as_user (":" cannot appear in a bearer token).
PLACEHOLDER = "obo_auth:request-bound-user-token"


class RequestBoundToken(str):
    """The token tools copy from ``user_client.config.token``.

    Formatted (``f"Bearer {token}"``, ``format``), it is the token of the request in progress,
    if that request is for the workspace it was built for; outside a live request formatting
    raises without anything being sent. Every other way to read it (``str()``, ``repr``,
    concatenation, ``encode``, JSON, pickle) gives only the placeholder, which no workspace
    accepts: a path that bypasses it fails closed.
    """

    def __new__(cls, host: str) -> RequestBoundToken:
        bound = super().__new__(cls, PLACEHOLDER)
        bound._host = host
        return bound

    def __format__(self, spec: str) -> str:
        return format(invoker_token(self._host), spec)

    def __str__(self) -> str:
        return PLACEHOLDER

    def __repr__(self) -> str:
        return f"RequestBoundToken(for the request in progress at {self._host})"

    def __reduce__(self):
        return (str, (PLACEHOLDER,))  # a pickled copy is the inert placeholder

    def __copy__(self) -> RequestBoundToken:
        return self

    def __deepcopy__(self, memo: dict) -> RequestBoundToken:
        return self


class RequestInvoker(CredentialsStrategy):
    """Sends the token of the request each call is made in, only to the workspace it was built for."""

    def __init__(self, host: str):
        self._host = host

    def auth_type(self) -> str:
        return "pat"  # see the module docstring: the branch on which the tools copy config.token

    def __call__(self, cfg: Config) -> Callable[[], dict[str, str]]:
        return lambda: {"Authorization": f"Bearer {invoker_token(self._host)}"}

    def __repr__(self) -> str:
        return f"RequestInvoker({self._host})"


class IsolatedConfig(Config):
    """A Config that takes nothing from the environment or ~/.databrickscfg.

    The user client must carry the invoker's identity only: no client id or secret of the
    agent (DATABRICKS_CLIENT_*), no developer token, no profile that a tool could pick up.
    (tests/test_obo_identity.py::test_the_user_client_carries_no_ambient_credentials guards
    these two overrides of the SDK's loaders.)
    """

    # Config.attributes() caches what it finds in the class's own __dict__: a subclass would
    # find nothing and set no attribute at all, so it shares Config's list.
    _attributes = Config.attributes()

    def _load_from_env(self) -> None:
        pass

    def _known_file_config_loader(self) -> None:
        pass


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


@functools.lru_cache(maxsize=8)
def user_client(host: str) -> WorkspaceClient:
    """The user client for ``host`` (normalized): one per process, since it holds no identity.

    Built once: the host-metadata round trip happens here, not per request.
    """
    config = IsolatedConfig(host=host, credentials_strategy=RequestInvoker(host), retry_timeout_seconds=RETRY_TIMEOUT_SECONDS)
    # Straight into the attribute store: the `token` descriptor would str() it into the placeholder.
    config._inner["token"] = RequestBoundToken(host)
    return WorkspaceClient(config=config)


def system_client() -> WorkspaceClient:
    """The agent's own identity (in serving: its credentials file), one per environment."""
    global _system
    key = _environment_key()
    with _system_lock:
        if _system is None or _system[0] != key:
            _system = (key, WorkspaceClient(config=Config(retry_timeout_seconds=RETRY_TIMEOUT_SECONDS)))
        return _system[1]


def _environment_key() -> str:
    # Hashed so that secrets in the environment never sit in a dict key in clear.
    values = "\0".join(f"{name}={os.environ.get(name, '')}" for name in _SYSTEM_ENVIRONMENT)
    return hashlib.sha256(values.encode()).hexdigest()
