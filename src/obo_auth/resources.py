"""Typed declarations of the Databricks resources an agent uses, and the API scopes they need.

A declaration says what the agent touches and as whom. ``on_behalf_of_user=True`` (the
default) means the agent reaches the resource with the invoker's downscoped token, so the
logged model must ask for the resource's API scopes (:func:`required_scopes`).
``on_behalf_of_user=False`` means the agent's own identity: the resource then goes to the
system side of the auth policy (:meth:`ResourceDeclaration.to_mlflow`).

Why True by default: a wrongly-OBO resource fails loudly (403 for a user without access),
while a wrongly-system resource fails silently, handing every invoker the deployer's access.

mlflow is imported only where an mlflow object is built: importing it costs seconds, and
declarations are also read by code that never logs a model (the CLI, the serving edge).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from obo_auth.errors import ArgumentTypeError, InvalidScopeError, ResourceDeclarationError
from obo_auth.scopes import MODEL_SERVING, RUNTIME_NAMES, UnknownScopeError, check_scopes, normalize

if TYPE_CHECKING:
    from mlflow.models.resources import DatabricksResource

__all__ = [
    "RESOURCE_SCOPES",
    "GenieSpace",
    "ResourceDeclaration",
    "ServingEndpoint",
    "SqlWarehouse",
    "UCConnection",
    "UCFunction",
    "UCTable",
    "VectorSearchIndex",
    "check_declarations",
    "check_one_identity_each",
    "required_scopes",
    "validate_scopes",
]

# Unity Catalog securables (indexes, tables, functions): catalog.schema.name, no spaces.
_THREE_PART = re.compile(r"[^.\s/`]+\.[^.\s/`]+\.[^.\s/`]+")
# Endpoint and connection names, warehouse and space ids: one path segment.
_ONE_PART = re.compile(r"[^.\s/`]+")


@dataclass(frozen=True, repr=False)
class ResourceDeclaration:
    """One Databricks resource the agent uses: its identifier (positional) and
    ``on_behalf_of_user`` (keyword-only, default True: see the module docstring).

    Declarations are frozen values: equal when they say the same thing, usable as dict keys.
    Subclasses name their identifier field, its shape and their mlflow twin.
    """

    on_behalf_of_user: bool = field(default=True, kw_only=True)

    _id_field: ClassVar[str]
    _id_rule: ClassVar[re.Pattern[str]]
    _example: ClassVar[str]
    _mlflow_class: ClassVar[str]  # a name in mlflow.models.resources (see the module docstring)
    # Its mlflow twin's ``type`` value, as MLmodel files name resources; known without importing mlflow.
    resource_type: ClassVar[str]

    @property
    def identifier(self) -> str:
        """The name or id the resource is declared by, whatever the subclass calls it."""
        return getattr(self, self._id_field)

    def __repr__(self) -> str:
        # As it is written, rather than dataclass order (the inherited keyword would come first).
        return f"{type(self).__name__}({self.identifier!r}, on_behalf_of_user={self.on_behalf_of_user})"

    def __post_init__(self) -> None:
        cls = type(self).__name__
        # bool is checked strictly: "false" or 0 from a config file would otherwise be read wrongly.
        if not isinstance(self.on_behalf_of_user, bool):
            raise ResourceDeclarationError(
                f"{cls}: on_behalf_of_user must be True or False, got {self.on_behalf_of_user!r}"
            )
        value = self.identifier
        if not isinstance(value, str) or not self._id_rule.fullmatch(value):
            shape = "a catalog.schema.name" if self._id_rule is _THREE_PART else "a single name (no dots, spaces or slashes)"
            raise ResourceDeclarationError(
                f"{cls}: {self._id_field}={value!r} is not valid; it must be {shape}, e.g. {cls}({self._example!r})"
            )

    def to_mlflow(self) -> DatabricksResource:
        """The matching ``mlflow.models.resources.Databricks*`` resource."""
        import mlflow.models.resources

        mlflow_class = getattr(mlflow.models.resources, self._mlflow_class)
        return mlflow_class(self.identifier, on_behalf_of_user=self.on_behalf_of_user)


@dataclass(frozen=True, repr=False)
class VectorSearchIndex(ResourceDeclaration):
    name: str
    _id_field = "name"
    _id_rule = _THREE_PART
    _example = "main.docs.handbook_index"
    _mlflow_class = "DatabricksVectorSearchIndex"
    resource_type = "vector_search_index"


@dataclass(frozen=True, repr=False)
class ServingEndpoint(ResourceDeclaration):
    name: str
    _id_field = "name"
    _id_rule = _ONE_PART
    _example = "databricks-meta-llama-3-3-70b-instruct"
    _mlflow_class = "DatabricksServingEndpoint"
    resource_type = "serving_endpoint"


@dataclass(frozen=True, repr=False)
class GenieSpace(ResourceDeclaration):
    space_id: str
    _id_field = "space_id"
    _id_rule = _ONE_PART
    _example = "01ef0123456789abcdef0123456789ab"
    _mlflow_class = "DatabricksGenieSpace"
    resource_type = "genie_space"


@dataclass(frozen=True, repr=False)
class SqlWarehouse(ResourceDeclaration):
    warehouse_id: str  # the id from the warehouse's connection details, not its display name
    _id_field = "warehouse_id"
    _id_rule = _ONE_PART
    _example = "abcdef1234567890"
    _mlflow_class = "DatabricksSQLWarehouse"
    resource_type = "sql_warehouse"


@dataclass(frozen=True, repr=False)
class UCConnection(ResourceDeclaration):
    connection_name: str
    _id_field = "connection_name"
    _id_rule = _ONE_PART
    _example = "github_api"
    _mlflow_class = "DatabricksUCConnection"
    resource_type = "uc_connection"


@dataclass(frozen=True, repr=False)
class UCTable(ResourceDeclaration):
    name: str
    _id_field = "name"
    _id_rule = _THREE_PART
    _example = "main.sales.orders"
    _mlflow_class = "DatabricksTable"
    resource_type = "table"


@dataclass(frozen=True, repr=False)
class UCFunction(ResourceDeclaration):
    name: str
    _id_field = "name"
    _id_rule = _THREE_PART
    _example = "main.tools.lookup_order"
    _mlflow_class = "DatabricksFunction"
    resource_type = "function"


_OBO_DOCS = "Databricks OBO docs, API-scope table (shared/REFERENCE.md 'API scopes')"
_VIA_SQL = (
    "OBO docs, supported resources: UC tables and functions are reached through the SQL "
    "Statement Execution API on a warehouse; no scope exists for a table or function itself"
)

# What an OBO token must hold for each resource, scope -> where that requirement comes from.
RESOURCE_SCOPES: dict[type[ResourceDeclaration], dict[str, str]] = {
    VectorSearchIndex: {
        "vectorsearch.vector-search-indexes": f"{_OBO_DOCS}: Vector Search index",
        "vectorsearch.vector-search-endpoints": (
            f"{_OBO_DOCS}: Vector Search endpoint. The index is served by its endpoint and public OBO "
            "retriever set-ups declare both; the released tools' own requests do not call the endpoints "
            "API (shared/API_SHAPES.md §6), so this is a margin against the platform's check that only "
            "exposes endpoint metadata"
        ),
        "serving.serving-endpoints": (
            "databricks-ai-search 0.81 ai_search/index.py _get_mlserving_endpoint_id: building the index "
            "client GETs the embedding model's serving endpoint with the invoker's token; without this scope "
            "a retriever tool on a managed-embedding index fails to construct (403)"
        ),
    },
    ServingEndpoint: {"serving.serving-endpoints": f"{_OBO_DOCS}: Model Serving endpoint"},
    GenieSpace: {"dashboards.genie": f"{_OBO_DOCS}: Genie space"},
    SqlWarehouse: {
        "sql.warehouses": f"{_OBO_DOCS}: SQL warehouse",
        "sql.statement-execution": f"{_OBO_DOCS}: SQL warehouse",
    },
    UCConnection: {
        "catalog.connections": f"{_OBO_DOCS}: UC connection",
        # As the docs pair them; the SDK's http_request itself is POST /api/2.0/external-function.
        "serving.serving-endpoints": f"{_OBO_DOCS}: UC connection",
    },
    UCTable: {"sql.statement-execution": _VIA_SQL, "sql.warehouses": _VIA_SQL},
    UCFunction: {"sql.statement-execution": _VIA_SQL, "sql.warehouses": _VIA_SQL},
}


def declaration_class(resource_type: str) -> type[ResourceDeclaration] | None:
    """The declaration class of an MLmodel resource type (``"vector_search_index"``), if obo_auth has one."""
    return next((cls for cls in RESOURCE_SCOPES if cls.resource_type == resource_type), None)


def check_declarations(resources: Iterable[object]) -> None:
    """Raises :class:`ArgumentTypeError` naming what to use for anything that is not a declaration."""
    for item in resources:
        if not isinstance(item, ResourceDeclaration):
            raise ArgumentTypeError(_not_a_declaration(item))


def check_one_identity_each(resources: Iterable[ResourceDeclaration]) -> None:
    """Raises :class:`ResourceDeclarationError` for a resource declared both as the user and as the agent."""
    as_whom: dict[tuple[type, str], bool] = {}
    for r in resources:
        if as_whom.setdefault((type(r), r.identifier), r.on_behalf_of_user) != r.on_behalf_of_user:
            raise ResourceDeclarationError(
                f"{type(r).__name__}({r.identifier!r}) is declared both on behalf of the user and as the "
                "agent itself; declare it once"
            )


def _not_a_declaration(item: object) -> str:
    kinds = ", ".join(cls.__name__ for cls in RESOURCE_SCOPES)
    cls = type(item)
    if cls.__module__ == "mlflow.models.resources":
        ours = next((c for c in RESOURCE_SCOPES if c._mlflow_class == cls.__name__), None)
        if ours is None:
            return f"obo_auth has no declaration for mlflow's {cls.__name__}; declarable resources: {kinds}"
        name = getattr(item, "name", "...")
        return (
            f"{cls.__name__}({name!r}) is an mlflow resource, not a declaration: use "
            f"obo_auth.{ours.__name__}({name!r}, on_behalf_of_user=...), which also derives the API scopes"
        )
    if isinstance(item, str):
        return f"{item!r} is a plain string: say what it is, e.g. VectorSearchIndex({item!r}) ({kinds})"
    if isinstance(item, (list, tuple, set, frozenset)):
        return "got a collection; pass the declarations as separate arguments: f(*resources)"
    return f"expected a resource declaration ({kinds}), got {cls.__name__}"


def required_scopes(*resources: ResourceDeclaration) -> list[str]:
    """Sorted, de-duplicated API scopes of the resources used on behalf of the user.

    Resources with ``on_behalf_of_user=False`` add none: the agent reaches them as itself.
    """
    check_declarations(resources)
    return normalize(scope for r in resources if r.on_behalf_of_user for scope in RESOURCE_SCOPES[type(r)])


def validate_scopes(scopes: Iterable[str], runtime: str = MODEL_SERVING) -> list[str]:
    """Normalised scopes, each on the allowlist of ``runtime`` (Model Serving's by default, or
    ``"apps"``: the user_api_scopes Databricks Apps accept).

    The platform checks scopes only when the model or App is deployed; checking them here turns
    a typo into an error at once, with the nearest valid scope in the message.
    """
    try:
        return check_scopes(scopes, runtime)
    except UnknownScopeError as unknown:
        raise InvalidScopeError(
            f"{RUNTIME_NAMES[runtime]} would refuse the API scope(s) {', '.join(unknown.hints)} at deploy time. "
            f"Allowed scopes: {', '.join(unknown.allowed)}"
        ) from None
    except TypeError as wrong:
        raise ArgumentTypeError(str(wrong)) from None
