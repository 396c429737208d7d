"""Everything a local workspace knows, built from a seed; the HTTP layer only reads and asks it.

Each service builds its own state (service.py) in the registry's order, so a service finds
those it requires already built in ``services``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from obo_auth.local.audit import AuditLog
from obo_auth.local.grants import Grant, GrantsBackend
from obo_auth.local.identity.models import ADMIN_NAME, IdentityBackend
from obo_auth.local.registry import services

# Each workspace in a process gets its own id, as real workspaces do.
_workspace_ids = itertools.count(1_000_000_000_000_001)


class WorkspaceState:
    def __init__(self, seed: Any, clock: Callable[[], float] = time.time):
        self.workspace_id = str(next(_workspace_ids))
        self.clock = clock
        self.grants = GrantsBackend(
            [Grant(g.principal, g.privilege, kind, name) for g in seed.grants for kind, name in g.on.items()]
        )
        self.audit = AuditLog()
        self.services: dict[str, Any] = {}
        for service in services():
            if service.build is not None:
                self.services[service.name] = service.build(seed, self)
        # Unambiguous: seeds may not declare the reserved name (identity/seed.py RESERVED_NAMES).
        self.admin = self.identity.find(ADMIN_NAME)
        # The workspace's own admin credential: only it may call the admin API.
        self.admin_token = self.identity.issue(self.admin)

    @property
    def identity(self) -> IdentityBackend:
        return self.services["identity"]

    def resource_names(self) -> dict[str, list[str]]:
        """The names of every securable the services hold, by the kinds obo_auth's resource
        declarations name (local serving checks a model's declarations against them; kinds no
        service holds are absent, and left to the platform)."""
        names: dict[str, list[str]] = {}
        for service in services():
            if service.name in self.services:
                names.update(service.resource_names(self.services[service.name]))
        return names
