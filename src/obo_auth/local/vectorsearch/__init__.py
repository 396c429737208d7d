"""Vector search: endpoints, and indexes (Delta Sync ones built from catalog tables, Direct Vector
Access ones from the seed's rows), queried as the caller."""

from obo_auth.local.catalog.models import TableLike, uc_parent
from obo_auth.local.catalog.seed import schemas_and_catalogs
from obo_auth.local.service import SecurableType, Service
from obo_auth.local.vectorsearch import seed
from obo_auth.local.vectorsearch.models import DeltaSyncIndex, DirectAccessIndex, Index, VectorSearchBackend
from obo_auth.local.vectorsearch.routes import routes
from obo_auth.local.vectorsearch.scopes import API_SCOPES

SECURABLE_TYPES = {
    "index": SecurableType("vector search index", frozenset({"SELECT"}), uc_parent),
    "vector_search_endpoint": SecurableType("vector search endpoint", frozenset({"CAN_USE"})),
}


def _build(section, state) -> VectorSearchBackend:
    catalog = state.services["catalog"]
    indexes: list[Index] = [
        DirectAccessIndex.of(i) if isinstance(i, seed.DirectAccessIndexSeed) else DeltaSyncIndex.of(i, catalog.table(i.source_table))
        for i in section.indexes
    ]
    for index in indexes:
        # An index of either kind lives in a schema and is described as a table, to whoever may read it
        # (its scalar columns: the catalog's column types have no array for a vector).
        catalog.add_table_like(TableLike(index.name, "index", index.columns, index.primary_key))
    return VectorSearchBackend([e.name for e in section.vector_search_endpoints], indexes, catalog)


def _securables(section) -> dict[str, set[str]]:
    schemas, catalogs = schemas_and_catalogs([i.name for i in section.indexes])
    return {
        "index": {i.name for i in section.indexes},
        "vector_search_endpoint": {e.name for e in section.vector_search_endpoints},
        "schema": schemas,
        "catalog": catalogs,
    }


def _resource_names(backend: VectorSearchBackend) -> dict[str, list[str]]:
    return {
        "vector_search_index": sorted(i.name for i in backend.indexes()),
        "vector_search_endpoint": sorted(backend.endpoints),
    }


SERVICE = Service(
    name="vectorsearch",
    routes=routes,
    seed_fields=seed.SEED_FIELDS,
    securable_types=SECURABLE_TYPES,
    api_scopes=API_SCOPES,
    requires=("catalog", "serving"),
    securables=_securables,
    check_seed=seed.check,
    build=_build,
    resource_names=_resource_names,
)
