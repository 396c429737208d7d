"""Vector search routes: endpoints, indexes and queries, in the shapes the vector-search client reads."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from obo_auth.http_edge import NotFound, read_json
from obo_auth.local._base import endpoint_name, uc_name
from obo_auth.local.handler import Call, api
from obo_auth.local.vectorsearch.models import DeltaSyncIndex, DirectAccessIndex, Index, VectorSearchBackend
from obo_auth.local.vectorsearch.query import parse_query
from obo_auth.local.vectorsearch.scopes import API_SCOPES

# schema_json's type names (the SDK's DirectAccessVectorIndexSpec); vectors are array<float>.
_SCHEMA_TYPES = {"string": "string", "int": "long", "double": "double", "boolean": "boolean"}


def _backend(call: Call) -> VectorSearchBackend:
    return call.state.services["vectorsearch"]


def _readable_indexes(call: Call, endpoint: str | None) -> list[Index]:
    """The indexes (of ``endpoint``, or all) the caller may read: the rule the index GET and query apply.

    Listings and counts go through it, so a caller learns of no index it may not read
    (as in Unity Catalog, where a listing shows only what the caller may read).
    """
    indexes = _backend(call).indexes(endpoint)
    catalog = call.state.services["catalog"]
    readable = [i for i in indexes if catalog.can(call.can, "SELECT", "index", i.name)]
    if len(readable) < len(indexes):
        # For the audit log only: the caller is not told that anything was left out.
        call.reason = f"allowed; hid {len(indexes) - len(readable)} indexes the caller may not read"
    return readable


def _endpoint_json(name: str, num_indexes: int) -> dict[str, Any]:
    return {"name": name, "endpoint_type": "STANDARD", "endpoint_status": {"state": "ONLINE"}, "num_indexes": num_indexes}


def _index_json(index: Index, request: Request, row_count: int) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    if isinstance(index, DeltaSyncIndex):
        spec_key, spec, state = "delta_sync_index_spec", _delta_sync_spec(index), "ONLINE_NO_PENDING_UPDATE"
    else:
        spec_key, spec, state = "direct_access_index_spec", _direct_access_spec(index), "ONLINE_DIRECT_ACCESS"
    return {
        "name": index.name,
        "endpoint_name": index.endpoint,
        "index_type": index.index_type,
        "primary_key": index.primary_key,
        spec_key: spec,
        "status": {
            "ready": True,
            # index.wait_until_ready() reads detailed_state and fails without it.
            "detailed_state": state,
            "message": "Index is online.",
            "indexed_row_count": row_count,  # the caller's: the rows a row filter hides are not counted
            # A full http:// URL: the M2M path of the client prepends https:// to schemeless ones.
            "index_url": f"{base}/api/2.0/vector-search/indexes/{index.name}",
        },
    }


def _delta_sync_spec(index: DeltaSyncIndex) -> dict[str, Any]:
    return {
        "source_table": index.source_table,
        "pipeline_type": "TRIGGERED",
        # Managed embeddings: the source column is the text column (shared/API_SHAPES.md, section 6).
        "embedding_source_columns": [{"name": index.text_column, "embedding_model_endpoint_name": index.embedding_endpoint}],
    }


def _direct_access_spec(index: DirectAccessIndex) -> dict[str, Any]:
    # What the retriever tools read: the vector column's dimension, and schema_json to check the columns asked for.
    schema = {c: _SCHEMA_TYPES[t] for c, t in index.columns.items()} | {index.vector_column: "array<float>"}
    return {
        "embedding_vector_columns": [{"name": index.vector_column, "embedding_dimension": index.dimension}],
        "schema_json": json.dumps(schema),
    }


@api(API_SCOPES["vector-search.endpoints"])
async def list_endpoints(request: Request, call: Call) -> Response:
    counts = Counter(i.endpoint for i in _readable_indexes(call, None))
    return JSONResponse({"endpoints": [_endpoint_json(n, counts[n]) for n in _backend(call).endpoints]})


@api(API_SCOPES["vector-search.endpoints"])
async def get_endpoint(request: Request, call: Call) -> Response:
    name = _backend(call).endpoint(endpoint_name(request.path_params["name"], "vector search endpoint"))
    call.resource = f"vector_search_endpoint:{name}"
    return JSONResponse(_endpoint_json(name, len(_readable_indexes(call, name))))


@api(API_SCOPES["vector-search.indexes"])
async def list_indexes(request: Request, call: Call) -> Response:
    endpoint = request.path_params.get("name") or request.query_params.get("endpoint_name")
    if endpoint is not None:
        endpoint = _backend(call).endpoint(endpoint_name(endpoint, "vector search endpoint"))
        call.resource = f"vector_search_endpoint:{endpoint}"
    visible = _readable_indexes(call, endpoint)
    return JSONResponse({"vector_indexes": [{"name": i.name, "endpoint_name": i.endpoint, "index_type": i.index_type, "primary_key": i.primary_key} for i in visible]})


def _readable_index(request: Request, call: Call) -> Index:
    name = uc_name(request.path_params["name"], "vector search index")
    index = _backend(call).index(name)
    call.state.services["catalog"].require(call.require, "SELECT", "index", index.name)
    # The client's get_index(endpoint_name=...) addresses the index under its endpoint;
    # checked after the grant so only readers learn which endpoint serves it.
    endpoint = request.path_params.get("endpoint")
    if endpoint is not None and endpoint != index.endpoint:
        raise NotFound(f"Vector search index '{name}' is not on endpoint '{endpoint[:80]}'; it is on '{index.endpoint}'.")
    return index


@api(API_SCOPES["vector-search.indexes"])
async def get_index(request: Request, call: Call) -> Response:
    index = _readable_index(request, call)
    return JSONResponse(_index_json(index, request, _backend(call).row_count(index, call.principal)))


@api(API_SCOPES["vector-search.indexes"])
async def query_index(request: Request, call: Call) -> Response:
    # The vector-search client sends this as GET with a JSON body; the SDK as POST.
    index = _readable_index(request, call)
    body = await read_json(request)
    result = _backend(call).query(index, call.principal, parse_query(body, index))
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
