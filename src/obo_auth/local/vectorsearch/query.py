"""The body of a vector search query, checked against the index it queries: one 400 per mistake.

What ranks the rows (Databricks "vector_search function" and the SDK's ``query_index``):

- ``query_type`` ANN (the default): ``query_text`` or ``query_vector``. An index with managed
  embeddings (Delta Sync) embeds ``query_text`` with its model; a Direct Vector Access index has
  no model and needs ``query_vector``.
- HYBRID: ``query_text`` (the keyword part) and, for an index without a model, ``query_vector``.
  The local embedding model is itself a bag of words, so the keyword match a hybrid query adds
  on the platform is already in its vectors: HYBRID ranks exactly as ANN, with the same scores.
- Neither (a filter-only query): every row scores 1, in primary-key order.
- FULL_TEXT (keyword-only search) is refused: its scores are not similarities, and a stand-in
  would answer differently from the platform without saying so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from obo_auth.http_edge import BadRequest
from obo_auth.local._base import field, int_field
from obo_auth.local.embedding_model import embed
from obo_auth.local.vectorsearch.filters import parse_filters
from obo_auth.local.vectorsearch.models import Index, Query
from obo_auth.local.vectorsearch.vectors import vector_problem

MAX_RESULTS = 10_000
_QUERY_TYPES = ("ANN", "HYBRID")
# Body fields of the client's similarity_search that the local workspace cannot honour.
_UNSUPPORTED_FIELDS = ("filter_string", "reranker", "columns_to_rerank", "sort_columns", "facets", "query_columns")


def parse_query(body: dict[str, Any], index: Index) -> Query:
    columns = field(body, "columns", list)
    if not columns or not all(isinstance(c, str) for c in columns):
        raise BadRequest("Field 'columns' must be a non-empty array of column names.")
    unknown = [c for c in columns if c not in index.returnable_columns]
    if unknown:
        raise BadRequest(f"Unknown columns {unknown[:10]} for index '{index.name}'; it has {sorted(index.returnable_columns)}.")
    # Refuse what would change the answer rather than silently ignore it (a dropped filter
    # would hand back rows the caller asked to exclude).
    unsupported = [f for f in _UNSUPPORTED_FIELDS if body.get(f) not in (None, [], {}, "")]
    if unsupported:
        raise BadRequest(
            f"The local workspace does not support {unsupported} in a query (a standard endpoint takes "
            "filters as a dict, i.e. filters_json); supported: query_text, query_vector, columns, num_results, "
            "filters_json, score_threshold, query_type."
        )
    return Query(
        vector=_query_vector(body, index),
        columns=list(dict.fromkeys(columns)),
        num_results=int_field(body, "num_results", 10, low=1, high=MAX_RESULTS),
        predicates=parse_filters(field(body, "filters_json", str, None), set(index.columns)),
        score_threshold=field(body, "score_threshold", (int, float), None),
    )


def _query_vector(body: dict[str, Any], index: Index) -> np.ndarray | None:
    """The vector the rows are ranked against: ``query_vector``, or ``query_text`` embedded; None for neither."""
    sent_type = field(body, "query_type", str, "ANN")
    query_type = sent_type.upper()  # the clients send "ANN" or "ann"
    if query_type not in _QUERY_TYPES:
        raise BadRequest(
            f"Field 'query_type' must be one of {list(_QUERY_TYPES)}, got {sent_type[:40]!r} "
            "(FULL_TEXT, keyword-only search, is not served by the local workspace)."
        )
    text = field(body, "query_text", str, None)
    vector = body.get("query_vector")
    if vector is not None:
        problem = vector_problem(vector, index.dimension)
        if problem:
            raise BadRequest(f"Field 'query_vector' must be a list of {index.dimension} numbers (the index's embedding dimension); {problem}.")
    if query_type == "HYBRID" and text is None:
        raise BadRequest("A HYBRID query needs 'query_text' (its keyword part), with 'query_vector' for an index without an embedding model.")
    if query_type == "ANN" and text is not None and vector is not None:
        raise BadRequest("An ANN query takes 'query_text' or 'query_vector', not both (both together make a HYBRID query).")
    if vector is not None:
        return np.asarray(vector, dtype=float)
    if text is None:
        return None
    if not index.has_embedding_model:
        raise BadRequest(
            f"Index '{index.name}' is a Direct Vector Access index with no embedding model to embed 'query_text': "
            f"send 'query_vector', a list of {index.dimension} numbers (with 'query_text' too for a HYBRID query)."
        )
    return np.asarray(embed(text), dtype=float)
