"""The API scope of the Apps routes (the umbrella scope ``apps`` covers it: obo_auth/scopes.py)."""

from obo_auth.local.service import OBO_DOCS, ApiScope

API_SCOPES = {
    "apps": ApiScope("apps.apps", f"{OBO_DOCS}: Databricks App"),
}
