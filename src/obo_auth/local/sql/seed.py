"""The SQL warehouse part of a seed: the warehouses statements run on.

A warehouse has a display name (what grants name: ``{sql_warehouse: local-warehouse}``) and
an id (what the Statement Execution API and a model's resource declaration name). Without an
``id`` it gets one derived from its name, 16 hex digits as the platform's, the same on every start.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from pydantic import Field

from obo_auth.local.seed_parts import Strict, duplicates
from obo_auth.local.service import SeedContext

WAREHOUSE_ID_PATTERN = r"^[0-9a-f]{16}$"


class SqlWarehouseSeed(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$", description="1-100 letters, digits, spaces, '_', '.' and '-'")
    id: str | None = Field(default=None, pattern=WAREHOUSE_ID_PATTERN, description="16 lowercase hex digits; derived from the name when omitted")

    @property
    def warehouse_id(self) -> str:
        return self.id or derived_warehouse_id(self.name)


SEED_FIELDS = {"sql_warehouses": (list[SqlWarehouseSeed], [])}


def derived_warehouse_id(name: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"sql-warehouse:{name}").hex[:16]


def check(context: SeedContext) -> Iterator[str]:
    warehouses = context.seed.sql_warehouses
    yield from duplicates([(f"sql_warehouses[{i}].name", w.name) for i, w in enumerate(warehouses)])
    # A derived id can collide with another warehouse's explicit one: both are checked.
    yield from duplicates([(f"sql_warehouses[{i}].id", w.warehouse_id) for i, w in enumerate(warehouses)])
