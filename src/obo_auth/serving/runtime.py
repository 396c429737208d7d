"""What Databricks Model Serving provides inside the model's process, reproduced locally.

- the environment: ``IS_IN_DB_MODEL_SERVING_ENV``, the workspace host, and the agent's own
  OAuth token in ``$SERVING_CREDENTIALS_DIR/model-dependencies-oauth-token`` (written by
  agent_credential.py; the process starts without the developer's credentials, environment.py);
- the invoker's downscoped token, per request, where the runtime puts it: the module
  ``mlflowserving.scoring_server.agent_utils.fetch_obo_token()`` (per request) and the
  process-wide slot ``threading.main_thread().__dict__["invokers_token"]``.

Only the local serving process calls :func:`install`: it changes process-wide state.
"""

from __future__ import annotations

import os
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from obo_auth.private_files import write_private_json

CREDENTIALS_FILE = "model-dependencies-oauth-token"
_SHIM = "mlflowserving.scoring_server.agent_utils"

# The environment variables of a developer's Databricks and cloud logins, none of which a
# serving container has; obo_auth.testing clears them for an agent acting as itself too.
LOGIN_VARIABLE_PREFIXES = ("DATABRICKS_", "ARM_", "GOOGLE_")

_request_token: ContextVar[str | None] = ContextVar("obo_auth_serving_invoker", default=None)


def install(workspace_url: str, agent_token: str, credentials_dir: Path) -> None:
    """Makes this process look like a Model Serving container to the Databricks libraries."""
    write_agent_credentials(credentials_dir, agent_token)
    # In serving no developer credentials exist: no DATABRICKS_*/ARM_*/GOOGLE_* variables, and no
    # ~/.databrickscfg (whose [DEFAULT] profile the SDK would otherwise try before model serving).
    # (The local serving process starts without them already; a benchmark in-process does not.)
    for variable in [v for v in os.environ if v.startswith(LOGIN_VARIABLE_PREFIXES)]:
        del os.environ[variable]
    os.environ["DATABRICKS_CONFIG_FILE"] = str(credentials_dir / "no-databrickscfg")
    os.environ.update(
        {
            "IS_IN_DB_MODEL_SERVING_ENV": "true",
            "DATABRICKS_MODEL_SERVING_HOST_URL": workspace_url,
            "DB_MODEL_SERVING_HOST_URL": workspace_url,
            "SERVING_CREDENTIALS_DIR": str(credentials_dir),
        }
    )
    shim = types.ModuleType(_SHIM)
    shim.fetch_obo_token = _request_token.get
    for parent in ("mlflowserving", "mlflowserving.scoring_server"):
        sys.modules.setdefault(parent, types.ModuleType(parent))
    sys.modules[_SHIM] = shim


def write_agent_credentials(credentials_dir: Path, agent_token: str) -> None:
    write_private_json(credentials_dir / CREDENTIALS_FILE, {"OAUTH_TOKEN": [{"oauthTokenValue": agent_token}]})


@contextmanager
def invoker(token: str) -> Iterator[None]:
    """Hands ``token`` to the agent for one request, in both places the runtime uses."""
    reset = _request_token.set(token)
    slot = threading.main_thread().__dict__
    slot["invokers_token"] = token
    try:
        yield
    finally:
        _request_token.reset(reset)
        if slot.get("invokers_token") == token:  # leave a later request's token alone
            slot.pop("invokers_token", None)
