"""obo_auth: on-behalf-of-user authentication for Databricks agents, pinned to each request.

The public names below are imported on first use (PEP 562), not with the package: the CLI,
the local workspace and local serving import ``obo_auth.<module>`` without paying for
databricks-sdk and mlflow, which only the agent-side names need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Public name -> the module that defines it.
_EXPORTS = {
    "AppConfig": "app_config",
    "app_config": "app_config",
    "OboAppMiddleware": "apps",
    "app_request": "apps",
    "RequestContext": "context",
    "current_request": "context",
    "on_behalf_of_user": "decorator",
    "Degradation": "degrade",
    "degraded_note": "degrade",
    "degraded_outputs": "degrade",
    "ArgumentTypeError": "errors",
    "CrossRequestError": "errors",
    "InvalidScopeError": "errors",
    "KeptUnsafeWarning": "errors",
    "MalformedTokenError": "errors",
    "NoInvokerError": "errors",
    "OboAuthError": "errors",
    "OutsideRequestError": "errors",
    "RequestEndedError": "errors",
    "ResourceDeclarationError": "errors",
    "ToolUnavailableError": "errors",
    "WorkspaceMismatchError": "errors",
    "as_user": "invoker",
    "auth_policy": "policy",
    "log_model": "policy",
    "RESOURCE_SCOPES": "resources",
    "GenieSpace": "resources",
    "ResourceDeclaration": "resources",
    "ServingEndpoint": "resources",
    "SqlWarehouse": "resources",
    "UCConnection": "resources",
    "UCFunction": "resources",
    "UCTable": "resources",
    "VectorSearchIndex": "resources",
    "required_scopes": "resources",
    "validate_scopes": "resources",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'obo_auth' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"obo_auth.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from obo_auth.app_config import AppConfig, app_config
    from obo_auth.apps import OboAppMiddleware, app_request
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
