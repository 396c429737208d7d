"""The API scopes of the SQL warehouse routes (the umbrella scope ``sql`` covers both)."""

from obo_auth.local.service import OBO_DOCS, ApiScope

API_SCOPES = {
    "sql.warehouses": ApiScope("sql.warehouses", f"{OBO_DOCS}: SQL warehouse"),
    "sql.statements": ApiScope("sql.statement-execution", f"{OBO_DOCS}: SQL warehouse"),
}
