"""The API scopes of the Unity Catalog routes."""

from obo_auth.local.service import ALLOWLIST, ApiScope

API_SCOPES = {
    "unity-catalog.tables": ApiScope("unity-catalog", f"{ALLOWLIST} (the short name newer docs use for Unity Catalog)"),
    "unity-catalog.functions": ApiScope("unity-catalog", f"{ALLOWLIST} (the short name newer docs use for Unity Catalog)"),
}
