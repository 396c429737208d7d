"""Seed files: the YAML that says who and what a local workspace holds.

The schema is assembled from the services (each declares its own top-level sections,
service.py) plus ``grants``; its models are pydantic (unknown fields are refused). Then
each service checks its sections' meaning (a grant names a principal and a securable that
exist, a row filter names real columns). Any problem raises :class:`SeedError` naming the
file, the field and what is expected, before anything starts: a workspace is never half-seeded.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError, create_model, field_validator

from obo_auth.local.identity.seed import grantee_names
from obo_auth.local.registry import securable_types, services
from obo_auth.local.seed_parts import SeedError, Strict, known, short_repr
from obo_auth.local.service import SeedContext

DEFAULT_SEED = "default_seed.yaml"
__all__ = ["DEFAULT_SEED", "SeedError", "load_seed", "seed_model"]


class _SeedLoader(yaml.SafeLoader):
    """YAML 1.2 booleans (only true/false): YAML 1.1 reads a grant's bare ``on:`` key as True."""


_SeedLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SeedLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


class GrantSeed(Strict):
    principal: str = Field(description="a user name, a group or a service principal")
    privilege: str
    on: dict[str, str] = Field(min_length=1, max_length=1, description="one securable, e.g. {table: main.docs.handbook}")

    @field_validator("privilege")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


@functools.cache
def seed_model() -> type[BaseModel]:
    """The seed's model: every service's sections, then ``grants``."""
    fields: dict[str, Any] = {}
    for service in services():
        for key, spec in service.seed_fields.items():
            if key in fields:
                raise RuntimeError(f"Seed section {key!r} is declared by two services.")
            fields[key] = spec
    fields["grants"] = (list[GrantSeed], [])
    return create_model("Seed", __base__=Strict, **fields)


def load_seed(source: str | Path | dict | None = None) -> Any:
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
            f"{origin}: a seed must be a YAML mapping with keys such as {', '.join(seed_model().model_fields)}; got {_kind_of(raw)}."
        )
    try:
        seed = seed_model().model_validate(raw)
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
    got = short_repr(error["input"])
    if error["type"] == "string_pattern_mismatch" and description:  # reads better than the regex
        return f"field '{where}': expected {description}, got {got}"
    return f"field '{where}': {error['msg']}" + (f" ({description})" if description else "") + f", got {got}"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The seed model whose field ``loc`` names, found by following the field annotations."""
    model: type[BaseModel] = seed_model()
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part) if isinstance(part, str) else None
        inner = [a for a in (info.annotation, *get_args(info.annotation)) if isinstance(a, type) and issubclass(a, BaseModel)] if info else []
        if not inner:
            return None
        model = inner[0]
    return model


# -- the meaning: each service checks its own sections; grants are checked here ----------
def _problems(seed: Any) -> Iterator[str]:
    declared: dict[str, set[str]] = {}
    for service in services():
        for kind, names in service.securables(seed).items():
            declared.setdefault(kind, set()).update(names)
    context = SeedContext(seed, grantee_names(seed), {kind: frozenset(names) for kind, names in declared.items()})
    for service in services():
        yield from service.check_seed(context)
    yield from _grant_problems(context)


def _grant_problems(context: SeedContext) -> Iterator[str]:
    types = securable_types()
    for gi, grant in enumerate(context.seed.grants):
        if grant.principal not in context.grantees:
            yield f"field 'grants[{gi}].principal': {grant.principal!r} is not a declared user, group or service principal{known(context.grantees)}"
        ((kind, name),) = grant.on.items()
        if kind not in types:
            yield f"field 'grants[{gi}].on': {kind!r} is not a securable type; expected one of: {', '.join(sorted(types))}"
            continue
        names = context.securables.get(kind, frozenset())
        if name not in names:
            yield f"field 'grants[{gi}].on.{kind}': {name!r} is not a declared {kind}{known(names)}"
        if grant.privilege not in types[kind].privileges:
            yield (
                f"field 'grants[{gi}].privilege': {grant.privilege!r} is not a privilege on a {types[kind].label}; "
                f"expected one of: {', '.join(sorted(types[kind].privileges))}"
            )


def _kind_of(value: Any) -> str:
    return "nothing (an empty file)" if value is None else f"a {type(value).__name__}"
