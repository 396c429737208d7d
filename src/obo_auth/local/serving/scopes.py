"""The API scopes of the serving endpoint routes."""

from obo_auth.local.service import OBO_DOCS, ApiScope

API_SCOPES = {
    "serving.endpoints": ApiScope("serving.serving-endpoints", f"{OBO_DOCS}: Model Serving endpoint"),
}
