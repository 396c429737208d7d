"""Vector search routes: endpoints, indexes and queries, in the shapes the vector-search client reads."""

from __future__ import annotations

from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from obo_auth.http_edge import BadRequest, NotFound
from obo_auth.local._base import endpoint_name, field, int_field, read_json, uc_name
from obo_auth.local.handler import Call, api
from obo_auth.local.vectorsearch.models import MAX_RESULTS, Index

# Every query type ranks the same way here: lexically (see ranking.py).
_QUERY_TYPES = {"ANN", "HYBRID", "FULL_TEXT"}
# Body fields of the client's similarity_search that the local workspace cannot honour.
_UNSUPPORTED_QUERY_FIELDS = ("filter_string", "reranker", "columns_to_rerank", "sort_columns", "facets", "query_columns")


def _readable_indexes(call: Call, endpoint: str | None) -> list[Index]:
    """The indexes (of ``endpoint``, or all) the caller may read: the rule the index GET and query apply.

    Listings and counts go through it, so a caller learns of no index it may not read
    (as in Unity Catalog, where a listing shows only what the caller may read).
    """
    indexes = call.state.vector_search.indexes(endpoint)
    readable = [i for i in indexes if call.can("SELECT", "index", i.name)]
    if len(readable) < len(indexes):
        # For the audit log only: the caller is not told that anything was left out.
        call.reason = f"allowed; hid {len(indexes) - len(readable)} indexes the caller may not read"
    return readable


def _endpoint_json(name: str, num_indexes: int) -> dict[str, Any]:
    return {"name": name, "endpoint_type": "STANDARD", "endpoint_status": {"state": "ONLINE"}, "num_indexes": num_indexes}


def _index_json(index: Index, request: Request) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return {
        "name": index.name,
        "endpoint_name": index.endpoint,
        "index_type": "DELTA_SYNC",
        "primary_key": index.primary_key,
        "delta_sync_index_spec": {
            "source_table": index.source_table or index.name,
            "pipeline_type": "TRIGGERED",
            # Managed embeddings: the source column is the text column (shared/API_SHAPES.md, section 6).
            "embedding_source_columns": [
                {"name": index.text_column, "embedding_model_endpoint_name": index.embedding_endpoint}
            ],
        },
        "status": {
            "ready": True,
            # index.wait_until_ready() reads detailed_state and fails without it.
            "detailed_state": "ONLINE_NO_PENDING_UPDATE",
            "message": "Index is online.",
            "indexed_row_count": len(index.rows),
            # A full http:// URL: the M2M path of the client prepends https:// to schemeless ones.
            "index_url": f"{base}/api/2.0/vector-search/indexes/{index.name}",
        },
    }


@api("vector-search.endpoints")
async def list_endpoints(request: Request, call: Call) -> Response:
    counts = Counter(i.endpoint for i in _readable_indexes(call, None))
    return JSONResponse({"endpoints": [_endpoint_json(n, counts[n]) for n in call.state.vector_search.endpoints]})


@api("vector-search.endpoints")
async def get_endpoint(request: Request, call: Call) -> Response:
    name = call.state.vector_search.endpoint(endpoint_name(request.path_params["name"], "vector search endpoint"))
    call.resource = f"vector_search_endpoint:{name}"
    return JSONResponse(_endpoint_json(name, len(_readable_indexes(call, name))))


@api("vector-search.indexes")
async def list_indexes(request: Request, call: Call) -> Response:
    endpoint = request.path_params.get("name") or request.query_params.get("endpoint_name")
    if endpoint is not None:
        endpoint = call.state.vector_search.endpoint(endpoint_name(endpoint, "vector search endpoint"))
        call.resource = f"vector_search_endpoint:{endpoint}"
    visible = _readable_indexes(call, endpoint)
    return JSONResponse({"vector_indexes": [{"name": i.name, "endpoint_name": i.endpoint, "index_type": "DELTA_SYNC", "primary_key": i.primary_key} for i in visible]})


def _readable_index(request: Request, call: Call) -> Index:
    name = uc_name(request.path_params["name"], "vector search index")
    index = call.state.vector_search.index(name)
    call.require("SELECT", "index", index.name)
    # The client's get_index(endpoint_name=...) addresses the index under its endpoint;
    # checked after the grant so only readers learn which endpoint serves it.
    endpoint = request.path_params.get("endpoint")
    if endpoint is not None and endpoint != index.endpoint:
        raise NotFound(f"Vector search index '{name}' is not on endpoint '{endpoint[:80]}'; it is on '{index.endpoint}'.")
    return index


@api("vector-search.indexes")
async def get_index(request: Request, call: Call) -> Response:
    return JSONResponse(_index_json(_readable_index(request, call), request))


@api("vector-search.indexes")
async def query_index(request: Request, call: Call) -> Response:
    # The vector-search client sends this as GET with a JSON body; the SDK as POST.
    index = _readable_index(request, call)
    body = await read_json(request)
    columns = field(body, "columns", list)
    if not columns or not all(isinstance(c, str) for c in columns):
        raise BadRequest("Field 'columns' must be a non-empty array of column names.")
    query_text = field(body, "query_text", str, None)
    if query_text is None and body.get("query_vector") is not None:
        raise BadRequest("The local workspace ranks lexically: send 'query_text' rather than 'query_vector'.")
    # Refuse what would change the answer rather than silently ignore it (a dropped filter
    # would hand back rows the caller asked to exclude).
    unsupported = [f for f in _UNSUPPORTED_QUERY_FIELDS if body.get(f) not in (None, [], {}, "")]
    if unsupported:
        raise BadRequest(
            f"The local workspace does not support {unsupported} in a query (a standard endpoint takes "
            "filters as a dict, i.e. filters_json); supported: query_text, columns, num_results, filters_json, "
            "score_threshold, query_type."
        )
    query_type = field(body, "query_type", str, "ANN")
    if query_type.upper() not in _QUERY_TYPES:
        raise BadRequest(f"Field 'query_type' must be one of {sorted(_QUERY_TYPES)}, got {query_type[:40]!r}.")
    result = call.state.vector_search.query(
        index,
        call.principal,
        query_text=query_text,
        columns=list(dict.fromkeys(columns)),
        num_results=int_field(body, "num_results", 10, low=1, high=MAX_RESULTS),
        filters_json=field(body, "filters_json", str, None),
        score_threshold=field(body, "score_threshold", (int, float), None),
    )
    if result.hidden_by_row_filter:
        call.reason += f"; row filter hid {result.hidden_by_row_filter} rows"
    return JSONResponse(
        {
            "manifest": {"column_count": len(result.columns), "columns": [{"name": c} for c in result.columns]},
            "result": {"row_count": len(result.rows), "data_array": result.rows},
        }
    )


routes = [
    Route("/api/2.0/vector-search/endpoints", list_endpoints, methods=["GET"]),
    Route("/api/2.0/vector-search/endpoints/{name}", get_endpoint, methods=["GET"]),
    Route("/api/2.0/vector-search/endpoints/{name}/indexes", list_indexes, methods=["GET"]),
    Route("/api/2.0/vector-search/indexes", list_indexes, methods=["GET"]),
    Route("/api/2.0/vector-search/endpoints/{endpoint}/indexes/{name}", get_index, methods=["GET"]),
    Route("/api/2.0/vector-search/indexes/{name}", get_index, methods=["GET"]),
    Route("/api/2.0/vector-search/indexes/{name}/query", query_index, methods=["GET", "POST"]),
]
