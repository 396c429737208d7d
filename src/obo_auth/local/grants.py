"""Who may do what to which securable: Unity Catalog style grants, no HTTP.

A grant gives a privilege on one securable to a user, a group or a service principal.
Checks answer with the reason, so the audit log can say why a call was allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

from obo_auth.http_edge import PermissionDenied
from obo_auth.local.identity.models import Principal

# Securable types and what each privilege is called for them.
SECURABLE_TYPES = {
    "index": "vector search index",
    "vector_search_endpoint": "vector search endpoint",
    "serving_endpoint": "serving endpoint",
    "table": "table",
}
PRIVILEGES = {
    "index": {"SELECT"},
    "vector_search_endpoint": {"CAN_USE"},
    "serving_endpoint": {"CAN_QUERY"},
    "table": {"SELECT"},
}


@dataclass(frozen=True)
class Grant:
    grantee: str  # a user name, a group name or a service principal name
    privilege: str
    securable_type: str
    securable: str


class GrantsBackend:
    def __init__(self, grants: list[Grant]):
        self._grants = list(grants)

    def add(self, grant: Grant) -> None:
        self._grants.append(grant)

    def any_on(self, securable_type: str, securable: str) -> bool:
        return any((g.securable_type, g.securable) == (securable_type, securable) for g in self._grants)

    def check(self, principal: Principal, privilege: str, securable_type: str, securable: str) -> str | None:
        """Why ``principal`` holds ``privilege`` on the securable, or None when it does not."""
        for grant in self._grants:
            if (grant.privilege, grant.securable_type, grant.securable) != (privilege, securable_type, securable):
                continue
            if grant.grantee in (principal.name, principal.short_name):
                return f"{principal.name} has {privilege} on {SECURABLE_TYPES[securable_type]} {securable}"
            if grant.grantee in principal.groups:
                return (
                    f"{principal.name} has {privilege} on {SECURABLE_TYPES[securable_type]} {securable} "
                    f"through group {grant.grantee}"
                )
        return None

    def require(self, principal: Principal, privilege: str, securable_type: str, securable: str) -> str:
        reason = self.check(principal, privilege, securable_type, securable)
        if reason is None:
            raise PermissionDenied(
                f"User {principal.name} does not have {privilege} on {SECURABLE_TYPES[securable_type]} "
                f"'{securable}'. Ask its owner or a workspace admin to grant it."
            )
        return reason
