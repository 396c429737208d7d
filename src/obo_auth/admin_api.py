"""Paths of the local workspace's admin API, shared by the workspace (``obo_auth.local.admin``)
and its clients (``obo_auth.serving.workspace_link``, the CLI).

Its own module, importing nothing: the clients must not pay for the workspace's server stack
(starlette, pydantic, yaml) just to know where to send a request.
"""

from __future__ import annotations

ADMIN_PREFIX = "/api/2.0/obo-auth/admin"
AUDIT_PATH = f"{ADMIN_PREFIX}/audit"


def is_audit_read(path: str, status: int) -> bool:
    """True for an admin's successful read of the audit log: what ``obo-auth workspace audit
    --follow`` does twice a second, which neither it nor the foreground log should echo back."""
    return path == AUDIT_PATH and status == 200
