"""Declarations -> a Databricks App's authorization: its ``user_api_scopes`` and its own resources.

The same declarations an agent logs to Model Serving with (``obo_auth.log_model``) say what
an App needs: the API scopes of the resources it reaches as its user become the App's user
authorization scopes, in the names Databricks Apps accept (``sql.warehouses`` becomes
``sql``), checked against the Apps allowlist now rather than at deploy time; the resources
it reaches as itself become App resources granted to its service principal. ``bundle()`` is
the fragment of a ``databricks.yml`` app (``resources.apps.<key>``) that says both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from obo_auth.errors import ResourceDeclarationError
from obo_auth.resources import (
    GenieSpace,
    ResourceDeclaration,
    ServingEndpoint,
    SqlWarehouse,
    UCConnection,
    UCFunction,
    UCTable,
    VectorSearchIndex,
    check_declarations,
    check_one_identity_each,
    required_scopes,
    validate_scopes,
)
from obo_auth.scopes import APPS, for_apps

__all__ = ["AppConfig", "app_config"]


def _uc(kind: str, permission: str) -> Callable[[str], dict[str, Any]]:
    return lambda name: {"uc_securable": {"securable_full_name": name, "securable_type": kind, "permission": permission}}


# How an App resource (databricks-sdk service/apps.py AppResource*) grants each declaration to
# the App's service principal. A vector search index has no App resource type in the SDK.
_APP_RESOURCE: dict[type[ResourceDeclaration], Callable[[str], dict[str, Any]]] = {
    ServingEndpoint: lambda name: {"serving_endpoint": {"name": name, "permission": "CAN_QUERY"}},
    SqlWarehouse: lambda wid: {"sql_warehouse": {"id": wid, "permission": "CAN_USE"}},
    GenieSpace: lambda sid: {"genie_space": {"name": sid, "space_id": sid, "permission": "CAN_RUN"}},
    UCTable: _uc("TABLE", "SELECT"),
    UCFunction: _uc("FUNCTION", "EXECUTE"),
    UCConnection: _uc("CONNECTION", "USE_CONNECTION"),
}
_GRANT_BY_HAND = {VectorSearchIndex: "SELECT"}


@dataclass(frozen=True)
class AppConfig:
    """What a Databricks App needs for its declarations (see the module docstring)."""

    user_api_scopes: list[str]
    resources: list[dict[str, Any]]  # App resources, as databricks.yml and the Apps API take them
    grant_by_hand: list[str] = field(default_factory=list)  # what no App resource can grant

    def bundle(self) -> dict[str, Any]:
        """The ``resources.apps.<key>`` fields of a ``databricks.yml``: ``user_api_scopes`` and ``resources``."""
        fragment: dict[str, Any] = {}
        if self.user_api_scopes:
            fragment["user_api_scopes"] = list(self.user_api_scopes)
        if self.resources:
            fragment["resources"] = [dict(r) for r in self.resources]
        return fragment


def app_config(*resources: ResourceDeclaration, extra_scopes: Iterable[str] = ()) -> AppConfig:
    """The App authorization for these declarations; ``extra_scopes`` are App scopes for APIs
    the App calls as its user beyond them. Raises before anything is deployed: an App scope
    Databricks Apps would refuse, a resource declared both ways, anything not a declaration."""
    check_declarations(resources)
    check_one_identity_each(resources)
    extra = validate_scopes(extra_scopes, APPS)
    if not resources and not extra:
        raise ResourceDeclarationError("an App configuration needs at least one resource declaration or extra scope")
    scopes = validate_scopes(for_apps([*required_scopes(*resources), *extra]), APPS)
    app_resources: list[dict[str, Any]] = []
    by_hand: list[str] = []
    counts: dict[str, int] = {}
    for declaration in dict.fromkeys(r for r in resources if not r.on_behalf_of_user):
        kind = type(declaration)
        if kind in _GRANT_BY_HAND:
            by_hand.append(f"{_GRANT_BY_HAND[kind]} on {kind.__name__} {declaration.identifier} to the App's service principal")
            continue
        entry = _APP_RESOURCE[kind](declaration.identifier)
        counts[declaration.resource_type] = counts.get(declaration.resource_type, 0) + 1
        number = counts[declaration.resource_type]
        label = declaration.resource_type.replace("_", "-")
        app_resources.append({"name": label if number == 1 else f"{label}-{number}", **entry})
    return AppConfig(scopes, app_resources, by_hand)
