"""The API scopes of the Unity Catalog connections routes.

The OBO docs pair two scopes for a UC connection (shared/REFERENCE.md, 'API scopes'), and the
route needs both: ``catalog.connections`` to use the connection, ``serving.serving-endpoints``
because the platform serves ``/api/2.0/external-function`` from Model Serving (the SDK's call is
``serving_endpoints.http_request``). The kernel checks one scope per route (handler.py), the
family's; the handler checks ``ALSO_NEEDED`` itself, with the same 403 'Invalid scope'.
"""

from obo_auth.local.service import OBO_DOCS, ApiScope

API_SCOPES = {
    "unity-catalog.connections": ApiScope("catalog.connections", f"{OBO_DOCS}: UC connection"),
}

ALSO_NEEDED = ApiScope(
    "serving.serving-endpoints",
    f"{OBO_DOCS}: UC connection (paired with catalog.connections; http_request is a Model Serving API in databricks-sdk)",
)
