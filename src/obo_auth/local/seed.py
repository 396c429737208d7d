"""Seed files: the YAML that says who and what a local workspace holds.

The schema is pydantic models (unknown fields are refused), plus cross-reference checks
(a grant names a principal and a securable that exist, a row filter names real columns).
Any problem raises :class:`SeedError` naming the file, the field and what is expected,
before anything starts: a workspace is never half-seeded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from obo_auth.local._base import ENDPOINT_NAME_PATTERN, UC_NAME_PATTERN
from obo_auth.local.grants import PRIVILEGES, SECURABLE_TYPES
from obo_auth.local.identity.models import (
    ADMIN_NAME,
    ADMINS_GROUP,
    ALL_USERS_GROUP,
    default_application_id,
    service_principal_id,
    user_id,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_SEED = "default_seed.yaml"
# Names the workspace gives itself: its own admin service principal, the group every
# identity is in, and the admin's group. A seed declaring them would shadow or widen them.
RESERVED_NAMES = {
    ADMIN_NAME: "the local workspace's own admin service principal",
    ALL_USERS_GROUP: "the built-in group of every identity: grant to it without declaring it",
    ADMINS_GROUP: "the built-in group of the workspace admin",
}

ColumnType = Literal["string", "int", "double", "boolean"]
_PY_TYPES = {"string": str, "int": int, "double": (int, float), "boolean": bool}


class SeedError(ValueError):
    """A seed file that cannot be used; the message names the file, the field and what is expected."""


class _SeedLoader(yaml.SafeLoader):
    """YAML 1.2 booleans (only true/false): YAML 1.1 reads a grant's bare ``on:`` key as True."""


_SeedLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SeedLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UserSeed(_Strict):
    user_name: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", description="a full user name such as alice@example.com")
    display_name: str | None = None


class GroupSeed(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="letters, digits, '_', '.' and '-'")
    members: list[str] = []


class ServicePrincipalSeed(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="letters, digits, '_', '.' and '-'")
    application_id: str | None = None


class ServingEndpointSeed(_Strict):
    name: str = Field(pattern=ENDPOINT_NAME_PATTERN, description="1-63 letters, digits, '-' and '_'")
    kind: Literal["chat", "embedding", "agent"]  # agent: served by `obo-auth serve`


class VectorSearchEndpointSeed(_Strict):
    name: str = Field(pattern=ENDPOINT_NAME_PATTERN, description="1-63 letters, digits, '-' and '_'")


class RowFilterSeed(_Strict):
    """Hides rows matching ``hide_where`` from everyone not in ``except_for`` (users or groups)."""

    hide_where: dict[str, Any] = Field(min_length=1, description="column: value (or a list of values)")
    except_for: list[str] = []


class IndexSeed(_Strict):
    name: str = Field(pattern=UC_NAME_PATTERN, description="a three-level name catalog.schema.name")
    endpoint: str
    primary_key: str
    text_column: str
    embedding_endpoint: str
    source_table: str | None = Field(default=None, pattern=UC_NAME_PATTERN, description="a three-level name catalog.schema.name")
    columns: dict[str, ColumnType] = Field(min_length=1, description="column name: string, int, double or boolean")
    rows: list[dict[str, Any]] = []
    row_filters: list[RowFilterSeed] = []


class GrantSeed(_Strict):
    principal: str = Field(description="a user name, a group or a service principal")
    privilege: str
    on: dict[Literal["index", "serving_endpoint", "vector_search_endpoint", "table"], str] = Field(
        min_length=1, max_length=1, description="one securable, e.g. {index: main.docs.handbook_index}"
    )

    @field_validator("privilege")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class Seed(_Strict):
    users: list[UserSeed] = []
    groups: list[GroupSeed] = []
    service_principals: list[ServicePrincipalSeed] = []
    serving_endpoints: list[ServingEndpointSeed] = []
    vector_search_endpoints: list[VectorSearchEndpointSeed] = []
    indexes: list[IndexSeed] = []
    grants: list[GrantSeed] = []


def load_seed(source: str | Path | dict | None = None) -> Seed:
    """The seed from a YAML file path, an already-parsed dict, or None for the default seed."""
    if source is None:
        origin = f"{DEFAULT_SEED} (built in)"
        raw = _parse_yaml(origin, resources.files("obo_auth.local").joinpath(DEFAULT_SEED).read_text(encoding="utf-8"))
    elif isinstance(source, dict):
        origin, raw = "seed dict", source
    else:
        origin = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SeedError(f"{origin}: no such seed file.") from None
        except (OSError, UnicodeDecodeError) as exc:  # a directory, no permission, not UTF-8 text
            raise SeedError(f"{origin}: cannot read the seed file ({exc.__class__.__name__}: {exc}).") from None
        raw = _parse_yaml(origin, text)
    if not isinstance(raw, dict):
        raise SeedError(
            f"{origin}: a seed must be a YAML mapping with keys such as {', '.join(Seed.model_fields)}; got {_kind_of(raw)}."
        )
    try:
        seed = Seed.model_validate(raw)
    except ValidationError as exc:
        raise _invalid(origin, [_describe(error) for error in exc.errors()]) from None
    problems = list(_problems(seed))
    if problems:
        raise _invalid(origin, problems)
    return seed


def _parse_yaml(origin: str, text: str) -> Any:
    try:
        return yaml.load(text, Loader=_SeedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise SeedError(f"{origin}: not valid YAML: {exc}") from None


def _invalid(origin: str, problems: list[str]) -> SeedError:
    return SeedError(f"{origin}: invalid seed:\n" + "\n".join(f"  {p}" for p in problems))


# -- the shape: pydantic's errors, said with the field's path and what it expects ------------
def _describe(error: dict[str, Any]) -> str:
    loc = tuple(part for part in error["loc"] if part != "[key]")  # "[key]": a dict key was wrong
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".") or "(top level)"
    model = _model_at(loc)
    if error["type"] == "extra_forbidden":
        expected = f"; expected one of: {', '.join(model.model_fields)}" if model else ""
        return f"field '{where}': unknown field{expected}"
    info = model.model_fields.get(loc[-1]) if model and loc and isinstance(loc[-1], str) else None
    description = info.description if info else None
    if error["type"] == "missing":
        return f"field '{where}': required field is missing" + (f" ({description})" if description else "")
    got = _short_repr(error["input"])
    if error["type"] == "string_pattern_mismatch" and description:  # reads better than the regex
        return f"field '{where}': expected {description}, got {got}"
    return f"field '{where}': {error['msg']}" + (f" ({description})" if description else "") + f", got {got}"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The seed model whose field ``loc`` names, found by following the field annotations."""
    model: type[BaseModel] = Seed
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part) if isinstance(part, str) else None
        inner = [a for a in (info.annotation, *get_args(info.annotation)) if isinstance(a, type) and issubclass(a, BaseModel)] if info else []
        if not inner:
            return None
        model = inner[0]
    return model


# -- the meaning: names that must exist, be unique, or fit the index's columns -------------
def _problems(seed: Seed) -> Iterator[str]:
    user_names = {u.user_name for u in seed.users} | {u.user_name.split("@")[0] for u in seed.users}
    sp_names = {sp.name for sp in seed.service_principals} | {sp.application_id for sp in seed.service_principals if sp.application_id}
    principals = user_names | sp_names
    grantees = principals | {g.name for g in seed.groups} | {ALL_USERS_GROUP}
    securables = {
        "index": {i.name for i in seed.indexes},
        "serving_endpoint": {e.name for e in seed.serving_endpoints},
        "vector_search_endpoint": {e.name for e in seed.vector_search_endpoints},
        "table": {i.name for i in seed.indexes} | {i.source_table for i in seed.indexes if i.source_table},
    }
    yield from _reserved_and_duplicate_names(seed)
    for gi, group in enumerate(seed.groups):
        for mi, member in enumerate(group.members):
            if member not in principals:
                yield f"field 'groups[{gi}].members[{mi}]': {member!r} is not a declared user or service principal"
    embedding_endpoints = {e.name for e in seed.serving_endpoints if e.kind == "embedding"}
    for ii, index in enumerate(seed.indexes):
        at = f"indexes[{ii}]"
        if index.endpoint not in securables["vector_search_endpoint"]:
            yield f"field '{at}.endpoint': {index.endpoint!r} is not a declared vector_search_endpoint{_known(securables['vector_search_endpoint'])}"
        if index.embedding_endpoint not in embedding_endpoints:
            yield f"field '{at}.embedding_endpoint': {index.embedding_endpoint!r} is not a declared serving endpoint of kind embedding{_known(embedding_endpoints)}"
        yield from _index_problems(at, index, grantees)
    for gi, grant in enumerate(seed.grants):
        if grant.principal not in grantees:
            yield f"field 'grants[{gi}].principal': {grant.principal!r} is not a declared user, group or service principal{_known(grantees)}"
        ((kind, name),) = grant.on.items()
        if name not in securables[kind]:
            yield f"field 'grants[{gi}].on.{kind}': {name!r} is not a declared {kind}{_known(securables[kind])}"
        if grant.privilege not in PRIVILEGES[kind]:
            yield (
                f"field 'grants[{gi}].privilege': {grant.privilege!r} is not a privilege on a {SECURABLE_TYPES[kind]}; "
                f"expected one of: {', '.join(sorted(PRIVILEGES[kind]))}"
            )


def _reserved_and_duplicate_names(seed: Seed) -> Iterator[str]:
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
    yield from _duplicates(grantee_names)
    yield from _duplicates([(f"serving_endpoints[{i}].name", e.name) for i, e in enumerate(seed.serving_endpoints)])
    yield from _duplicates([(f"vector_search_endpoints[{i}].name", e.name) for i, e in enumerate(seed.vector_search_endpoints)])
    yield from _duplicates([(f"indexes[{i}].name", index.name) for i, index in enumerate(seed.indexes)])


def _derived_identifiers(seed: Seed) -> Iterator[tuple[str, str]]:
    """The ids (and default application ids) the workspace gives principals, as state.py does."""
    for i, user in enumerate(seed.users):
        yield f"the id of users[{i}]", user_id(user.user_name)
    for i, sp in enumerate(seed.service_principals):
        yield f"the id of service_principals[{i}]", service_principal_id(sp.name)
        if not sp.application_id:
            yield f"the application_id of service_principals[{i}]", default_application_id(sp.name)
    yield "the id of the workspace's admin", service_principal_id(ADMIN_NAME)
    yield "the application_id of the workspace's admin", default_application_id(ADMIN_NAME)


def _duplicates(named: list[tuple[str, str]]) -> Iterator[str]:
    first: dict[str, str] = {}
    for where, name in named:
        if name in first:
            yield f"field '{where}': {name!r} already names {first[name]}; names (and a user's name before the @) must be unique"
        else:
            first[name] = where


def _index_problems(at: str, index: IndexSeed, grantees: set[str]) -> Iterator[str]:
    columns = _known(index.columns, "columns")
    for role in ("primary_key", "text_column"):
        if getattr(index, role) not in index.columns:
            yield f"field '{at}.{role}': {getattr(index, role)!r} is not a column of the index{columns}"
    # (A text column missing from the columns is reported just above.)
    if index.columns.get(index.text_column, "string") != "string":
        yield f"field '{at}.text_column': {index.text_column!r} must be a string column, not {index.columns[index.text_column]}"
    for ri, row in enumerate(index.rows):
        for column, value in row.items():
            kind = index.columns.get(column)
            if kind is None:
                yield f"field '{at}.rows[{ri}].{column}': not a column of the index{columns}"
            # bool is an int in Python, never in the seed's column types.
            elif value is not None and (not isinstance(value, _PY_TYPES[kind]) or (isinstance(value, bool) and kind != "boolean")):
                yield f"field '{at}.rows[{ri}].{column}': expected a value of type {kind}, got {_short_repr(value)}"
    if index.primary_key in index.columns:  # else reported once above, not once per row
        first_row_of: dict[Any, int] = {}
        for ri, row in enumerate(index.rows):
            key = row.get(index.primary_key)
            if key is None:
                yield f"field '{at}.rows[{ri}].{index.primary_key}': required, it is the primary key"
            # A list or mapping key has its wrong type reported above, and cannot be a dict key.
            elif isinstance(key, (str, int, float)) and first_row_of.setdefault(key, ri) != ri:
                yield f"field '{at}.rows[{ri}].{index.primary_key}': duplicate primary key {key!r}, already used by rows[{first_row_of[key]}]"
    for fi, row_filter in enumerate(index.row_filters):
        for column in row_filter.hide_where:
            if column not in index.columns:
                yield f"field '{at}.row_filters[{fi}].hide_where.{column}': not a column of the index{columns}"
        for who in row_filter.except_for:
            if who not in grantees:
                yield f"field '{at}.row_filters[{fi}].except_for': {who!r} is not a declared user, group or service principal"


def _known(names: Any, what: str = "declared") -> str:
    return f"; {what}: {', '.join(sorted(names)) or 'none'}"


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind_of(value: Any) -> str:
    return "nothing (an empty file)" if value is None else f"a {type(value).__name__}"
