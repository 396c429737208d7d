"""Unity Catalog: catalogs, schemas, tables (with row filters and column masks) and functions,
and the grants on them; the data every other service reads."""

from obo_auth.local.catalog import seed
from obo_auth.local.catalog.models import CatalogBackend, uc_parent
from obo_auth.local.catalog.routes import routes
from obo_auth.local.catalog.scopes import API_SCOPES
from obo_auth.local.service import SecurableType, Service

SECURABLE_TYPES = {
    "catalog": SecurableType("catalog", frozenset({"USE CATALOG", "USE SCHEMA", "SELECT", "EXECUTE"})),
    "schema": SecurableType("schema", frozenset({"USE SCHEMA", "SELECT", "EXECUTE"}), uc_parent),
    "table": SecurableType("table", frozenset({"SELECT"}), uc_parent),
    "function": SecurableType("function", frozenset({"EXECUTE"}), uc_parent),
}


def _securables(section) -> dict[str, set[str]]:
    names = [t.name for t in section.tables] + [f.name for f in section.functions]
    schemas, catalogs = seed.schemas_and_catalogs(names)
    return {
        "catalog": catalogs,
        "schema": schemas,
        "table": {t.name for t in section.tables},
        "function": {f.name for f in section.functions},
    }


def _build(section, state) -> CatalogBackend:
    catalog = CatalogBackend(section.tables, section.functions)
    # Every caller's view now (the seed check has tried each filter and mask): the first
    # queries are then as fast as the rest.
    for table in catalog.tables:
        for principal in state.identity.principals:
            catalog.view(table, principal)
    return catalog


SERVICE = Service(
    name="catalog",
    routes=routes,
    seed_fields=seed.SEED_FIELDS,
    securable_types=SECURABLE_TYPES,
    api_scopes=API_SCOPES,
    requires=("identity",),
    securables=_securables,
    check_seed=seed.check,
    build=_build,
    resource_names=lambda catalog: {"table": sorted(catalog.tables), "function": sorted(catalog.functions)},
)
