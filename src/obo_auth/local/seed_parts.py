"""What every service's seed models and seed checks share: strict models, how problems are said,
and how a credential in a seed (a connection's token, an upstream model's API key) stays unshown."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr


class SeedError(ValueError):
    """A seed file that cannot be used; the message names the file, the field and what is expected."""


class Strict(BaseModel):
    """A seed model: unknown fields are refused, and the validated seed is never changed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NotShown:
    """What a seed error shows instead of a value that may hold a credential."""

    def __init__(self, value: Any):
        self.kind = type(value).__name__

    def __repr__(self) -> str:
        return f"<a {self.kind}, not shown: it may hold a credential>"


def hide_unless(kind: type) -> BeforeValidator:
    """A before-validator: the value if it is a ``kind``, else a NotShown (so the error names
    the field and the expected type, never the value). The seed loader prints the input of a
    shape error ("got ..."): a credential of the wrong shape must not reach it."""
    return BeforeValidator(lambda value: value if isinstance(value, kind) or value is None else NotShown(value))


# A credential goes upstream as 'Authorization: Bearer <token>': printable, no spaces, bounded.
MAX_TOKEN_CHARS = 4096


def token_problems(where: str, token: SecretStr) -> Iterator[str]:
    """The problem with a seed credential's shape, never showing it."""
    value = token.get_secret_value()
    if not 1 <= len(value) <= MAX_TOKEN_CHARS or not value.isprintable() or any(c.isspace() for c in value) or not value.isascii():
        yield f"field '{where}': a token is 1-{MAX_TOKEN_CHARS} printable ASCII characters without spaces (the value is not shown)"


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
