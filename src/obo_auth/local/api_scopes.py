"""Which API scope each API of the local workspace needs from a downscoped token.

One table, with where each scope string comes from. A token without scopes (a personal
access token, or an OAuth token for ``all-apis``) may call every API; a downscoped token
only those whose scope it holds, else 403 ``Invalid scope``.
"""

from __future__ import annotations

from dataclasses import dataclass

_OBO_DOCS = "Databricks agent-authoring docs, on-behalf-of-user resource table"
_ALLOWLIST = "Model Serving allowlist, as the platform's 'Invalid user API scope(s)' message prints it"


@dataclass(frozen=True)
class ApiScope:
    scope: str
    source: str


# Keys are the API families the routes declare.
API_SCOPES: dict[str, ApiScope] = {
    "scim.me": ApiScope("iam.current-user:read", f"{_ALLOWLIST}; reported to be in every downscoped token"),
    "scim.directory": ApiScope("iam.access-control:read", f"{_ALLOWLIST}; reported to be in every downscoped token"),
    "vector-search.endpoints": ApiScope("vectorsearch.vector-search-endpoints", f"{_OBO_DOCS}: Vector Search endpoint"),
    "vector-search.indexes": ApiScope("vectorsearch.vector-search-indexes", f"{_OBO_DOCS}: Vector Search index"),
    "serving.endpoints": ApiScope("serving.serving-endpoints", f"{_OBO_DOCS}: Model Serving endpoint"),
    "unity-catalog.tables": ApiScope("unity-catalog", f"{_ALLOWLIST} (the short name newer docs use for Unity Catalog)"),
}
