"""How local serving and the CLI talk to the local workspace: only over HTTP, through its admin API.

Serving may run in another process than the workspace, as Model Serving does; every
call here is audited by the workspace like any other. Light on purpose (httpx only): the
CLI's quick commands use it, and must not import the workspace's server stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from obo_auth.admin_api import ADMIN_PREFIX, AUDIT_PATH


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
    id: str = ""  # the principal's id in the workspace (SCIM id)


class WorkspaceLink:
    """``minted_for``: the tag of the process this link mints for (serve() gives each serving
    process one), recorded with every token it mints, so that the tokens of a process that was
    killed can be revoked together by the process that started it (:meth:`revoke_minted_for`)."""

    def __init__(self, url: str, admin_token: str, minted_for: str | None = None):
        self.url = url
        self.minted_for = minted_for
        # trust_env=False: the workspace is on loopback; a proxy from the environment must never see the admin credential.
        self._client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30, trust_env=False)

    def __repr__(self) -> str:
        return f"WorkspaceLink({self.url})"

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, json=body, params=params)
            payload = response.json()
        except httpx.ConnectError:
            raise WorkspaceRefused(503, "TEMPORARILY_UNAVAILABLE", f"Nothing answers at {self.url}: the local workspace has stopped; start one with `obo-auth workspace`.") from None
        except (httpx.HTTPError, ValueError):
            raise WorkspaceRefused(503, "TEMPORARILY_UNAVAILABLE", f"The local workspace at {self.url} did not answer; is it still running?") from None
        if response.status_code != 200:
            raise WorkspaceRefused(response.status_code, payload.get("error_code", "UNKNOWN"), payload.get("message", ""))
        return payload

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"{ADMIN_PREFIX}{path}", body)

    def register_endpoint(self, name: str, url: str | None = None, interface: str | None = None) -> None:
        """Declares the agent endpoint ``name``, served at ``url`` (a loopback URL; None: not yet
        served), its agent a ``interface`` ("chat_agent", "responses_agent", "pyfunc"). The
        workspace then relays ``POST /serving-endpoints/{name}/invocations`` there (and Responses
        API requests, unless it is a ChatAgent); registering again replaces the URL."""
        self._post("/serving-endpoints", {"name": name, "url": url, "interface": interface})

    def register_app(self, name: str, url: str | None, user_api_scopes: list[str], service_principal: str) -> dict[str, Any]:
        """Declares the Databricks App ``name`` listening at ``url`` (a loopback URL; None: not
        running), asking for ``user_api_scopes`` (the Databricks Apps allowlist) and running as
        ``service_principal``; registering again replaces those. The App as ``GET /api/2.0/apps/{name}``
        answers it. A new App that nothing is granted on may be used by every identity."""
        body = {"name": name, "url": url, "user_api_scopes": list(user_api_scopes), "service_principal": service_principal}
        return self._post("/apps", body)

    def resource_names(self) -> dict[str, list[str]]:
        """The names of every securable in the workspace by kind: ``serving_endpoint``,
        ``vector_search_index``, ``vector_search_endpoint``, ``table``, ``function``,
        ``genie_space``, ``sql_warehouse``, ``uc_connection``, ``app`` (empty where it has none)."""
        return self._call("GET", f"{ADMIN_PREFIX}/resources")

    def audit(self, since: int = 0) -> tuple[list[dict[str, Any]], int]:
        """The audit records from position ``since`` on (``AuditRecord`` fields), and the
        position to ask from next time."""
        payload = self._call("GET", AUDIT_PATH, params={"since": since})
        return payload["records"], payload["next_since"]

    def principal(self, name: str) -> dict[str, Any]:
        """``{"name", "kind", "application_id"}`` of a user or service principal (short names too)."""
        return self._call("GET", f"{ADMIN_PREFIX}/principals/{quote(name, safe='')}")

    def client_credentials(self, service_principal: str) -> tuple[str, str]:
        """``(client_id, client_secret)`` for OAuth M2M as ``service_principal``."""
        payload = self._post("/client-credentials", {"principal": service_principal})
        return payload["client_id"], payload["client_secret"]

    def introspect(self, token: str) -> Invoker:
        """Who ``token`` belongs to; WorkspaceRefused(401) if it is not valid."""
        payload = self._post("/tokens/introspect", {"token": token})
        return Invoker(payload["principal"], payload["scopes"], payload.get("id", ""))

    def check_can_query(self, principal: str, endpoint: str) -> None:
        """WorkspaceRefused(403) unless ``principal`` may query the serving endpoint."""
        self._post("/permissions/check", {"principal": principal, "privilege": "CAN_QUERY", "on": {"serving_endpoint": endpoint}})

    def check_can_use_app(self, principal: str, app: str) -> None:
        """WorkspaceRefused(403) unless ``principal`` may use the Databricks App ``app``."""
        self._post("/permissions/check", {"principal": principal, "privilege": "CAN_USE", "on": {"app": app}})

    def mint(
        self, principal: str, *, scopes: list[str] | None, ttl: float | None, actor: str | None = None, runtime: str = "model_serving"
    ) -> str:
        """A token for ``principal``; with ``scopes``, downscoped to them, each on the allowlist of
        ``runtime`` ("model_serving", or "apps": a Databricks App's user token)."""
        body = {"principal": principal, "scopes": scopes, "ttl": ttl, "actor": actor, "runtime": runtime, "minted_for": self.minted_for}
        return self._post("/tokens", body)["token_value"]

    def revoke(self, token: str, reason: str) -> None:
        """Revokes ``token``; the workspace's 401s for it, and their audit records, say ``reason``."""
        self._post("/tokens/revoke", {"token": token, "reason": reason})

    def revoke_minted_for(self, minted_for: str, reason: str) -> int:
        """Revokes every live token minted for ``minted_for`` (any link's); how many it revoked."""
        return self._post("/tokens/revoke-minted-for", {"minted_for": minted_for, "reason": reason})["revoked"]
