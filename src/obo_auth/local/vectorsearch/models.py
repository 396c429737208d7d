"""Vector search endpoints and indexes: state and rules, no HTTP."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from obo_auth.http_edge import NotFound
from obo_auth.local.catalog.models import CatalogBackend
from obo_auth.local.catalog.seed import TableSeed
from obo_auth.local.catalog.store import View
from obo_auth.local.embedding_model import DIMENSION, embed
from obo_auth.local.identity.models import Principal
from obo_auth.local.vectorsearch.filters import Predicate, matches
from obo_auth.local.vectorsearch.ranking import ranked
from obo_auth.local.vectorsearch.seed import DeltaSyncIndexSeed, DirectAccessIndexSeed


@dataclass(frozen=True)
class Searchable:
    """The rows a caller may search, each with its vector (one row of ``vectors`` per row)."""

    rows: list[dict[str, Any]]
    vectors: np.ndarray
    hidden_by_row_filter: int


@dataclass(frozen=True)
class DeltaSyncIndex:
    """A Delta Sync index with managed embeddings: the synced columns of its source table, read through the catalog."""

    index_type: ClassVar[str] = "DELTA_SYNC"
    has_embedding_model: ClassVar[bool] = True
    dimension: ClassVar[int] = DIMENSION

    name: str
    endpoint: str
    primary_key: str
    columns: dict[str, str]  # name -> type (string, int, double, boolean), in the table's order
    text_column: str
    embedding_endpoint: str
    source_table: str

    @classmethod
    def of(cls, seed: DeltaSyncIndexSeed, table: TableSeed) -> DeltaSyncIndex:
        synced = seed.columns or list(table.columns)
        return cls(
            name=seed.name,
            endpoint=seed.endpoint,
            primary_key=seed.primary_key,
            columns={c: t for c, t in table.columns.items() if c in synced},
            text_column=seed.text_column,
            embedding_endpoint=seed.embedding_endpoint,
            source_table=seed.source_table,
        )

    @property
    def returnable_columns(self) -> list[str]:
        return list(self.columns)  # managed embeddings are not a column a query can return


@dataclass(frozen=True)
class DirectAccessIndex:
    """A Direct Vector Access index: its rows and vectors, the same for every reader (no row filter)."""

    index_type: ClassVar[str] = "DIRECT_ACCESS"
    has_embedding_model: ClassVar[bool] = False

    name: str
    endpoint: str
    primary_key: str
    columns: dict[str, str]  # the scalar columns: name -> type; the vector column is apart
    vector_column: str
    dimension: int
    searchable: Searchable  # each row holds its vector under vector_column, so a query can return it

    @classmethod
    def of(cls, seed: DirectAccessIndexSeed) -> DirectAccessIndex:
        rows = [_with_vector(row, seed) for row in seed.rows]
        vectors = np.array([row[seed.embedding_vector_column] for row in rows], dtype=float).reshape(len(rows), seed.embedding_dimension)
        return cls(
            name=seed.name,
            endpoint=seed.endpoint,
            primary_key=seed.primary_key,
            columns=dict(seed.columns),
            vector_column=seed.embedding_vector_column,
            dimension=seed.embedding_dimension,
            searchable=Searchable(rows, vectors, hidden_by_row_filter=0),
        )

    @property
    def returnable_columns(self) -> list[str]:
        return [*self.columns, self.vector_column]


def _with_vector(row: dict[str, Any], seed: DirectAccessIndexSeed) -> dict[str, Any]:
    """The row with its vector: the seed's, or the local model's of its embed_from text (the seed check
    made sure one of them is there)."""
    vector = row.get(seed.embedding_vector_column)
    if vector is None:
        vector = embed(row[seed.embed_from])
    return {**{c: row.get(c) for c in seed.columns}, seed.embedding_vector_column: [float(v) for v in vector]}


Index = DeltaSyncIndex | DirectAccessIndex


@dataclass(frozen=True)
class Query:
    """A checked query (query.py): what ranks the rows, which rows and columns come back."""

    vector: np.ndarray | None  # None: no ranking, every row scores 1
    columns: list[str]
    num_results: int
    predicates: list[Predicate]
    score_threshold: float | None


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]  # the requested columns, then "score"
    rows: list[list[Any]]
    hidden_by_row_filter: int


class VectorSearchBackend:
    def __init__(self, endpoints: list[str], indexes: list[Index], catalog: CatalogBackend):
        self.endpoints = list(endpoints)
        self._indexes = {i.name: i for i in indexes}
        self._catalog = catalog
        self._embedded: dict[tuple[str, str], tuple[View, Searchable]] = {}
        self._lock = threading.Lock()

    def endpoint(self, name: str) -> str:
        if name not in self.endpoints:
            raise NotFound(f"Vector search endpoint '{name}' does not exist.")
        return name

    def index(self, name: str) -> Index:
        index = self._indexes.get(name)
        if index is None:
            raise NotFound(f"Vector search index '{name}' does not exist.")
        return index

    def indexes(self, endpoint: str | None = None) -> list[Index]:
        return [i for i in self._indexes.values() if endpoint is None or i.endpoint == endpoint]

    def query(self, index: Index, principal: Principal, query: Query) -> QueryResult:
        searchable = self._searchable(index, principal)
        kept = [i for i, row in enumerate(searchable.rows) if matches(row, query.predicates)]
        scored = ranked(query.vector, searchable.vectors[kept], [searchable.rows[i][index.primary_key] for i in kept])
        if query.score_threshold is not None:
            scored = [(s, i) for s, i in scored if s >= query.score_threshold]
        rows = [[searchable.rows[kept[i]].get(c) for c in query.columns] + [s] for s, i in scored[: query.num_results]]
        return QueryResult([*query.columns, "score"], rows, searchable.hidden_by_row_filter)

    def row_count(self, index: Index, principal: Principal) -> int:
        """How many rows ``principal`` may read: never the count a row filter hides from them."""
        return len(self._searchable(index, principal).rows)

    def _searchable(self, index: Index, principal: Principal) -> Searchable:
        if isinstance(index, DirectAccessIndex):
            return index.searchable
        # The source table's row filter and column masks, as the catalog applies them for every reader.
        view = self._catalog.view(index.source_table, principal)
        key = (index.name, principal.id)
        with self._lock:
            cached = self._embedded.get(key)
        # Reused while the catalog hands out the same view (it keeps one per caller).
        if cached is not None and cached[0] is view:
            return cached[1]
        rows = view.rows()
        # On the platform the vectors are computed once, from the source table as synced. Here each
        # caller's rows are embedded from the text that caller's view holds: the same unless the text
        # column is masked for the caller, and then what the mask hides cannot reach the caller
        # through the order or the scores either.
        vectors = np.array([embed(str(row.get(index.text_column) or "")) for row in rows], dtype=float).reshape(len(rows), DIMENSION)
        searchable = Searchable(rows, vectors, view.hidden)
        with self._lock:
            self._embedded[key] = (view, searchable)
        return searchable
