"""What every service's seed models and seed checks share: strict models and how problems are said."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict


class SeedError(ValueError):
    """A seed file that cannot be used; the message names the file, the field and what is expected."""


class Strict(BaseModel):
    """A seed model: unknown fields are refused, and the validated seed is never changed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def known(names: Iterable[str], what: str = "declared") -> str:
    return f"; {what}: {', '.join(sorted(names)) or 'none'}"


def short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def duplicates(named: Iterable[tuple[str, str]]) -> Iterator[str]:
    """One problem per name given again: ``named`` is (where, name) pairs, in seed order."""
    first: dict[str, str] = {}
    for where, name in named:
        if name in first:
            yield f"field '{where}': {name!r} already names {first[name]}; names (and a user's name before the @) must be unique"
        else:
            first[name] = where
