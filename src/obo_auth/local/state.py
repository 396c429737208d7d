"""Everything a local workspace knows, built from a seed; the HTTP layer only reads and asks it."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable

from obo_auth.local.audit import AuditLog
from obo_auth.local.grants import Grant, GrantsBackend
from obo_auth.local.identity.models import (
    ADMIN_NAME,
    ADMINS_GROUP,
    ALL_USERS_GROUP,
    IdentityBackend,
    Principal,
    default_application_id,
    service_principal_id,
    user_id,
)
from obo_auth.local.seed import IndexSeed, Seed, ServicePrincipalSeed
from obo_auth.local.serving.models import ServingBackend, ServingEndpoint
from obo_auth.local.vectorsearch.models import Index, RowFilter, VectorSearchBackend

# Each workspace in a process gets its own id, as real workspaces do.
_workspace_ids = itertools.count(1_000_000_000_000_001)


class WorkspaceState:
    def __init__(self, seed: Seed, clock: Callable[[], float] = time.time):
        self.workspace_id = str(next(_workspace_ids))
        principals, client_secrets = _principals(seed)
        self.identity = IdentityBackend(principals, client_secrets, clock)
        self.grants = GrantsBackend(
            [Grant(g.principal, g.privilege, kind, name) for g in seed.grants for kind, name in g.on.items()]
        )
        self.vector_search = VectorSearchBackend([e.name for e in seed.vector_search_endpoints], [_index(i) for i in seed.indexes])
        self.serving = ServingBackend([ServingEndpoint(e.name, e.kind) for e in seed.serving_endpoints])
        self.audit = AuditLog()
        # Unambiguous: seeds may not declare the reserved name (seed.RESERVED_NAMES).
        self.admin = self.identity.find(ADMIN_NAME)
        # The workspace's own admin credential: only it may call the admin API.
        self.admin_token = self.identity.issue(self.admin)

    def register_agent_endpoint(self, name: str, url: str | None = None) -> bool:
        """Declares an agent served by obo_auth's local serving at ``url`` (again: a new URL);
        True if the endpoint did not exist yet.

        Every identity may query it unless the seed already grants something on it.
        """
        created = self.serving.register_agent(name, url)
        if not self.grants.any_on("serving_endpoint", name):
            self.grants.add(Grant(ALL_USERS_GROUP, "CAN_QUERY", "serving_endpoint", name))
        return created

    def resource_names(self) -> dict[str, list[str]]:
        """The names of every securable, by kind (the kinds obo_auth's resource declarations
        name; those the emulator has none of yet are empty)."""
        indexes = self.vector_search.indexes()
        return {
            "serving_endpoint": sorted(e.name for e in self.serving.endpoints()),
            "vector_search_index": sorted(i.name for i in indexes),
            "vector_search_endpoint": sorted(self.vector_search.endpoints),
            # The catalog holds only the source tables of indexes (catalog/routes.py).
            "table": sorted({i.source_table for i in indexes if i.source_table}),
            "function": [],
            "genie_space": [],
            "sql_warehouse": [],
            "uc_connection": [],
        }


def _principals(seed: Seed) -> tuple[list[Principal], dict[str, str]]:
    memberships: dict[str, set[str]] = {}
    for group in seed.groups:
        for member in group.members:
            memberships.setdefault(member, set()).add(group.name)

    def groups_of(*names: str) -> frozenset[str]:
        return frozenset({ALL_USERS_GROUP}.union(*(memberships.get(n, set()) for n in names)))

    principals = [
        Principal(
            id=user_id(u.user_name),
            name=u.user_name,
            display_name=u.display_name or u.user_name.split("@")[0].title(),
            kind="user",
            groups=groups_of(u.user_name, u.user_name.split("@")[0]),
        )
        for u in seed.users
    ]
    client_secrets = {}
    for sp in [*seed.service_principals, ServicePrincipalSeed(name=ADMIN_NAME)]:
        application_id = sp.application_id or default_application_id(sp.name)
        client_secrets[application_id] = "dose" + secrets.token_hex(16)
        principals.append(
            Principal(
                id=service_principal_id(sp.name),
                name=sp.name,
                display_name=sp.name,
                kind="service_principal",
                groups=groups_of(sp.name, application_id) | ({ADMINS_GROUP} if sp.name == ADMIN_NAME else frozenset()),
                application_id=application_id,
            )
        )
    return principals, client_secrets


def _index(seed: IndexSeed) -> Index:
    return Index(
        name=seed.name,
        endpoint=seed.endpoint,
        primary_key=seed.primary_key,
        text_column=seed.text_column,
        embedding_endpoint=seed.embedding_endpoint,
        source_table=seed.source_table,
        columns=dict(seed.columns),
        rows=tuple(dict(r) for r in seed.rows),
        row_filters=tuple(RowFilter(dict(f.hide_where), frozenset(f.except_for)) for f in seed.row_filters),
    )
