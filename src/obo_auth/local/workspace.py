"""``LocalWorkspace``: a local Databricks workspace over real HTTP on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from obo_auth.local.audit import AuditRecord
from obo_auth.local.app import build_app
from obo_auth.local.seed import load_seed
from obo_auth.local.server import BackgroundServer
from obo_auth.local.state import WorkspaceState
from obo_auth.scopes import MODEL_SERVING


class LocalWorkspace:
    """A local Databricks workspace that the unmodified Databricks clients talk to.

    Use it as a context manager: on entry it seeds its state (the default seed, or a YAML
    file or dict in the documented schema) and serves real HTTP on 127.0.0.1 on a free port
    (or ``port``); on exit it stops. Several may run at once, each with its own state::

        with LocalWorkspace() as ws:
            w = WorkspaceClient(host=ws.url, token=ws.issue_token("alice"))
            w.current_user.me().user_name  # 'alice@example.com'
    """

    def __init__(self, seed: str | Path | dict | None = None, *, port: int = 0, clock: Callable[[], float] = time.time):
        # Parse and check the whole seed before anything listens: never half-seeded.
        self._state = WorkspaceState(load_seed(seed), clock)
        self._port = port
        self._server: BackgroundServer | None = None

    def __enter__(self) -> LocalWorkspace:
        self._server = BackgroundServer(build_app(self._state), port=self._port)
        self._server.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __repr__(self) -> str:
        where = self._server.url if self._server else "not running"
        return f"LocalWorkspace({where}, workspace_id={self._state.workspace_id})"

    @property
    def url(self) -> str:
        """The host to give to ``WorkspaceClient(host=...)``."""
        if self._server is None:
            raise RuntimeError("The local workspace is not running: use it as `with LocalWorkspace() as ws:`.")
        return self._server.url

    @property
    def state(self) -> WorkspaceState:
        return self._state

    def issue_token(
        self,
        principal: str,
        scopes: Iterable[str] | None = None,
        ttl: float | None = None,
        *,
        actor: str | None = None,
        runtime: str = MODEL_SERVING,
    ) -> str:
        """A token for a user or service principal.

        ``scopes=None`` is an unrestricted personal access token; a list of API scopes makes a
        downscoped token, as Model Serving gives an agent for its invoker (``actor``: the agent's
        service principal), or Databricks Apps an App (``runtime="apps"``). ``ttl`` in seconds;
        None never expires. A scope that is not on the runtime's allowlist (Model Serving's by
        default) raises ValueError naming the nearest valid one.
        """
        identity = self._state.identity
        return identity.issue(identity.find(principal), scopes, ttl, identity.find(actor) if actor else None, runtime)

    def revoke(self, token: str) -> None:
        self._state.identity.revoke(token)

    def audit(self) -> list[AuditRecord]:
        """Every request so far, allowed or denied, one record each, oldest first."""
        return self._state.audit.records()

    def client_credentials(self, service_principal: str) -> tuple[str, str]:
        """``(client_id, client_secret)`` for OAuth M2M as ``service_principal``."""
        principal = self._state.identity.find(service_principal)
        return principal.application_id, self._state.identity.client_secret(principal)

    def environment_for(self, service_principal: str) -> dict[str, str]:
        """The environment variables that make ``WorkspaceClient()`` act as ``service_principal`` here
        (OAuth M2M): how tests and the demo give an agent its own identity outside serving."""
        client_id, client_secret = self.client_credentials(service_principal)
        return {"DATABRICKS_HOST": self.url, "DATABRICKS_CLIENT_ID": client_id, "DATABRICKS_CLIENT_SECRET": client_secret}

    def users(self) -> list[str]:
        return [p.name for p in self._state.identity.users]
