"""The identity part of a seed: users, groups and service principals, and the principals built from them."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

from pydantic import Field

from obo_auth.local.identity.models import (
    ADMIN_NAME,
    ADMINS_GROUP,
    ALL_USERS_GROUP,
    Principal,
    default_application_id,
    service_principal_id,
    user_id,
)
from obo_auth.local.seed_parts import Strict, duplicates
from obo_auth.local.service import SeedContext

# Names the workspace gives itself: its own admin service principal, the group every
# identity is in, and the admin's group. A seed declaring them would shadow or widen them.
RESERVED_NAMES = {
    ADMIN_NAME: "the local workspace's own admin service principal",
    ALL_USERS_GROUP: "the built-in group of every identity: grant to it without declaring it",
    ADMINS_GROUP: "the built-in group of the workspace admin",
}
_NAME = r"^[A-Za-z0-9_.-]+$"
_NAME_HELP = "letters, digits, '_', '.' and '-'"


class UserSeed(Strict):
    user_name: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", description="a full user name such as alice@example.com")
    display_name: str | None = None


class GroupSeed(Strict):
    name: str = Field(pattern=_NAME, description=_NAME_HELP)
    members: list[str] = []


class ServicePrincipalSeed(Strict):
    name: str = Field(pattern=_NAME, description=_NAME_HELP)
    application_id: str | None = None


SEED_FIELDS = {
    "users": (list[UserSeed], []),
    "groups": (list[GroupSeed], []),
    "service_principals": (list[ServicePrincipalSeed], []),
}


def principal_names(seed) -> set[str]:
    """Every name a seed may give a user or service principal by (user name, short name, name, application id)."""
    users = {u.user_name for u in seed.users} | {u.user_name.split("@")[0] for u in seed.users}
    service_principals = {sp.name for sp in seed.service_principals} | {sp.application_id for sp in seed.service_principals if sp.application_id}
    return users | service_principals


def grantee_names(seed) -> frozenset[str]:
    """Every name a grant, member list or row filter may name: principals, groups and the built-in group."""
    return frozenset(principal_names(seed) | {g.name for g in seed.groups} | {ALL_USERS_GROUP})


def check(context: SeedContext) -> Iterator[str]:
    seed = context.seed
    yield from _reserved_and_duplicate_names(seed)
    principals = principal_names(seed)
    for gi, group in enumerate(seed.groups):
        for mi, member in enumerate(group.members):
            if member not in principals:
                yield f"field 'groups[{gi}].members[{mi}]': {member!r} is not a declared user or service principal"


def _reserved_and_duplicate_names(seed) -> Iterator[str]:
    # Grants, group members and row filters name users, service principals and groups by any
    # of these names: each must pick exactly one, and none may be one the workspace gives itself.
    # The workspace also finds a principal by its id, and OAuth M2M a client by its application
    # id: those the workspace derives come first, so a clash is reported at the seed's own field.
    grantee_names = [
        *_derived_identifiers(seed),
        *((f"users[{i}].user_name", name) for i, u in enumerate(seed.users) for name in (u.user_name, u.user_name.split("@")[0])),
        *((f"service_principals[{i}].name", sp.name) for i, sp in enumerate(seed.service_principals)),
        *((f"service_principals[{i}].application_id", sp.application_id) for i, sp in enumerate(seed.service_principals) if sp.application_id),
        *((f"groups[{i}].name", g.name) for i, g in enumerate(seed.groups)),
    ]
    for where, name in grantee_names:
        if name in RESERVED_NAMES:
            yield f"field '{where}': {name!r} is reserved ({RESERVED_NAMES[name]}); choose another name"
    yield from duplicates(grantee_names)


def _derived_identifiers(seed) -> Iterator[tuple[str, str]]:
    """The ids (and default application ids) the workspace gives principals, as principals() does."""
    for i, user in enumerate(seed.users):
        yield f"the id of users[{i}]", user_id(user.user_name)
    for i, sp in enumerate(seed.service_principals):
        yield f"the id of service_principals[{i}]", service_principal_id(sp.name)
        if not sp.application_id:
            yield f"the application_id of service_principals[{i}]", default_application_id(sp.name)
    yield "the id of the workspace's admin", service_principal_id(ADMIN_NAME)
    yield "the application_id of the workspace's admin", default_application_id(ADMIN_NAME)


def principals(seed) -> tuple[list[Principal], dict[str, str]]:
    """The seed's principals (and the workspace's admin), and each service principal's OAuth client secret."""
    memberships: dict[str, set[str]] = {}
    for group in seed.groups:
        for member in group.members:
            memberships.setdefault(member, set()).add(group.name)

    def groups_of(*names: str) -> frozenset[str]:
        return frozenset({ALL_USERS_GROUP}.union(*(memberships.get(n, set()) for n in names)))

    built = [
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
        built.append(
            Principal(
                id=service_principal_id(sp.name),
                name=sp.name,
                display_name=sp.name,
                kind="service_principal",
                groups=groups_of(sp.name, application_id) | ({ADMINS_GROUP} if sp.name == ADMIN_NAME else frozenset()),
                application_id=application_id,
            )
        )
    return built, client_secrets
