"""The vector search part of a seed: endpoints, and indexes of two kinds (``index_type``).

DELTA_SYNC (the default, so older seeds keep working): built from a catalog table, whose rows,
row filter and column masks it has, with managed embeddings of a text column. DIRECT_ACCESS:
rows and their vectors written to the index itself (no source table, no row filter); a row
may leave out its vector when the index names an ``embed_from`` text column, and the local
embedding model computes it (a seed cannot be expected to spell out 1024 numbers).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from obo_auth.local._base import ENDPOINT_NAME_PATTERN, UC_NAME_PATTERN
from obo_auth.local.catalog.seed import ColumnType
from obo_auth.local.embedding_model import DIMENSION
from obo_auth.local.seed_parts import Strict, duplicates, known, short_repr
from obo_auth.local.service import SeedContext
from obo_auth.local.vectorsearch.vectors import vector_problem

_PY_TYPES = {"string": str, "int": int, "double": (int, float), "boolean": bool}


class VectorSearchEndpointSeed(Strict):
    name: str = Field(pattern=ENDPOINT_NAME_PATTERN, description="1-63 letters, digits, '-' and '_'")


class IndexSeed(Strict):
    """What every index has. An entry is validated as the kind its ``index_type`` names, so a
    problem is reported at the entry's own path (``indexes[1].rows[2].vec``), which a pydantic
    discriminated union would not do (it puts the tag in the path); and dumped as its kind, so a
    dumped seed loads again (pydantic would otherwise dump only these fields)."""

    model_config = ConfigDict(polymorphic_serialization=True)  # pydantic >= 2.13

    name: str = Field(pattern=UC_NAME_PATTERN, description="a three-level name catalog.schema.name")
    endpoint: str
    primary_key: str

    @model_validator(mode="wrap")
    @classmethod
    def _as_its_kind(cls, data: Any, handler: Any) -> Any:
        if cls is not IndexSeed or not isinstance(data, dict):
            return handler(data)
        index_type = _IndexType.model_validate({"index_type": data.get("index_type", "DELTA_SYNC")}).index_type
        return _KINDS[index_type].model_validate(data)


class DeltaSyncIndexSeed(IndexSeed):
    """A Delta Sync index of a catalog table, with managed embeddings of ``text_column``."""

    source_table: str = Field(pattern=UC_NAME_PATTERN, description="the catalog table it is built from")
    text_column: str = Field(description="the column whose text is embedded (embedding_source_column)")
    embedding_endpoint: str
    columns: list[str] | None = Field(default=None, description="the table's columns to sync; all when omitted")
    index_type: Literal["DELTA_SYNC"] = "DELTA_SYNC"


class DirectAccessIndexSeed(IndexSeed):
    """A Direct Vector Access index: its own columns, rows and vectors; no row filter, as on the platform."""

    index_type: Literal["DIRECT_ACCESS"]
    columns: dict[str, ColumnType] = Field(min_length=1, description="column name: string, int, double or boolean")
    embedding_vector_column: str = Field(description="the name of each row's vector")
    embedding_dimension: int = Field(default=DIMENSION, ge=1, description="the length of every vector")
    embed_from: str | None = Field(
        default=None, description="a string column: a row without a vector gets the local embedding model's vector of it"
    )
    rows: list[dict[str, Any]] = []


class _IndexType(BaseModel):
    """Refuses an unknown index_type at its own path, naming the choices."""

    index_type: Literal["DELTA_SYNC", "DIRECT_ACCESS"]


_KINDS: dict[str, type[IndexSeed]] = {"DELTA_SYNC": DeltaSyncIndexSeed, "DIRECT_ACCESS": DirectAccessIndexSeed}

SEED_FIELDS = {
    "vector_search_endpoints": (list[VectorSearchEndpointSeed], []),
    "indexes": (list[IndexSeed], []),
}


def check(context: SeedContext) -> Iterator[str]:
    seed = context.seed
    yield from duplicates([(f"vector_search_endpoints[{i}].name", e.name) for i, e in enumerate(seed.vector_search_endpoints)])
    yield from duplicates(
        [(f"tables[{i}].name", t.name) for i, t in enumerate(seed.tables)] + [(f"indexes[{i}].name", x.name) for i, x in enumerate(seed.indexes)]
    )
    endpoints = {e.name for e in seed.vector_search_endpoints}
    for ii, index in enumerate(seed.indexes):
        at = f"indexes[{ii}]"
        if index.endpoint not in endpoints:
            yield f"field '{at}.endpoint': {index.endpoint!r} is not a declared vector_search_endpoint{known(endpoints)}"
        if isinstance(index, DirectAccessIndexSeed):
            yield from _direct_access_problems(at, index)
        else:
            yield from _delta_sync_problems(at, index, seed)


def _delta_sync_problems(at: str, index: DeltaSyncIndexSeed, seed: Any) -> Iterator[str]:
    embedding_endpoints = {e.name for e in seed.serving_endpoints if e.kind == "embedding"}
    if index.embedding_endpoint not in embedding_endpoints:
        yield f"field '{at}.embedding_endpoint': {index.embedding_endpoint!r} is not a declared serving endpoint of kind embedding{known(embedding_endpoints)}"
    table = next((t for t in seed.tables if t.name == index.source_table), None)
    if table is None:
        yield f"field '{at}.source_table': {index.source_table!r} is not a declared table{known(t.name for t in seed.tables)}"
        return
    columns = known(table.columns, "columns")
    for role in ("primary_key", "text_column"):
        if getattr(index, role) not in table.columns:
            yield f"field '{at}.{role}': {getattr(index, role)!r} is not a column of {table.name}{columns}"
        elif index.columns is not None and getattr(index, role) not in index.columns:
            yield f"field '{at}.columns': the {role} {getattr(index, role)!r} must be synced too"
    if table.columns.get(index.text_column, "string") != "string":
        yield f"field '{at}.text_column': {index.text_column!r} must be a string column, not {table.columns[index.text_column]}"
    for ci, column in enumerate(index.columns or ()):
        if column not in table.columns:
            yield f"field '{at}.columns[{ci}]': {column!r} is not a column of {table.name}{columns}"
    if index.primary_key in table.columns:
        for ri, problem in _primary_key_problems(index.primary_key, table.rows):
            yield f"field '{at}.primary_key': {table.name} rows[{ri}] {problem}"


def _direct_access_problems(at: str, index: DirectAccessIndexSeed) -> Iterator[str]:
    columns = known(index.columns, "columns")
    vector = index.embedding_vector_column
    if index.primary_key not in index.columns:
        yield f"field '{at}.primary_key': {index.primary_key!r} is not a column of the index{columns}"
    if vector in index.columns:
        yield f"field '{at}.embedding_vector_column': {vector!r} is also a column; the vector column is not declared in columns"
        return  # the rows cannot be read until the vectors have a column of their own
    embed_from_problem = _embed_from_problem(index)
    if embed_from_problem:
        yield f"field '{at}.embed_from': {embed_from_problem}"
    for ri, row in enumerate(index.rows):
        yield from _row_problems(f"{at}.rows[{ri}]", row, index, check_vector_source=not embed_from_problem)
    if index.primary_key in index.columns:
        for ri, problem in _primary_key_problems(index.primary_key, index.rows):
            yield f"field '{at}.rows[{ri}].{index.primary_key}': the row {problem}"


def _embed_from_problem(index: DirectAccessIndexSeed) -> str | None:
    if index.embed_from is None:
        return None
    if index.columns.get(index.embed_from) != "string":
        return f"{index.embed_from!r} is not a string column of the index{known(index.columns, 'columns')}"
    if index.embedding_dimension != DIMENSION:
        return f"the local embedding model makes {DIMENSION}-dimensional vectors, not {index.embedding_dimension} (embedding_dimension)"
    return None


def _row_problems(at: str, row: dict[str, Any], index: DirectAccessIndexSeed, *, check_vector_source: bool) -> Iterator[str]:
    vector = index.embedding_vector_column
    for column, value in row.items():
        kind = index.columns.get(column)
        if column == vector:
            problem = None if value is None else vector_problem(value, index.embedding_dimension)
            if problem:
                yield f"field '{at}.{column}': expected a list of {index.embedding_dimension} numbers (embedding_dimension), {problem}"
        elif kind is None:
            yield f"field '{at}.{column}': not a column of the index{known([*index.columns, vector], 'columns')}"
        # bool is an int in Python, never in the seed's column types.
        elif value is not None and (not isinstance(value, _PY_TYPES[kind]) or (isinstance(value, bool) and kind != "boolean")):
            yield f"field '{at}.{column}': expected a value of type {kind}, got {short_repr(value)}"
    # Where the row's vector comes from; not asked while embed_from itself is wrong (said once, above).
    if check_vector_source and row.get(vector) is None:
        if index.embed_from is None:
            yield f"field '{at}.{vector}': required: the row's vector, unless the index names an embed_from text column to compute it from"
        elif row.get(index.embed_from) is None:  # a text of the wrong type is said by the column check
            yield f"field '{at}.{index.embed_from}': required: the text the row's vector is computed from (embed_from), as the row gives no {vector}"


def _primary_key_problems(primary_key: str, rows: list[dict[str, Any]]) -> Iterator[tuple[int, str]]:
    """(row number, what is wrong) for each row without a primary key or repeating another row's."""
    first_row_of: dict = {}
    for ri, row in enumerate(rows):
        key = row.get(primary_key)
        if key is None:
            yield ri, f"has no {primary_key}, the index's primary key"
        elif isinstance(key, (str, int, float)) and first_row_of.setdefault(key, ri) != ri:
            yield ri, f"repeats the primary key {key!r} of rows[{first_row_of[key]}]"
