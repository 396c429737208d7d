"""Unity Catalog HTTP connections: state and rules, no HTTP.

A connection holds the upstream it reaches and the credential it sends there; callers never
see the credential. It has exactly one kind of credential, as a platform connection has one
auth type: a shared one (bearer token; OAuth M2M and U2M shared look the same upstream: every
caller's request carries one token), or one per user (OAuth U2M per user: each user signs in
once). A per-user connection never falls back to a shared token: a caller who has not signed
in is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from obo_auth.http_edge import NotFound, PermissionDenied
from obo_auth.local.connections.upstream import Upstream
from obo_auth.local.identity.models import Principal
from obo_auth.redact import fingerprint

# The header that tells the upstream whose credential the request carries (a user name, or
# SHARED): a local addition, so that tests can assert on it; the platform sends no such header.
CREDENTIAL_OF_HEADER = "X-Obo-Auth-Credential-Of"
# Who a shared credential belongs to, as that header says.
SHARED = "connection"


@dataclass(frozen=True)
class Credential:
    owner: str  # SHARED, or the user name whose own credential it is
    token: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credential(owner={self.owner!r}, token={fingerprint(self.token)})"


@dataclass(frozen=True)
class Connection:
    name: str
    upstream: Upstream
    shared: Credential | None = None
    per_user: Mapping[str, Credential] = field(default_factory=dict)  # user name -> their credential
    comment: str | None = None

    @property
    def auth_type(self) -> str:
        """The platform's name for the connection's auth type, for messages."""
        return "OAuth U2M per user" if self.per_user else "bearer token"

    def credential_for(self, principal: Principal) -> Credential:
        """The credential a request by ``principal`` carries (their USE CONNECTION already checked)."""
        if self.shared is not None:
            return self.shared
        credential = self.per_user.get(principal.name)
        if credential is None:
            raise PermissionDenied(
                f"Connection '{self.name}' uses per-user credentials ({self.auth_type}) and {principal.name} "
                "has not signed in to its service: each user signs in once (in the local workspace: add "
                "them to the connection's per_user_tokens in the seed)."
            )
        return credential

    def secrets(self) -> list[str]:
        return [c.token for c in ([self.shared] if self.shared else []) + list(self.per_user.values())]


class ConnectionsBackend:
    def __init__(self, connections: Iterable[Connection]):
        self._connections = {c.name: c for c in connections}

    def __repr__(self) -> str:
        return f"ConnectionsBackend({', '.join(self._connections) or 'no connections'})"

    def names(self) -> list[str]:
        return sorted(self._connections)

    def connection(self, name: str) -> Connection:
        connection = self._connections.get(name)
        if connection is None:
            raise NotFound(f"Connection '{name[:120]}' does not exist.")
        return connection

    def secrets(self) -> list[str]:
        """Every credential of every connection: what no message, record or log may show."""
        return [secret for c in self._connections.values() for secret in c.secrets()]
