"""What serving checks about a logged model before it serves it: that the model exists, and
that every resource it declares exists in the workspace.

Databricks refuses at deploy time a model whose declared resources do not exist; local serving
refuses it at start for the same reason, naming the nearest existing names, so a typo shows up
once, before the first request, instead of as a 404 inside the agent for every user. Both checks
read only the model's MLmodel file, never run its code.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from obo_auth import mlmodel
from obo_auth.serving.errors import ServingFailed
from obo_auth.terminal import printable

# Types the local workspace does not hold (Lakebase) have no names in
# WorkspaceLink.resource_names() to check against, and are left to the platform. An App a model
# declares must be one the workspace holds (seeded, or registered by `obo-auth serve-app`).
_STORE_SCHEMES = mlmodel.STORE_SCHEMES
_LISTED_AT_MOST = 5


def model_not_found(model_uri: str, store: str) -> ServingFailed:
    return _failed(str(mlmodel.model_not_found(model_uri, store)))


def _failed(message: str) -> ServingFailed:
    """One line, shown as a terminal only displays it: a model URI or a name from an MLmodel may
    hold line breaks or escape sequences, and ``obo-auth serve`` prints this as its ``Error:`` line."""
    return ServingFailed(printable(message))


def store_cannot_hold(model_uri: str, store: str) -> bool:
    """True when ``store`` is a sqlite file that does not exist, so cannot hold ``model_uri``.

    Checked before the serving process starts: mlflow would spend seconds creating an empty
    store there only to find nothing in it.
    """
    prefix = "sqlite:///"
    return model_uri.startswith(_STORE_SCHEMES) and store.startswith(prefix) and not Path(store[len(prefix) :]).exists()


def read_model(model_uri: str, store: str) -> Any:
    """mlmodel.read_model, failing as serving does."""
    try:
        return mlmodel.read_model(model_uri, store)
    except mlmodel.ModelUnreadable as unreadable:
        raise _failed(str(unreadable)) from None


def declared_resources(model: Any) -> list[tuple[str, str]]:
    """mlmodel.declared_resources, failing as serving does."""
    try:
        return mlmodel.declared_resources(model)
    except mlmodel.ModelUnreadable as unreadable:
        raise _failed(str(unreadable)) from None


def check_resources(model: Any, existing: dict[str, list[str]], workspace_url: str) -> None:
    """ServingFailed naming every declared resource missing from ``existing`` (by type), at once."""
    missing = [
        (kind, name) for kind, name in declared_resources(model) if kind in existing and name not in existing[kind]
    ]
    if not missing:
        return
    described = [(f"{mlmodel.RESOURCE_LABELS.get(kind, kind)} {name}", _nearest(name, existing[kind])) for kind, name in missing]
    where = f"the workspace at {workspace_url}"
    if len(described) == 1:
        (what, nearest), = described
        raise _failed(
            f"the model declares {what}, which does not exist in {where} ({nearest}); seed it, or fix the declaration and log the model again"
        )
    listed = "; ".join(f"{what} ({nearest})" for what, nearest in described)
    raise _failed(
        f"the model declares {len(described)} resources that do not exist in {where}: {listed}; "
        "seed them, or fix the declarations and log the model again"
    )


def _nearest(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f"nearest: {close[0]}"
    if not names:
        return "it has none"
    shown = ", ".join(sorted(names)[:_LISTED_AT_MOST]) + (", ..." if len(names) > _LISTED_AT_MOST else "")
    return f"it has: {shown}"
