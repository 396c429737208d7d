"""API scope strings and the math on them: pure functions, no I/O.

Neutral ground: both the agent side (``obo_auth.resources``, at log time) and the local
workspace (when it mints a downscoped token) check scope strings here.

A downscoped token carries a set of API scopes (what ``UserAuthPolicy(api_scopes=...)``
holds when the model is logged). The platform accepts the long dotted names
(``vectorsearch.vector-search-indexes``) and, in newer docs, short umbrella names
(``vector-search``) that cover a whole API family.
"""

from __future__ import annotations

import difflib
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

# What a Databricks App's user_api_scopes may hold: a different list from Model Serving's
# (shared/REFERENCE.md). As public projects found by probing the Apps API (PATCH
# /api/2.0/apps/{name} validates scopes before it looks the App up), 2026: the short names,
# the dotted aliases still accepted, and the two always-granted defaults. Not accepted:
# sql.warehouses, unity-catalog, apps, apps.apps, mcp.sql.
APPS_ALLOWED_SCOPES: frozenset[str] = frozenset(
    {
        "sql",
        "sql.statement-execution",
        "sql.query-history:read",
        "genie",
        "dashboards.genie",
        "files",
        "files.files",
        "vector-search",
        "vectorsearch.vector-search-indexes",
        "vectorsearch.vector-search-endpoints",
        "ai-gateway",
        "model-serving",
        "serving.serving-endpoints",
        "postgres",
        "workspace.workspace",
        "mcp.external",
        "mcp.functions",
        "mcp.genie",
        "mcp.vectorsearch",
        "catalog.connections",
        "catalog.catalogs:read",
        "catalog.schemas:read",
        "catalog.tables:read",
        "iam.current-user:read",
        "iam.access-control:read",
    }
)

# A Model Serving scope an App cannot ask for, and the App scope that grants the same APIs.
APPS_EQUIVALENT: dict[str, str] = {"sql.warehouses": "sql"}

# Where a downscoped token is minted: which allowlist its scopes must be on.
MODEL_SERVING = "model_serving"
APPS = "apps"
ALLOWLISTS: dict[str, frozenset[str]] = {MODEL_SERVING: MODEL_SERVING_ALLOWED_SCOPES, APPS: APPS_ALLOWED_SCOPES}
RUNTIME_NAMES: dict[str, str] = {MODEL_SERVING: "Model Serving", APPS: "Databricks Apps"}

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


_SHOWN_CHARS = 80


class UnknownScopeError(ValueError):
    """Scope strings not on an allowlist (Model Serving's, or Databricks Apps').

    ``hints`` names each with the nearest valid scope (``'sql.warehouse' (did you mean
    'sql.warehouses'?)``); ``allowed`` is the allowlist, sorted. Callers word the message
    for where the scope would be refused (at deploy time, by the workspace, ...).
    """

    def __init__(self, hints: list[str], allowed: list[str]):
        super().__init__(f"Unknown API scope(s) {', '.join(hints)}. Allowed scopes: {', '.join(allowed)}")
        self.hints = hints
        self.allowed = allowed


def check_scopes(scopes: Iterable[str], runtime: str = MODEL_SERVING) -> list[str]:
    """``normalize(scopes)``, each on the allowlist of ``runtime`` (``MODEL_SERVING`` or ``APPS``):
    a downscoped token can only hold what that runtime would put in one.

    Raises TypeError for one string instead of a list, or an item that is not a string, and
    UnknownScopeError naming the nearest valid scope of each unknown one.
    """
    if isinstance(scopes, str):
        raise TypeError(f"API scopes are a list of strings, e.g. [{scopes!r}], not one string")
    scopes = list(scopes)
    for scope in scopes:
        if not isinstance(scope, str):
            raise TypeError(f"an API scope is a string, got {type(scope).__name__}: {scope!r}")
    normalized = normalize(scopes)
    allowed = ALLOWLISTS[runtime]
    unknown = [s for s in normalized if s not in allowed]
    if unknown:
        vocabulary = sorted(allowed)
        raise UnknownScopeError([_hint(scope, vocabulary) for scope in unknown], vocabulary)
    return normalized


def _hint(scope: str, vocabulary: list[str]) -> str:
    nearest = difflib.get_close_matches(scope, vocabulary, n=1)
    shown = repr(scope if len(scope) <= _SHOWN_CHARS else scope[:_SHOWN_CHARS] + "...")  # an error is one readable line
    return f"{shown} (did you mean {nearest[0]!r}?)" if nearest else shown


def for_apps(scopes: Iterable[str]) -> list[str]:
    """Model Serving scopes as a Databricks App asks for the same APIs: a scope Apps refuse as the
    App scope that grants it (``sql.warehouses`` -> ``sql``), and nothing an umbrella already in
    the list covers (``sql`` holds ``sql.statement-execution``). No scope is widened otherwise:
    ``sql.statement-execution`` alone stays itself."""
    mapped = {APPS_EQUIVALENT.get(scope, scope) for scope in scopes}
    covered = {inner for scope in mapped for inner in UMBRELLA_SCOPES.get(scope, ())}
    return normalize(mapped - covered)
