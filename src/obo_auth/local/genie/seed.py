"""The Genie part of a seed: the spaces, each a title, a SQL warehouse and the tables it answers from.

A space has a title (what grants name: ``{genie_space: HR analytics}``, as a warehouse's grants
name it by its name) and an id (what the Genie API and a model's ``GenieSpace(space_id=...)``
declaration name). Without an ``id`` it gets one derived from its title: 32 hex digits as the
platform's, the same on every start. Titles are unique in a seed, so a grant names one space.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

from pydantic import Field

from obo_auth.local._base import UC_NAME_PATTERN
from obo_auth.local.seed_parts import Strict, duplicates, known
from obo_auth.local.service import SeedContext

SPACE_ID_PATTERN = r"^[0-9a-f]{32}$"
# "You can add up to 25 tables or views to a Genie space" (Genie set-up docs).
MAX_TABLES = 25


class GenieSpaceSeed(Strict):
    title: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.:()&'-]{0,99}$",
        description="1-100 letters, digits, spaces and _ . : ( ) & ' -, starting with a letter or digit",
    )
    id: str | None = Field(default=None, pattern=SPACE_ID_PATTERN, description="32 lowercase hex digits; derived from the title when omitted")
    description: str = Field(default="", max_length=2000)
    warehouse: str = Field(description="the name of a seeded SQL warehouse: the space's questions run there")
    tables: list[str] = Field(min_length=1, max_length=MAX_TABLES, description=f"1 to {MAX_TABLES} seeded tables, as catalog.schema.name")

    @property
    def space_id(self) -> str:
        return self.id or derived_space_id(self.title)


SEED_FIELDS = {"genie_spaces": (list[GenieSpaceSeed], [])}


def derived_space_id(title: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"genie-space:{title}").hex


def check(context: SeedContext) -> Iterator[str]:
    spaces = context.seed.genie_spaces
    yield from duplicates([(f"genie_spaces[{i}].title", s.title) for i, s in enumerate(spaces)])
    # A derived id can collide with another space's explicit one: both are checked.
    yield from duplicates([(f"genie_spaces[{i}].id", s.space_id) for i, s in enumerate(spaces)])
    warehouses = {w.name for w in context.seed.sql_warehouses}
    tables = {t.name for t in context.seed.tables}
    for si, space in enumerate(spaces):
        at = f"genie_spaces[{si}]"
        if space.warehouse not in warehouses:
            yield f"field '{at}.warehouse': {space.warehouse!r} is not a declared SQL warehouse name{known(warehouses)}"
        for ti, table in enumerate(space.tables):
            if not _is_uc_name(table):
                yield f"field '{at}.tables[{ti}]': expected a three-level name catalog.schema.name, got {table[:120]!r}"
            elif table not in tables:
                yield f"field '{at}.tables[{ti}]': {table!r} is not a declared table{known(tables)}"
        yield from duplicates([(f"{at}.tables[{ti}]", t) for ti, t in enumerate(space.tables)])


def _is_uc_name(name: str) -> bool:
    # Checked here rather than by a pattern on the list's items, whose error would print the regex.
    return re.fullmatch(UC_NAME_PATTERN, name) is not None
