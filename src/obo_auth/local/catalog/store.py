"""The catalog's rows in an embedded DuckDB, and what each caller may see of them.

One definition of a table's row filter and column masks (SQL, in the seed), applied here the
same way for every service that reads data: vector search, SQL warehouses, Genie. A caller's
view is computed by DuckDB with the caller's identity bound into the filter and masks
(sql_text.bind_caller), and kept: tables do not change after seeding.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow

from obo_auth.local.catalog.sql_text import bind_caller, columns_sql, parse_expression, quoted
from obo_auth.local.identity.models import Principal

if TYPE_CHECKING:  # the seed module checks seeds with this one
    from obo_auth.local.catalog.seed import TableSeed

DUCKDB_TYPES = {"string": "VARCHAR", "int": "BIGINT", "double": "DOUBLE", "boolean": "BOOLEAN"}


def sandboxed_database() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that can reach no file, network or extension, whatever SQL it runs."""
    return duckdb.connect(
        ":memory:",
        config={
            "enable_external_access": False,
            # Else DuckDB still reads and writes files in its temporary directory (./.tmp).
            "temp_directory": "",
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "threads": 1,
            "memory_limit": "512MB",
            "lock_configuration": True,
        },
    )


@dataclass(frozen=True)
class View:
    """What one caller sees of a table: the rows its row filter lets through, masks applied."""

    columns: tuple[str, ...]
    data: pyarrow.Table
    hidden: int  # rows the row filter hid from this caller

    def rows(self) -> list[dict[str, Any]]:
        return self.data.to_pylist()


def evaluation_problem(table: TableSeed, principals: list[Principal]) -> tuple[str, str] | None:
    """(field, why) if DuckDB cannot evaluate the table's row filter or one of its masks over
    its rows for one of ``principals`` (a CASE may fail for some callers only)."""
    store = TableStore([table])
    tries = [("row_filter", table.row_filter, {})] if table.row_filter else []
    tries += [(f"column_masks.{column}", None, {column: mask}) for column, mask in table.column_masks.items()]
    for where, row_filter, masks in tries:
        for principal in principals:
            try:
                store.select(table, principal, row_filter, masks)
            except duckdb.Error as error:
                return where, f"for {principal.name}: {str(error).splitlines()[0][:200]}"
    return None


class TableStore:
    def __init__(self, tables: list[TableSeed]):
        self._tables = {t.name: t for t in tables}
        self._stored_as = {t.name: f"t{i}" for i, t in enumerate(tables)}
        self._database = sandboxed_database()
        for table in tables:
            self._load(table)
        self._views: dict[tuple[str, str], View] = {}
        self._lock = threading.Lock()

    def _load(self, table: TableSeed) -> None:
        name = quoted(self._stored_as[table.name])
        columns = list(table.columns)
        definition = ", ".join(f"{quoted(c)} {DUCKDB_TYPES[t]}" for c, t in table.columns.items())
        self._database.execute(f"CREATE TABLE {name} ({definition})")
        if table.rows:
            placeholders = ", ".join("?" for _ in columns)
            self._database.executemany(
                f"INSERT INTO {name} ({columns_sql(columns)}) VALUES ({placeholders})",
                [[row.get(c) for c in columns] for row in table.rows],
            )

    def view(self, table_name: str, principal: Principal) -> View:
        key = (table_name, principal.id)
        with self._lock:
            cached = self._views.get(key)
        if cached is None:
            cached = self._compute(self._tables[table_name], principal)
            with self._lock:
                self._views[key] = cached
        return cached

    def _compute(self, table: TableSeed, principal: Principal) -> View:
        data = self.select(table, principal, table.row_filter, table.column_masks)
        return View(tuple(table.columns), data, len(table.rows) - data.num_rows)

    def select(self, table: TableSeed, principal: Principal, row_filter: str | None, masks: dict[str, str]) -> pyarrow.Table:
        """The table's rows ``row_filter`` lets ``principal`` see, ``masks`` applied, by DuckDB."""
        shown = []
        for column, kind in table.columns.items():
            expression = _duckdb_sql(masks[column], principal) if column in masks else quoted(column)
            # A mask must give the column's own type, as Unity Catalog requires.
            shown.append(f"CAST({expression} AS {DUCKDB_TYPES[kind]}) AS {quoted(column)}")
        where = f" WHERE coalesce({_duckdb_sql(row_filter, principal)}, false)" if row_filter else ""
        cursor = self._database.cursor()  # one per call: cursors are DuckDB's unit of thread safety
        try:
            return cursor.sql(f"SELECT {', '.join(shown)} FROM {quoted(self._stored_as[table.name])}{where}").to_arrow_table()
        finally:
            cursor.close()


def _duckdb_sql(text: str, principal: Principal) -> str:
    return bind_caller(parse_expression(text), principal).sql(dialect="duckdb", identify=True)
