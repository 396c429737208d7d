"""The connections part of a seed: Unity Catalog HTTP connections, their upstreams and credentials.

Credentials are seed values (fake tokens for tests), and no message may show one: they are
``SecretStr`` once validated, and a value of the wrong shape is swapped for a placeholder before
pydantic sees it, because the seed loader prints the input of a shape error ("got ...").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr, SerializationInfo, field_serializer, model_validator

from obo_auth.local.connections import upstream
from obo_auth.local.seed_parts import NotShown, Strict, duplicates, hide_unless, known, token_problems
from obo_auth.local.service import SeedContext

# One path segment, as obo_auth's UCConnection declarations name a connection.
CONNECTION_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,254}$"


def _hide_token_values(value: Any) -> Any:
    if not isinstance(value, dict):
        return NotShown(value) if value is not None else None
    return {user: token if isinstance(token, str) else NotShown(token) for user, token in value.items()}


class ConnectionSeed(Strict):
    name: str = Field(pattern=CONNECTION_NAME_PATTERN, description="1-255 letters, digits, '_' and '-'")
    url: str = Field(description=f"the upstream: a loopback URL such as {upstream.EXAMPLE}")
    bearer_token: Annotated[SecretStr | None, hide_unless(str)] = Field(
        default=None, description="the shared credential every caller's request carries (a bearer token connection)"
    )
    per_user_tokens: Annotated[dict[str, SecretStr] | None, BeforeValidator(_hide_token_values)] = Field(
        default=None, description="user name: that user's own credential (an OAuth U2M per-user connection)"
    )
    comment: str | None = None

    # A dump of the seed (model_dump) loads again, so the credentials dump as the seed wrote them;
    # only repr, str and JSON dumps keep them hidden.
    @field_serializer("bearer_token", "per_user_tokens", when_used="unless-none")
    def _dump_as_written(self, value: SecretStr | dict[str, SecretStr], info: SerializationInfo) -> Any:
        if info.mode == "json":
            return value if isinstance(value, SecretStr) else dict(value)
        if isinstance(value, dict):
            return {user: token.get_secret_value() for user, token in value.items()}
        return value.get_secret_value()

    @model_validator(mode="before")
    @classmethod
    def _hide_non_mappings(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else NotShown(value)


SEED_FIELDS = {"connections": (Annotated[list[ConnectionSeed], hide_unless(list)], [])}


def check(context: SeedContext) -> Iterator[str]:
    connections = context.seed.connections
    yield from duplicates([(f"connections[{i}].name", c.name) for i, c in enumerate(connections)])
    users = {u.user_name for u in context.seed.users}
    for ci, connection in enumerate(connections):
        yield from _problems(f"connections[{ci}]", connection, users)


def _problems(at: str, connection: ConnectionSeed, users: set[str]) -> Iterator[str]:
    try:
        upstream.parse(connection.url)
    except ValueError as why:
        yield f"field '{at}.url': {why}"
    shared, per_user = connection.bearer_token is not None, connection.per_user_tokens is not None
    if shared == per_user:
        # The platform's connection has one auth type; a mix would silently give a caller who
        # has not signed in someone else's credential.
        yield (
            f"field '{at}': give exactly one of bearer_token (one credential shared by every caller) "
            f"or per_user_tokens (each user's own, OAuth U2M per user), got {'both' if shared else 'neither'}"
        )
    if connection.bearer_token is not None:
        yield from token_problems(f"{at}.bearer_token", connection.bearer_token)
    if per_user and not connection.per_user_tokens:
        yield f"field '{at}.per_user_tokens': name at least one user and their token"
    for user, token in (connection.per_user_tokens or {}).items():
        if user not in users:
            # Only users sign in to a per-user connection; service principals use shared ones.
            yield f"field '{at}.per_user_tokens.{user}': {user!r} is not a declared user (by full user name){known(users, 'users')}"
        yield from token_problems(f"{at}.per_user_tokens.{user}", token)
