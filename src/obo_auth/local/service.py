"""What a service of the local workspace declares about itself, so the kernel can assemble it.

Each service is a package under ``obo_auth.local`` whose ``__init__`` defines ``SERVICE``
(the registry, registry.py, finds it there). Adding a service is adding a package: its seed
section, state, routes, securable types, privileges and API scopes are all declared here,
so no other service's files change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from obo_auth.local.state import WorkspaceState


@dataclass(frozen=True)
class ApiScope:
    """The API scope a downscoped token needs to call a family of routes, and where that fact comes from."""

    scope: str
    source: str


@dataclass(frozen=True)
class SecurableType:
    """A kind of securable: what messages call it, the privileges a grant may give on it, and
    (Unity Catalog securables) the securable it lives in, whose grants it inherits."""

    label: str
    privileges: frozenset[str]
    # The containing securable of a name, as (type, name); None for a top-level securable.
    parent: Callable[[str], tuple[str, str] | None] = field(default=lambda name: None)
    # Permission levels, lowest first, each including the ones before it (CAN_USE < CAN_MANAGE):
    # a grant of a level holds every level below it.
    levels: tuple[str, ...] = ()

    def granting(self, privilege: str) -> tuple[str, ...]:
        """The privileges whose grant gives ``privilege``: itself, and the levels above it."""
        return self.levels[self.levels.index(privilege) :] if privilege in self.levels else (privilege,)


@dataclass(frozen=True)
class SeedContext:
    """What a service's seed check may ask about the rest of the seed."""

    seed: Any  # the whole validated seed: a service reads its own sections and those of services it requires
    grantees: frozenset[str]  # every name a grant, member list or row filter may give a principal
    securables: Mapping[str, frozenset[str]]  # securable type -> the names the seed declares


@dataclass(frozen=True)
class Service:
    name: str
    routes: Sequence[BaseRoute] = ()
    # Top-level seed keys this service owns: key -> (type annotation, default). The seed model
    # is assembled from every service's fields (seed.py), so a service's seed models are its own.
    seed_fields: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    securable_types: Mapping[str, SecurableType] = field(default_factory=dict)
    api_scopes: Mapping[str, ApiScope] = field(default_factory=dict)
    # Services whose state this one reads (built first; their seed sections checked first).
    requires: tuple[str, ...] = ()
    # seed -> securable type -> names declared, for grants and cross-references.
    securables: Callable[[Any], Mapping[str, Iterable[str]]] = field(default=lambda seed: {})
    # The seed's meaning (names that must exist, fit, be unique): one message per problem.
    check_seed: Callable[[SeedContext], Iterable[str]] = field(default=lambda context: ())
    # The service's state from the seed; stored as state.services[name].
    build: Callable[[Any, WorkspaceState], Any] | None = None
    # The names of the securables the service holds now, by obo_auth declaration kind
    # (what `GET /api/obo-auth/resources` lists), read from its built state.
    resource_names: Callable[[Any], Mapping[str, list[str]]] = field(default=lambda backend: {})


# Where the scope strings of the services' API_SCOPES come from (see shared/REFERENCE.md).
OBO_DOCS = "Databricks agent-authoring docs, on-behalf-of-user resource table"
ALLOWLIST = "Model Serving allowlist, as the platform's 'Invalid user API scope(s)' message prints it"
