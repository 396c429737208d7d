"""How local serving talks to the local workspace: only over HTTP, through its admin API.

Serving may run in another process than the workspace, as Model Serving does; every
call here is audited by the workspace like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from obo_auth.local.admin.routes import ADMIN_PREFIX


class WorkspaceRefused(Exception):
    """The workspace refused a call; carries its HTTP status and Databricks error body."""

    def __init__(self, status: int, error_code: str, message: str):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


@dataclass(frozen=True)
class WorkspaceAccess:
    """Where a running local workspace listens, and its admin credential (never in the repr)."""

    url: str
    admin_token: str = field(repr=False)


@dataclass(frozen=True)
class Invoker:
    principal: str
    scopes: list[str] | None  # None: an unrestricted token


class WorkspaceLink:
    def __init__(self, url: str, admin_token: str):
        self.url = url
        self._client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30)

    def __repr__(self) -> str:
        return f"WorkspaceLink({self.url})"

    def close(self) -> None:
        self._client.close()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.post(f"{ADMIN_PREFIX}{path}", json=body)
            payload = response.json()
        except (httpx.HTTPError, ValueError):
            raise WorkspaceRefused(503, "TEMPORARILY_UNAVAILABLE", f"The local workspace at {self.url} did not answer; is it still running?") from None
        if response.status_code != 200:
            raise WorkspaceRefused(response.status_code, payload.get("error_code", "UNKNOWN"), payload.get("message", ""))
        return payload

    def register_endpoint(self, name: str) -> None:
        self._post("/serving-endpoints", {"name": name})

    def introspect(self, token: str) -> Invoker:
        """Who ``token`` belongs to; WorkspaceRefused(401) if it is not valid."""
        payload = self._post("/tokens/introspect", {"token": token})
        return Invoker(payload["principal"], payload["scopes"])

    def check_can_query(self, principal: str, endpoint: str) -> None:
        """WorkspaceRefused(403) unless ``principal`` may query the serving endpoint."""
        self._post("/permissions/check", {"principal": principal, "privilege": "CAN_QUERY", "on": {"serving_endpoint": endpoint}})

    def mint(self, principal: str, *, scopes: list[str] | None, ttl: float | None, actor: str | None = None) -> str:
        body = {"principal": principal, "scopes": scopes, "ttl": ttl, "actor": actor}
        return self._post("/tokens", body)["token_value"]

    def revoke(self, token: str, reason: str) -> None:
        """Revokes ``token``; the workspace's 401s for it, and their audit records, say ``reason``."""
        self._post("/tokens/revoke", {"token": token, "reason": reason})
