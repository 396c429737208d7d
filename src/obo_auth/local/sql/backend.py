"""The SQL warehouses service's state: its warehouses and the statements submitted to them."""

from __future__ import annotations

from collections.abc import Callable

from obo_auth.http_edge import NotFound
from obo_auth.local.sql.statements import StatementStore
from obo_auth.local.sql.warehouses import Warehouse


class SqlBackend:
    def __init__(self, warehouses: list[Warehouse], clock: Callable[[], float]):
        self._warehouses = {w.id: w for w in warehouses}
        self.statements = StatementStore(clock)

    def warehouses(self) -> list[Warehouse]:
        return list(self._warehouses.values())

    def warehouse(self, warehouse_id: str) -> Warehouse:
        warehouse = self._warehouses.get(warehouse_id)
        if warehouse is None:
            raise NotFound(f"SQL warehouse '{warehouse_id[:80]}' does not exist; GET /api/2.0/sql/warehouses lists those you can use.")
        return warehouse
