"""API scope strings and the math on them: pure functions, no I/O.

A downscoped token carries a set of API scopes (what ``UserAuthPolicy(api_scopes=...)``
holds when the model is logged). The platform accepts the long dotted names
(``vectorsearch.vector-search-indexes``) and, in newer docs, short umbrella names
(``vector-search``) that cover a whole API family.
"""

from __future__ import annotations

from collections.abc import Iterable

# The Model Serving allowlist, exactly as the platform's rejection message prints it
# ("Invalid user API scope(s) ... Allowed scopes are: ..."); see shared/REFERENCE.md.
MODEL_SERVING_ALLOWED_SCOPES: frozenset[str] = frozenset(
    {
        "sql",
        "sql.statement-execution",
        "sql.warehouses",
        "mcp.genie",
        "mcp.external",
        "mcp.sql",
        "mcp.vectorsearch",
        "mcp.functions",
        "catalog.connections",
        "vector-search",
        "vectorsearch.vector-search-indexes",
        "vectorsearch.vector-search-endpoints",
        "iam.current-user:read",
        "iam.access-control:read",
        "dashboards.genie",
        "genie",
        "ai-gateway",
        "unity-catalog",
        "apps.apps",
        "apps",
        "model-serving",
        "serving.serving-endpoints",
        "workspace.workspace",
    }
)

# Short umbrella names and the dotted scopes each one covers (Databricks OBO docs,
# newer edition, which use the short names interchangeably with the dotted ones).
UMBRELLA_SCOPES: dict[str, frozenset[str]] = {
    "vector-search": frozenset(
        {"vectorsearch.vector-search-indexes", "vectorsearch.vector-search-endpoints"}
    ),
    "model-serving": frozenset({"serving.serving-endpoints"}),
    "sql": frozenset({"sql.warehouses", "sql.statement-execution"}),
    "genie": frozenset({"dashboards.genie"}),
    "apps": frozenset({"apps.apps"}),
}

# Reported to be part of every downscoped token, whatever the model declared.
ALWAYS_GRANTED_SCOPES: frozenset[str] = frozenset({"iam.current-user:read", "iam.access-control:read"})


def normalize(scopes: Iterable[str]) -> list[str]:
    """Sorted, de-duplicated, whitespace-trimmed scope strings."""
    return sorted({s.strip() for s in scopes if s and s.strip()})


def expand(scopes: Iterable[str]) -> frozenset[str]:
    """Every scope ``scopes`` grants: themselves, what their umbrellas cover, and the always-granted ones."""
    granted = set(ALWAYS_GRANTED_SCOPES)
    for scope in scopes:
        granted.add(scope)
        granted |= UMBRELLA_SCOPES.get(scope, frozenset())
    return frozenset(granted)


def covers(granted: Iterable[str], required: str) -> bool:
    """True when a token holding ``granted`` scopes may call an API needing ``required``."""
    return required in expand(granted)
