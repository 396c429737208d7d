"""Vector search endpoints and indexes: state and rules, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from obo_auth.http_edge import BadRequest, NotFound
from obo_auth.local.identity.models import Principal
from obo_auth.local.vectorsearch.filters import matches, parse_filters
from obo_auth.local.vectorsearch.ranking import bm25_scores

MAX_RESULTS = 10_000


@dataclass(frozen=True)
class RowFilter:
    """Hides rows matching ``hide_where`` from every principal not named in ``except_for``."""

    hide_where: dict[str, Any]
    except_for: frozenset[str]

    def hides(self, row: dict[str, Any], principal: Principal) -> bool:
        exempt = {principal.name, principal.short_name} | principal.groups
        if exempt & self.except_for:
            return False
        return all(_equals_any(row.get(column), wanted) for column, wanted in self.hide_where.items())


def _equals_any(value: Any, wanted: Any) -> bool:
    return value in wanted if isinstance(wanted, list) else value == wanted


@dataclass(frozen=True)
class Index:
    name: str
    endpoint: str
    primary_key: str
    text_column: str
    embedding_endpoint: str
    source_table: str | None
    columns: dict[str, str]  # name -> type (string, int, double, boolean)
    rows: tuple[dict[str, Any], ...]
    row_filters: tuple[RowFilter, ...] = field(default=())

    def visible_rows(self, principal: Principal) -> tuple[list[dict[str, Any]], int]:
        """The rows ``principal`` may see after row filters, and how many were hidden."""
        visible = [r for r in self.rows if not any(f.hides(r, principal) for f in self.row_filters)]
        return visible, len(self.rows) - len(visible)


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]  # the requested columns, then "score"
    rows: list[list[Any]]
    hidden_by_row_filter: int


class VectorSearchBackend:
    def __init__(self, endpoints: list[str], indexes: list[Index]):
        self.endpoints = list(endpoints)
        self._indexes = {i.name: i for i in indexes}

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

    def query(
        self,
        index: Index,
        principal: Principal,
        *,
        query_text: str | None,
        columns: list[str],
        num_results: int,
        filters_json: str | None,
        score_threshold: float | None = None,
    ) -> QueryResult:
        unknown = [c for c in columns if c not in index.columns]
        if unknown:
            raise BadRequest(f"Unknown columns {unknown} for index '{index.name}'; it has {sorted(index.columns)}.")
        predicates = parse_filters(filters_json, set(index.columns))
        visible, hidden = index.visible_rows(principal)
        candidates = [r for r in visible if matches(r, predicates)]
        if query_text is None:
            ranked = [(1.0, r) for r in candidates]
        else:
            scores = bm25_scores(query_text, [str(r.get(index.text_column) or "") for r in candidates])
            ranked = [(s, r) for s, r in zip(scores, candidates) if s > 0]
        if score_threshold is not None:
            ranked = [(s, r) for s, r in ranked if s >= score_threshold]
        # Ties break on the primary key's own order (seeds give it one type), so 2 sorts before 10.
        ranked.sort(key=lambda pair: (-pair[0], pair[1][index.primary_key]))
        rows = [[r.get(c) for c in columns] + [round(s, 6)] for s, r in ranked[:num_results]]
        return QueryResult(columns=[*columns, "score"], rows=rows, hidden_by_row_filter=hidden)
