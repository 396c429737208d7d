"""The Unity Catalog part of a seed: tables (columns, rows, a row filter, column masks) and SQL functions.

Catalogs and schemas are the first parts of the tables', functions' and indexes' names; a
grant may name them (``{catalog: main}``, ``{schema: main.docs}``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from obo_auth.local._base import UC_NAME_PATTERN
from obo_auth.local.catalog import sql_text
from obo_auth.local.catalog.store import evaluation_problem
from obo_auth.local.identity.models import Principal
from obo_auth.local.identity.seed import principals
from obo_auth.local.seed_parts import Strict, duplicates, known, short_repr
from obo_auth.local.service import SeedContext

ColumnType = Literal["string", "int", "double", "boolean"]
_PY_TYPES = {"string": str, "int": int, "double": (int, float), "boolean": bool}
_UC_NAME_HELP = "a three-level name catalog.schema.name"


class TableSeed(Strict):
    name: str = Field(pattern=UC_NAME_PATTERN, description=_UC_NAME_HELP)
    columns: dict[str, ColumnType] = Field(min_length=1, description="column name: string, int, double or boolean")
    rows: list[dict[str, Any]] = []
    row_filter: str | None = Field(
        default=None, description="a SQL condition over the columns; a caller sees the rows where it is true"
    )
    column_masks: dict[str, str] = Field(default={}, description="column: the SQL expression a caller sees instead of it")
    comment: str | None = None


class FunctionSeed(Strict):
    name: str = Field(pattern=UC_NAME_PATTERN, description=_UC_NAME_HELP)
    parameters: dict[str, ColumnType] = {}
    returns: ColumnType
    body: str = Field(description="a SQL expression over the parameters, e.g. current_user()")
    comment: str | None = None


SEED_FIELDS = {"tables": (list[TableSeed], []), "functions": (list[FunctionSeed], [])}


def schemas_and_catalogs(names: list[str]) -> tuple[set[str], set[str]]:
    return {n.rsplit(".", 1)[0] for n in names}, {n.split(".", 1)[0] for n in names}


def check(context: SeedContext) -> Iterator[str]:
    seed = context.seed
    yield from duplicates(
        [(f"tables[{i}].name", t.name) for i, t in enumerate(seed.tables)]
        + [(f"functions[{i}].name", f.name) for i, f in enumerate(seed.functions)]
    )
    callers = principals(seed)[0]
    for ti, table in enumerate(seed.tables):
        yield from _table_problems(f"tables[{ti}]", table, callers)
    for fi, function in enumerate(seed.functions):
        problem = sql_text.expression_problem(function.body, set(function.parameters))
        if problem:
            yield f"field 'functions[{fi}].body': {problem}"


def _table_problems(at: str, table: TableSeed, callers: list[Principal]) -> Iterator[str]:
    columns = known(table.columns, "columns")
    well_formed = True
    for ri, row in enumerate(table.rows):
        for column, value in row.items():
            kind = table.columns.get(column)
            if kind is None:
                well_formed = False
                yield f"field '{at}.rows[{ri}].{column}': not a column of the table{columns}"
            # bool is an int in Python, never in the seed's column types.
            elif value is not None and (not isinstance(value, _PY_TYPES[kind]) or (isinstance(value, bool) and kind != "boolean")):
                well_formed = False
                yield f"field '{at}.rows[{ri}].{column}': expected a value of type {kind}, got {short_repr(value)}"
    if table.row_filter is not None:
        problem = sql_text.expression_problem(table.row_filter, set(table.columns))
        if problem:
            yield f"field '{at}.row_filter': {problem}"
            well_formed = False
    for column, mask in table.column_masks.items():
        if column not in table.columns:
            yield f"field '{at}.column_masks.{column}': not a column of the table{columns}"
            well_formed = False
            continue
        problem = sql_text.expression_problem(mask, set(table.columns))
        if problem:
            yield f"field '{at}.column_masks.{column}': {problem}"
            well_formed = False
    if well_formed and (table.row_filter or table.column_masks):
        # Well-formed SQL may still not evaluate (a mask of the wrong type): try it on the rows, as every caller.
        failure = evaluation_problem(table, callers)
        if failure:
            yield f"field '{at}.{failure[0]}': the SQL engine cannot evaluate it over the table's rows: {failure[1]}"
