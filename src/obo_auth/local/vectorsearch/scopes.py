"""The API scopes of the vector search routes."""

from obo_auth.local.service import OBO_DOCS, ApiScope

API_SCOPES = {
    "vector-search.endpoints": ApiScope("vectorsearch.vector-search-endpoints", f"{OBO_DOCS}: Vector Search endpoint"),
    "vector-search.indexes": ApiScope("vectorsearch.vector-search-indexes", f"{OBO_DOCS}: Vector Search index"),
}
