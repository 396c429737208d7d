"""obo_auth: on-behalf-of-user authentication for Databricks agents, pinned to each request."""

from obo_auth.context import RequestContext, current_request
from obo_auth.decorator import on_behalf_of_user
from obo_auth.degrade import Degradation, degraded_note, degraded_outputs
from obo_auth.errors import (
    ArgumentTypeError,
    CrossRequestError,
    InvalidScopeError,
    KeptUnsafeWarning,
    MalformedTokenError,
    NoInvokerError,
    OboAuthError,
    OutsideRequestError,
    RequestEndedError,
    ResourceDeclarationError,
    ToolUnavailableError,
    WorkspaceMismatchError,
)
from obo_auth.invoker import as_user
from obo_auth.policy import auth_policy, log_model
from obo_auth.resources import (
    RESOURCE_SCOPES,
    GenieSpace,
    ResourceDeclaration,
    ServingEndpoint,
    SqlWarehouse,
    UCConnection,
    UCFunction,
    UCTable,
    VectorSearchIndex,
    required_scopes,
    validate_scopes,
)

__all__ = [
    "RESOURCE_SCOPES",
    "ArgumentTypeError",
    "CrossRequestError",
    "Degradation",
    "GenieSpace",
    "ResourceDeclaration",
    "ServingEndpoint",
    "SqlWarehouse",
    "UCConnection",
    "UCFunction",
    "UCTable",
    "VectorSearchIndex",
    "auth_policy",
    "log_model",
    "required_scopes",
    "validate_scopes",
    "InvalidScopeError",
    "KeptUnsafeWarning",
    "MalformedTokenError",
    "NoInvokerError",
    "OboAuthError",
    "OutsideRequestError",
    "RequestContext",
    "RequestEndedError",
    "ResourceDeclarationError",
    "ToolUnavailableError",
    "WorkspaceMismatchError",
    "as_user",
    "current_request",
    "degraded_note",
    "degraded_outputs",
    "on_behalf_of_user",
]
