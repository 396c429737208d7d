"""SQL warehouse routes: the warehouses, and the Statement Execution API, in the shapes
databricks-sdk reads (``WarehousesAPI``, ``StatementExecutionAPI``; shared/API_SHAPES.md, section 8)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from obo_auth.http_edge import BadRequest, read_json

from obo_auth.local.handler import Call, api
from obo_auth.local.sql.backend import SqlBackend
from obo_auth.local.sql.execution import Chunk, Column, Result
from obo_auth.local.sql.failures import ENGINE_ERROR_CODE
from obo_auth.local.sql.request import statement_request
from obo_auth.local.sql.running import POLL_WAIT_SECONDS, advance
from obo_auth.local.sql.scopes import API_SCOPES
from obo_auth.local.sql.statements import FAILED, RUNNING, SUCCEEDED, Statement
from obo_auth.local.sql.warehouses import Warehouse

STATEMENTS_PATH = "/api/2.0/sql/statements"


def _backend(call: Call) -> SqlBackend:
    return call.state.services["sql"]


# -- warehouses ------------------------------------------------------------------------


def _warehouse_json(warehouse: Warehouse, request: Request) -> dict[str, Any]:
    url = request.base_url
    return {
        "id": warehouse.id,
        "name": warehouse.name,
        "state": "RUNNING",  # always on: it starts with the workspace
        "cluster_size": "2X-Small",
        "warehouse_type": "PRO",
        "enable_serverless_compute": True,
        "min_num_clusters": 1,
        "max_num_clusters": 1,
        "num_clusters": 1,
        "num_active_sessions": 0,
        "auto_stop_mins": 0,
        "health": {"status": "HEALTHY"},
        "odbc_params": {"hostname": url.hostname, "port": url.port, "protocol": url.scheme, "path": f"/sql/1.0/warehouses/{warehouse.id}"},
    }


@api(API_SCOPES["sql.warehouses"])
async def list_warehouses(request: Request, call: Call) -> Response:
    warehouses = _backend(call).warehouses()
    usable = [w for w in warehouses if call.can("CAN_USE", *w.securable)]
    if len(usable) < len(warehouses):
        # For the audit log only: the caller is not told that anything was left out.
        call.reason = f"allowed; hid {len(warehouses) - len(usable)} warehouses the caller may not use"
    return JSONResponse({"warehouses": [_warehouse_json(w, request) for w in usable]})


@api(API_SCOPES["sql.warehouses"])
async def get_warehouse(request: Request, call: Call) -> Response:
    warehouse = _backend(call).warehouse(request.path_params["warehouse_id"])
    call.require("CAN_USE", *warehouse.securable)
    return JSONResponse(_warehouse_json(warehouse, request))


# -- statements ------------------------------------------------------------------------


@api(API_SCOPES["sql.statements"])
async def execute_statement(request: Request, call: Call) -> Response:
    submitted = statement_request(await read_json(request))
    backend = _backend(call)
    warehouse = backend.warehouse(submitted.warehouse_id)
    call.require("CAN_USE", *warehouse.securable)
    statement = backend.statements.submit(call.principal, warehouse, submitted)
    if submitted.wait_seconds == 0:
        call.reason += f"; statement {statement.id} submitted: it runs when first polled"
    else:
        await advance(call, statement, submitted.wait_seconds)
        if statement.state == RUNNING and submitted.cancel_on_timeout:
            backend.statements.cancel(statement)
    call.resource = warehouse.audit_resource
    return JSONResponse(statement_json(statement))


@api(API_SCOPES["sql.statements"])
async def get_statement(request: Request, call: Call) -> Response:
    statement = _caller_statement(request, call)
    await advance(call, statement, POLL_WAIT_SECONDS)
    return JSONResponse(statement_json(statement))


@api(API_SCOPES["sql.statements"])
async def get_result_chunk(request: Request, call: Call) -> Response:
    statement = _caller_statement(request, call)
    if statement.state != SUCCEEDED:
        raise BadRequest(
            f"Statement {statement.id} is {statement.state}: only a SUCCEEDED statement has result chunks.", error_code="INVALID_STATE"
        )
    raw = request.path_params["chunk_index"]
    chunks = statement.result.chunks
    # isascii: str.isdigit() is also true for digits such as '²' that int() refuses; the length
    # keeps int() from a number of thousands of digits, which it refuses too.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9 and int(raw) < len(chunks)):
        raise BadRequest(f"Chunk index {raw[:40]!r} is not one of this result's chunks: 0 to {len(chunks) - 1}.")
    return JSONResponse(_chunk_json(statement, chunks[int(raw)]))


@api(API_SCOPES["sql.statements"])
async def cancel_execution(request: Request, call: Call) -> Response:
    statement = _caller_statement(request, call)
    # A statement that already finished stays as it is: cancel only requests it (as on the platform).
    _backend(call).statements.cancel(statement)
    return JSONResponse({})


def _caller_statement(request: Request, call: Call) -> Statement:
    statement = _backend(call).statements.get(request.path_params["statement_id"], call.principal)
    call.resource = statement.warehouse.audit_resource
    return statement


# -- the StatementResponse shape -------------------------------------------------------


def statement_json(statement: Statement) -> dict[str, Any]:
    status: dict[str, Any] = {"state": statement.state}
    body: dict[str, Any] = {"statement_id": statement.id, "status": status}
    if statement.state == FAILED:
        status["error"] = {"error_code": ENGINE_ERROR_CODE, "message": statement.failure.message}
        if statement.failure.sql_state:
            status["sql_state"] = statement.failure.sql_state
    if statement.state == SUCCEEDED:
        body["manifest"] = _manifest(statement.result)
        body["result"] = _chunk_json(statement, statement.result.chunks[0])
    return body


def _manifest(result: Result) -> dict[str, Any]:
    return {
        "format": "JSON_ARRAY",
        "schema": {"column_count": len(result.columns), "columns": [_column_json(c) for c in result.columns]},
        "total_chunk_count": len(result.chunks),
        "total_row_count": result.row_count,
        "truncated": result.truncated,
        "chunks": [{"chunk_index": c.index, "row_offset": c.row_offset, "row_count": len(c.rows)} for c in result.chunks],
    }


def _column_json(column: Column) -> dict[str, Any]:
    body: dict[str, Any] = {"name": column.name, "type_name": column.type_name, "type_text": column.type_text, "position": column.position}
    if column.precision is not None:
        body["type_precision"], body["type_scale"] = column.precision, column.scale
    return body


def _chunk_json(statement: Statement, chunk: Chunk) -> dict[str, Any]:
    body: dict[str, Any] = {"chunk_index": chunk.index, "row_offset": chunk.row_offset, "row_count": len(chunk.rows)}
    if chunk.rows:
        body["data_array"] = chunk.rows
    if chunk.index + 1 < len(statement.result.chunks):
        body["next_chunk_index"] = chunk.index + 1
        body["next_chunk_internal_link"] = f"{STATEMENTS_PATH}/{statement.id}/result/chunks/{chunk.index + 1}"
    return body


routes = [
    Route("/api/2.0/sql/warehouses", list_warehouses, methods=["GET"]),
    Route("/api/2.0/sql/warehouses/{warehouse_id}", get_warehouse, methods=["GET"]),
    Route(STATEMENTS_PATH, execute_statement, methods=["POST"]),
    Route(f"{STATEMENTS_PATH}/{{statement_id}}", get_statement, methods=["GET"]),
    Route(f"{STATEMENTS_PATH}/{{statement_id}}/result/chunks/{{chunk_index}}", get_result_chunk, methods=["GET"]),
    Route(f"{STATEMENTS_PATH}/{{statement_id}}/cancel", cancel_execution, methods=["POST"]),
]
