"""The API scope of the Genie routes (the umbrella scope ``genie`` covers it: obo_auth/scopes.py)."""

from obo_auth.local.service import OBO_DOCS, ApiScope

API_SCOPES = {
    "genie": ApiScope("dashboards.genie", f"{OBO_DOCS}: Genie space"),
}
