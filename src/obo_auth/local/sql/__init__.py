"""SQL warehouses: the Statement Execution API over the catalog's tables and functions, each
statement run as its caller on an embedded DuckDB that holds only what the caller may see."""

from obo_auth.local.service import SecurableType, Service
from obo_auth.local.sql import seed
from obo_auth.local.sql.backend import SqlBackend
from obo_auth.local.sql.routes import routes
from obo_auth.local.sql.scopes import API_SCOPES
from obo_auth.local.sql.warehouses import LEVELS, Warehouse


def _build(section, state) -> SqlBackend:
    return SqlBackend([Warehouse(w.warehouse_id, w.name) for w in section.sql_warehouses], state.clock)


SERVICE = Service(
    name="sql",
    routes=routes,
    seed_fields=seed.SEED_FIELDS,
    securable_types={"sql_warehouse": SecurableType("SQL warehouse", frozenset(LEVELS), levels=LEVELS)},
    api_scopes=API_SCOPES,
    requires=("catalog",),
    securables=lambda s: {"sql_warehouse": {w.name for w in s.sql_warehouses}},
    check_seed=seed.check,
    build=_build,
    # By id: what a model's resource declaration (SqlWarehouse(warehouse_id=...)) names.
    resource_names=lambda backend: {"sql_warehouse": sorted(w.id for w in backend.warehouses())},
)
