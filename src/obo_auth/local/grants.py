"""Who may do what to which securable: Unity Catalog style grants, no HTTP.

A grant gives a privilege on one securable to a user, a group or a service principal. As in
Unity Catalog, a privilege granted on a securable also holds on what it contains (SELECT on
a schema covers its tables): a securable type names its parent (service.py). Checks answer
with the reason, so the audit log can say why a call was allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

from obo_auth.http_edge import PermissionDenied
from obo_auth.local.identity.models import Principal
from obo_auth.local.registry import securable_types


@dataclass(frozen=True)
class Grant:
    grantee: str  # a user name, a group name or a service principal name
    privilege: str
    securable_type: str
    securable: str


def label(securable_type: str) -> str:
    return securable_types()[securable_type].label


class GrantsBackend:
    def __init__(self, grants: list[Grant]):
        self._grants = list(grants)

    def add(self, grant: Grant) -> None:
        self._grants.append(grant)

    def any_on(self, securable_type: str, securable: str) -> bool:
        return any((g.securable_type, g.securable) == (securable_type, securable) for g in self._grants)

    def check(self, principal: Principal, privilege: str, securable_type: str, securable: str) -> str | None:
        """Why ``principal`` holds ``privilege`` on the securable (or on one containing it), or None."""
        types = securable_types()
        on: tuple[str, str] | None = (securable_type, securable)
        while on is not None:
            reason = self._direct(principal, types[on[0]].granting(privilege), *on)
            if reason is not None:
                inherited = "" if on == (securable_type, securable) else f" (inherited by {label(securable_type)} {securable})"
                return reason + inherited
            on = types[on[0]].parent(on[1])
        return None

    def _direct(self, principal: Principal, granting: tuple[str, ...], securable_type: str, securable: str) -> str | None:
        """Why a grant of one of ``granting`` on this very securable holds for ``principal``; the
        lowest level first, so the reason names the least privilege that suffices."""
        for privilege in granting:
            for grant in self._grants:
                if (grant.privilege, grant.securable_type, grant.securable) != (privilege, securable_type, securable):
                    continue
                if grant.grantee in (principal.name, principal.short_name, principal.application_id):
                    return f"{principal.name} has {privilege} on {label(securable_type)} {securable}"
                if grant.grantee in principal.groups:
                    return f"{principal.name} has {privilege} on {label(securable_type)} {securable} through group {grant.grantee}"
        return None

    def require(self, principal: Principal, privilege: str, securable_type: str, securable: str) -> str:
        reason = self.check(principal, privilege, securable_type, securable)
        if reason is None:
            raise PermissionDenied(
                f"User {principal.name} does not have {privilege} on {label(securable_type)} "
                f"'{securable}'. Ask its owner or a workspace admin to grant it."
            )
        return reason
