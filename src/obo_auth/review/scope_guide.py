"""What each API scope lets an agent do as its user, in plain words, and the risks the
platform documents for it. A reviewer reads these; an end user reads the summary built
from them. Scopes are the Model Serving allowlist (obo_auth.scopes); short umbrella names
read as the dotted scopes they cover.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Risk:
    id: str
    severity: str  # "high": can reach beyond the user's own rights or change data; "medium": worth a decision
    text: str


@dataclass(frozen=True)
class ScopeGuide:
    allows: str  # what a token holding it may do, as the user
    does_not: str  # where its reach ends
    as_you: str  # the same for the end user: what the agent can do as them, whatever it was declared for
    risks: tuple[Risk, ...] = ()


_ENDPOINT_RIGHTS = Risk(
    "endpoint-own-rights",
    "high",
    "The agent can call any serving endpoint the user may query. An endpoint can hold rights of its own (another agent "
    "with resources it reaches as itself, or an external model's credential), so a call through it can return data the "
    "user could not read directly (Databricks OBO docs). Declare each endpoint the agent calls and review what those "
    "endpoints reach as themselves.",
)
_SQL_WRITES = Risk(
    "write-capable",
    "high",
    "SQL statements can change data, not only read it: INSERT, UPDATE, DELETE, MERGE, DROP run wherever the user holds "
    "MODIFY or ownership. An agent that builds SQL from a conversation can be led to write as the user; prefer read-only "
    "tools (Genie, UC functions) or validate statements.",
)
_WORKSPACE_WRITES = Risk(
    "write-capable",
    "high",
    "The Workspace API reads and writes notebooks and files as the user, including deleting them.",
)
_UC_WRITES = Risk(
    "write-capable",
    "high",
    "Unity Catalog APIs can create, alter and drop catalog objects and change grants the user owns, not only read them.",
)
_CONNECTION_CREDENTIAL = Risk(
    "connection-credential",
    "medium",
    "Calls leave Databricks with the connection's credential. Unless the connection holds per-user credentials, every "
    "user reaches the external service as the same identity, and that service cannot tell users apart.",
)
_APP_RIGHTS = Risk(
    "app-own-rights",
    "high",
    "The agent can call Databricks Apps as the user. An App runs with its own service principal, whose rights can be "
    "broader than the user's.",
)
_EXTERNAL_MCP = Risk(
    "connection-credential",
    "medium",
    "External MCP servers are reached through UC connections, with the connection's credential.",
)

_SERVING = ScopeGuide(
    "query Model Serving endpoints the user has CAN_QUERY on (models, agents, external models), and read endpoint metadata",
    "create, change or delete endpoints",
    "query any model serving endpoint you can query, including other agents and external models, which may act with "
    "rights of their own",
    (_ENDPOINT_RIGHTS,),
)
_INDEXES = ScopeGuide(
    "query and read vector search indexes the user has SELECT on; Unity Catalog row filters apply to the user",
    "write to indexes or read indexes the user cannot",
    "search any vector search index you can read",
)
_ENDPOINTS = ScopeGuide(
    "read vector search endpoint metadata (name, state)", "read index contents or change endpoints", "see vector search endpoint details"
)
_WAREHOUSES = ScopeGuide(
    "list and read SQL warehouses the user can use", "run statements (that is sql.statement-execution)", "see the SQL warehouses you can use"
)
_STATEMENTS = ScopeGuide(
    "run SQL statements on warehouses the user can use, on the tables and functions the user has rights on",
    "bypass Unity Catalog grants, row filters or column masks",
    "run SQL on any warehouse you can use, against any table you can access, including statements that change or delete data",
    (_SQL_WRITES,),
)
_GENIE = ScopeGuide(
    "ask Genie spaces the user can run questions; Genie runs read-only SQL on the space's tables as the user",
    "reach tables outside the user's grants",
    "ask any Genie space you can use questions (Genie runs read-only SQL as you)",
)
_APPS = ScopeGuide(
    "call Databricks Apps the user can use", "create or change Apps",
    "call any Databricks App you can use (an App acts with rights of its own)", (_APP_RIGHTS,),
)

GUIDES: dict[str, ScopeGuide] = {
    "serving.serving-endpoints": _SERVING,
    "model-serving": _SERVING,
    "vectorsearch.vector-search-indexes": _INDEXES,
    "vectorsearch.vector-search-endpoints": _ENDPOINTS,
    "vector-search": ScopeGuide(f"{_INDEXES.allows}; and {_ENDPOINTS.allows}", _INDEXES.does_not, f"{_INDEXES.as_you}, and {_ENDPOINTS.as_you}"),
    "sql.warehouses": _WAREHOUSES,
    "sql.statement-execution": _STATEMENTS,
    "sql": ScopeGuide(f"{_WAREHOUSES.allows}; and {_STATEMENTS.allows}", _STATEMENTS.does_not, _STATEMENTS.as_you, (_SQL_WRITES,)),
    "dashboards.genie": _GENIE,
    "genie": _GENIE,
    "catalog.connections": ScopeGuide(
        "call external services through Unity Catalog connections the user has USE CONNECTION on",
        "read the connection's stored credential",
        "call external services through any Unity Catalog connection you can use",
        (_CONNECTION_CREDENTIAL,),
    ),
    "unity-catalog": ScopeGuide(
        "use Unity Catalog APIs as the user: list and read catalogs, schemas, tables and functions the user can see",
        "see objects the user has no privilege on",
        "read and change the Unity Catalog objects you have rights on (catalogs, schemas, tables, functions, grants)",
        (_UC_WRITES,),
    ),
    "iam.current-user:read": ScopeGuide(
        "read the user's own identity (user name, display name, email, groups); in every on-behalf-of-user token",
        "read other users",
        "read your user name, email and groups",
    ),
    "iam.access-control:read": ScopeGuide(
        "read users, groups and permissions visible to the user; in every on-behalf-of-user token", "change them",
        "read the users, groups and permissions visible to you",
    ),
    "apps.apps": _APPS,
    "apps": _APPS,
    "workspace.workspace": ScopeGuide(
        "read and write workspace objects (notebooks, files, folders) the user can", "reach other users' private folders",
        "read, change and delete the notebooks and files you can edit in the workspace", (_WORKSPACE_WRITES,),
    ),
    "ai-gateway": ScopeGuide(
        "call AI Gateway routes as the user (usage is tracked to the user)", "change gateway configuration", "call AI Gateway routes as you"
    ),
    "mcp.genie": ScopeGuide(
        "use Databricks-managed MCP servers for Genie spaces as the user", "reach spaces the user cannot",
        "ask Genie spaces you can use, through managed MCP servers",
    ),
    "mcp.functions": ScopeGuide(
        "call Unity Catalog functions through the managed MCP server, with the user's EXECUTE rights",
        "run functions the user cannot",
        "run any Unity Catalog function you can execute, through managed MCP servers",
    ),
    "mcp.vectorsearch": ScopeGuide(
        "query vector search indexes through the managed MCP server, as the user", "reach indexes the user cannot",
        "search vector search indexes you can read, through managed MCP servers",
    ),
    "mcp.sql": ScopeGuide(
        "run SQL through the managed MCP server, as the user", "bypass Unity Catalog grants",
        "run SQL as you through managed MCP servers, including statements that change data", (_SQL_WRITES,)
    ),
    "mcp.external": ScopeGuide(
        "use external MCP servers through Unity Catalog connections the user can use", "read the stored credential",
        "use external MCP servers through connections you can use", (_EXTERNAL_MCP,),
    ),
}

_FILES = ScopeGuide(
    "read and write files in Unity Catalog volumes and the workspace the user can (Files API)", "reach files the user cannot",
    "read, change and delete the files you can write in volumes and the workspace", (_WORKSPACE_WRITES,),
)
# Scopes only Databricks Apps take (scopes.APPS_ALLOWED_SCOPES).
GUIDES.update(
    {
        "catalog.catalogs:read": ScopeGuide("list and read the catalogs the user can see", "change them", "see the catalogs you can see"),
        "catalog.schemas:read": ScopeGuide("list and read the schemas the user can see", "change them", "see the schemas you can see"),
        "catalog.tables:read": ScopeGuide(
            "read the metadata of tables the user can see (names, columns, properties)", "read rows (that takes sql)",
            "see the tables you can see and their columns",
        ),
        "files": _FILES,
        "files.files": _FILES,
        "postgres": ScopeGuide(
            "connect to Lakebase Postgres databases as the user", "bypass Postgres roles and grants",
            "read and change the Lakebase databases you can use",
        ),
        "sql.query-history:read": ScopeGuide(
            "read the user's SQL query history", "run statements", "read your SQL query history, including the statements' text"
        ),
    }
)

UNKNOWN = ScopeGuide("nothing: the platform refuses this scope when the model or App is deployed", "anything", "")
