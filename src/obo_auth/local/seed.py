"""Seed files: the YAML that says who and what a local workspace holds.

The schema is pydantic models (unknown fields are refused), plus cross-reference checks
(a grant names a principal and a securable that exist, a row filter names real columns).
Any problem raises :class:`SeedError` naming the file, the field and what is expected,
before anything starts: a workspace is never half-seeded.
"""

from __future__ import annotations

from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from obo_auth.local.grants import PRIVILEGES
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_SEED = "default_seed.yaml"

ColumnType = Literal["string", "int", "double", "boolean"]
_PY_TYPES = {"string": str, "int": int, "double": (int, float), "boolean": bool}


class SeedError(ValueError):
    """A seed file that cannot be used; the message names the file, the field and what is expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UserSeed(_Strict):
    user_name: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", description="the full user name, e.g. alice@example.com")
    display_name: str | None = None


class GroupSeed(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    members: list[str] = []


class ServicePrincipalSeed(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    application_id: str | None = None


class ServingEndpointSeed(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
    kind: Literal["chat", "embedding"]


class VectorSearchEndpointSeed(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


class RowFilterSeed(_Strict):
    """Hides rows matching ``hide_where`` from everyone not in ``except_for`` (users or groups)."""

    hide_where: dict[str, Any] = Field(min_length=1)
    except_for: list[str] = []


class IndexSeed(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$", description="catalog.schema.name")
    endpoint: str
    primary_key: str
    text_column: str
    embedding_endpoint: str
    source_table: str | None = None
    columns: dict[str, ColumnType] = Field(min_length=1)
    rows: list[dict[str, Any]] = []
    row_filters: list[RowFilterSeed] = []

    @model_validator(mode="after")
    def _columns_are_consistent(self) -> IndexSeed:
        for role in ("primary_key", "text_column"):
            if getattr(self, role) not in self.columns:
                raise ValueError(f"{role} {getattr(self, role)!r} is not one of the columns {sorted(self.columns)}")
        if self.columns[self.text_column] != "string":
            raise ValueError(f"text_column {self.text_column!r} must be a string column")
        for i, row in enumerate(self.rows):
            for column, value in row.items():
                if column not in self.columns:
                    raise ValueError(f"rows[{i}] has column {column!r}, which is not one of {sorted(self.columns)}")
                if value is not None and (
                    not isinstance(value, _PY_TYPES[self.columns[column]])
                    or (isinstance(value, bool) and self.columns[column] != "boolean")
                ):
                    raise ValueError(f"rows[{i}].{column} must be a {self.columns[column]}, got {value!r}")
            if row.get(self.primary_key) is None:
                raise ValueError(f"rows[{i}] has no value for the primary key {self.primary_key!r}")
        keys = [row[self.primary_key] for row in self.rows]
        if len(keys) != len(set(keys)):
            raise ValueError(f"primary key {self.primary_key!r} values are not unique")
        for i, row_filter in enumerate(self.row_filters):
            unknown = sorted(set(row_filter.hide_where) - set(self.columns))
            if unknown:
                raise ValueError(f"row_filters[{i}].hide_where names unknown columns {unknown}")
        return self


class GrantSeed(_Strict):
    principal: str = Field(description="a user name, a group or a service principal")
    privilege: str
    on: dict[Literal["index", "serving_endpoint", "vector_search_endpoint", "table"], str] = Field(
        min_length=1, max_length=1
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
        raw = yaml.safe_load(resources.files("obo_auth.local").joinpath(DEFAULT_SEED).read_text(encoding="utf-8"))
    elif isinstance(source, dict):
        origin, raw = "seed dict", source
    else:
        origin = str(source)
        try:
            raw = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SeedError(f"{origin}: no such seed file.") from None
        except yaml.YAMLError as exc:
            raise SeedError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SeedError(f"{origin}: a seed must be a YAML mapping with keys such as users, groups, indexes, grants.")
    try:
        seed = Seed.model_validate(raw)
    except ValidationError as exc:
        raise SeedError(_describe(origin, exc)) from None
    _check_references(origin, seed)
    return seed


def _describe(origin: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".") or "(top level)"
        problems.append(f"  field '{where}': {error['msg']}")
    return f"{origin}: invalid seed:\n" + "\n".join(problems)


def _check_references(origin: str, seed: Seed) -> None:
    problems: list[str] = []
    users = {u.user_name for u in seed.users} | {u.user_name.split("@")[0] for u in seed.users}
    sps = {sp.name for sp in seed.service_principals} | {sp.application_id for sp in seed.service_principals if sp.application_id}
    groups = {g.name for g in seed.groups} | {"users"}
    principals = users | sps
    securables = {
        "index": {i.name for i in seed.indexes},
        "serving_endpoint": {e.name for e in seed.serving_endpoints},
        "vector_search_endpoint": {e.name for e in seed.vector_search_endpoints},
        "table": {i.name for i in seed.indexes} | {i.source_table for i in seed.indexes if i.source_table},
    }
    for name, count in Counter([u.user_name for u in seed.users] + [s.name for s in seed.service_principals]).items():
        if count > 1:
            problems.append(f"principal {name!r} is declared {count} times")
    for gi, group in enumerate(seed.groups):
        for member in group.members:
            if member not in principals:
                problems.append(f"field 'groups[{gi}].members': {member!r} is not a declared user or service principal")
    for ii, index in enumerate(seed.indexes):
        if index.endpoint not in securables["vector_search_endpoint"]:
            problems.append(f"field 'indexes[{ii}].endpoint': {index.endpoint!r} is not a declared vector_search_endpoint")
        if index.embedding_endpoint not in {e.name for e in seed.serving_endpoints if e.kind == "embedding"}:
            problems.append(
                f"field 'indexes[{ii}].embedding_endpoint': {index.embedding_endpoint!r} is not a declared serving endpoint of kind embedding"
            )
        for fi, row_filter in enumerate(index.row_filters):
            for who in row_filter.except_for:
                if who not in principals | groups:
                    problems.append(f"field 'indexes[{ii}].row_filters[{fi}].except_for': {who!r} is not a user, group or service principal")
    for gi, grant in enumerate(seed.grants):
        if grant.principal not in principals | groups:
            problems.append(f"field 'grants[{gi}].principal': {grant.principal!r} is not a declared user, group or service principal")
        (kind, name), = grant.on.items()
        if name not in securables[kind]:
            problems.append(f"field 'grants[{gi}].on.{kind}': {name!r} is not a declared {kind}")
        if grant.privilege not in PRIVILEGES[kind]:
            problems.append(f"field 'grants[{gi}].privilege': {grant.privilege!r} is not a privilege on a {kind}; expected one of {sorted(PRIVILEGES[kind])}")
    if problems:
        raise SeedError(f"{origin}: invalid seed:\n" + "\n".join(f"  {p}" for p in problems))

