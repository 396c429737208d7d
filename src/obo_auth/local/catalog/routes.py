"""Unity Catalog table lookups: what the retriever tools read to describe an index's columns."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from obo_auth.http_edge import NotFound
from obo_auth.local._base import uc_name
from obo_auth.local.handler import Call, api

_TYPE_NAMES = {"string": "STRING", "int": "INT", "double": "DOUBLE", "boolean": "BOOLEAN"}


@api("unity-catalog.tables")
async def get_table(request: Request, call: Call) -> Response:
    name = uc_name(request.path_params["name"], "table")
    index = next(
        (i for i in call.state.vector_search.indexes() if name in (i.name, i.source_table)),
        None,
    )
    if index is None:
        raise NotFound(f"Table '{name}' does not exist.")
    # An index is readable as a table by whoever may read the index (as in Unity Catalog).
    call.require("SELECT", "index" if name == index.name else "table", name)
    catalog, schema, table = name.split(".")
    return JSONResponse(
        {
            "name": table,
            "catalog_name": catalog,
            "schema_name": schema,
            "full_name": name,
            "table_type": "MANAGED",
            "columns": [
                {"name": c, "type_name": _TYPE_NAMES[t], "type_text": t, "position": p, "nullable": c != index.primary_key}
                for p, (c, t) in enumerate(index.columns.items())
            ],
        }
    )


routes = [Route("/api/2.1/unity-catalog/tables/{name}", get_table, methods=["GET"])]
