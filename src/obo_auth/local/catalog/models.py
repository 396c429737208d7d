"""Unity Catalog: catalogs, schemas, tables, functions and who may use them; no HTTP.

Every service that reads a table comes here, so the same rules hold everywhere: USE CATALOG
on its catalog, USE SCHEMA on its schema, then the privilege on the securable itself (or
inherited from its schema or catalog), then the table's row filter and column masks (store.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from obo_auth.http_edge import NotFound
from obo_auth.local.catalog.seed import FunctionSeed, TableSeed, schemas_and_catalogs
from obo_auth.local.catalog.store import TableStore, View
from obo_auth.local.identity.models import Principal

# (privilege, securable type, name) -> the reason it is held; raises PermissionDenied otherwise.
Require = Callable[[str, str, str], str]


@dataclass(frozen=True)
class TableLike:
    """A securable another service keeps in a schema and describes as a table (a vector search
    index): the catalog's table routes show its columns to whoever may read it."""

    name: str
    securable_type: str
    columns: dict[str, str]
    primary_key: str | None = None


class CatalogBackend:
    def __init__(self, tables: list[TableSeed], functions: list[FunctionSeed]):
        self.tables = {t.name: t for t in tables}
        self.functions = {f.name: f for f in functions}
        self._table_likes: dict[str, TableLike] = {}
        self.store = TableStore(tables)

    def add_table_like(self, table_like: TableLike) -> None:
        self._table_likes[table_like.name] = table_like

    def schemas_and_catalogs(self) -> tuple[set[str], set[str]]:
        return schemas_and_catalogs([*self.tables, *self.functions, *self._table_likes])

    def table(self, name: str) -> TableSeed:
        table = self.tables.get(name)
        if table is None:
            raise NotFound(f"Table '{name}' does not exist.")
        return table

    def table_or_like(self, name: str) -> TableSeed | TableLike:
        found = self.tables.get(name) or self._table_likes.get(name)
        if found is None:
            raise NotFound(f"Table '{name}' does not exist.")
        return found

    def function(self, name: str) -> FunctionSeed:
        function = self.functions.get(name)
        if function is None:
            raise NotFound(f"Routine or Model '{name}' does not exist.")
        return function

    def require(self, require: Require, privilege: str, securable_type: str, name: str) -> str:
        """USE CATALOG and USE SCHEMA on the name's parents, then ``privilege`` on it: the reason."""
        catalog, schema, _ = name.split(".")
        require("USE CATALOG", "catalog", catalog)
        require("USE SCHEMA", "schema", f"{catalog}.{schema}")
        return require(privilege, securable_type, name)

    def can(self, can: Callable[[str, str, str], bool], privilege: str, securable_type: str, name: str) -> bool:
        """Whether ``require`` would pass, for listings that leave out what the caller may not read."""
        catalog, schema, _ = name.split(".")
        return can("USE CATALOG", "catalog", catalog) and can("USE SCHEMA", "schema", f"{catalog}.{schema}") and can(privilege, securable_type, name)

    def view(self, table_name: str, principal: Principal) -> View:
        """What ``principal`` sees of the table (its SELECT checked by the caller, through require)."""
        return self.store.view(table_name, principal)


def uc_parent(name: str) -> tuple[str, str] | None:
    """The securable a Unity Catalog name lives in: a schema for three parts, a catalog for two."""
    parts = name.split(".")
    if len(parts) == 3:
        return "schema", f"{parts[0]}.{parts[1]}"
    if len(parts) == 2:
        return "catalog", parts[0]
    return None
