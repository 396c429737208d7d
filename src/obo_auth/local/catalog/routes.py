"""Unity Catalog routes: tables (what the retriever tools read to describe an index's columns)
and functions (what UC function toolkits read before calling one through a SQL warehouse)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from obo_auth.local._base import uc_name
from obo_auth.local.catalog.models import CatalogBackend, TableLike
from obo_auth.local.catalog.scopes import API_SCOPES
from obo_auth.local.handler import Call, api

TYPE_NAMES = {"string": "STRING", "int": "LONG", "double": "DOUBLE", "boolean": "BOOLEAN"}
TYPE_TEXTS = {"string": "string", "int": "bigint", "double": "double", "boolean": "boolean"}


def _catalog(call: Call) -> CatalogBackend:
    return call.state.services["catalog"]


def _column(name: str, kind: str, position: int, nullable: bool = True) -> dict[str, Any]:
    type_json = json.dumps({"name": name, "type": TYPE_TEXTS[kind], "nullable": nullable, "metadata": {}})
    return {"name": name, "type_name": TYPE_NAMES[kind], "type_text": TYPE_TEXTS[kind], "type_json": type_json, "position": position, "nullable": nullable}


@api(API_SCOPES["unity-catalog.tables"])
async def get_table(request: Request, call: Call) -> Response:
    name = uc_name(request.path_params["name"], "table")
    call.resource = f"table:{name}"
    catalog = _catalog(call)
    found = catalog.table_or_like(name)
    securable_type = found.securable_type if isinstance(found, TableLike) else "table"
    call.resource = f"{securable_type}:{name}"
    call.reason = catalog.require(call.require, "SELECT", securable_type, name)
    catalog_name, schema, table = name.split(".")
    primary_key = found.primary_key if isinstance(found, TableLike) else None
    body: dict[str, Any] = {
        "name": table,
        "catalog_name": catalog_name,
        "schema_name": schema,
        "full_name": name,
        "table_type": "MANAGED",
        "data_source_format": "DELTA",
        "columns": [_column(c, t, p, c != primary_key) for p, (c, t) in enumerate(found.columns.items())],
    }
    if not isinstance(found, TableLike):
        if found.comment:
            body["comment"] = found.comment
        if found.row_filter:
            body["row_filter"] = {"function_name": f"{catalog_name}.{schema}.{table}_row_filter", "input_column_names": []}
        for column in body["columns"]:
            if column["name"] in found.column_masks:
                column["mask"] = {"function_name": f"{catalog_name}.{schema}.{table}_{column['name']}_mask"}
    return JSONResponse(body)


@api(API_SCOPES["unity-catalog.functions"])
async def get_function(request: Request, call: Call) -> Response:
    name = uc_name(request.path_params["name"], "function")
    call.resource = f"function:{name}"
    catalog = _catalog(call)
    function = catalog.function(name)
    call.reason = catalog.require(call.require, "EXECUTE", "function", name)
    catalog_name, schema, short = name.split(".")
    parameters = [
        {**_column(p, t, i), "parameter_mode": "IN", "parameter_type": "PARAM"} for i, (p, t) in enumerate(function.parameters.items())
    ]
    body = {
        "name": short,
        "catalog_name": catalog_name,
        "schema_name": schema,
        "full_name": name,
        "input_params": {"parameters": parameters},
        "data_type": TYPE_NAMES[function.returns],
        "full_data_type": TYPE_TEXTS[function.returns],
        "routine_body": "SQL",
        "routine_definition": function.body,
        "parameter_style": "S",
        "is_deterministic": False,
        "sql_data_access": "CONTAINS_SQL",
        "is_null_call": False,
        "security_type": "DEFINER",
        "specific_name": short,
    }
    if function.comment:
        body["comment"] = function.comment
    return JSONResponse(body)


routes = [
    Route("/api/2.1/unity-catalog/tables/{name}", get_table, methods=["GET"]),
    Route("/api/2.1/unity-catalog/functions/{name}", get_function, methods=["GET"]),
]
