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

from obo_auth.serving.errors import ServingFailed

# The resource types obo_auth's declaration record and mlflow's resource lists use; both are
# the keys of WorkspaceLink.resource_names(). Types the local workspace does not hold (apps,
# Lakebase) have no names there to check against and are left to the platform.
_LABELS = {
    "serving_endpoint": "serving endpoint",
    "vector_search_index": "vector search index",
    "genie_space": "Genie space",
    "sql_warehouse": "SQL warehouse",
    "uc_connection": "Unity Catalog connection",
    "table": "table",
    "function": "function",
}
_STORE_SCHEMES = ("models:/", "runs:/")  # URIs resolved through the MLflow store; others are paths
_LISTED_AT_MOST = 5


def model_not_found(model_uri: str, store: str) -> ServingFailed:
    if model_uri.startswith(_STORE_SCHEMES):
        return ServingFailed(
            f"no model {model_uri} in the MLflow store {store} (set MLFLOW_TRACKING_URI, or log it with obo_auth.log_model)"
        )
    return ServingFailed(f"no model at {model_uri} (no MLmodel file there): pass a models:/ URI, or the directory of a saved model")


def store_cannot_hold(model_uri: str, store: str) -> bool:
    """True when ``store`` is a sqlite file that does not exist, so cannot hold ``model_uri``.

    Checked before the serving process starts: mlflow would spend seconds creating an empty
    store there only to find nothing in it.
    """
    prefix = "sqlite:///"
    return model_uri.startswith(_STORE_SCHEMES) and store.startswith(prefix) and not Path(store[len(prefix) :]).exists()


def read_model(model_uri: str, store: str) -> Any:
    """The model's MLmodel (``mlflow.models.Model``), or ServingFailed naming where it was looked
    for, or saying in one line why it could not be read."""
    import yaml
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    try:
        return Model.load(model_uri)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise model_not_found(model_uri, store) from None
        raise ServingFailed(f"cannot read the MLmodel of {model_uri} (MLflow store {store}): {_one_line(error.message)}") from None
    except yaml.YAMLError as error:
        raise _malformed(f"it is not YAML ({_one_line(str(error))})", model_uri) from None
    except OSError as error:  # mlflow also reads a file whose path is the MLmodel's ``resources``
        raise ServingFailed(f"cannot read the MLmodel of {model_uri} or a file it names: {_one_line(str(error))}") from None
    except (AttributeError, TypeError, ValueError, KeyError) as error:  # Model.from_dict given what is not an MLmodel mapping
        raise _malformed(f"mlflow cannot read it ({type(error).__name__}: {_one_line(str(error))})", model_uri) from None


def declared_resources(model: Any) -> list[tuple[str, str]]:
    """``(type, name)`` of every resource the model declares, in order, each once.

    From obo_auth's declaration record (``metadata["obo_auth"]``, every declaration, on behalf
    of the user or not), the system auth policy's resources (those the agent uses as itself),
    and mlflow's own ``resources`` (a model logged with ``mlflow.pyfunc.log_model(resources=)``).

    The MLmodel is a file anyone may edit: whatever in it is not in the shape these are written
    in is a ServingFailed naming the field, never a traceback.
    """
    found: list[tuple[str, str]] = []
    metadata = _mapping(getattr(model, "metadata", None), "metadata")
    record = _mapping(metadata.get("obo_auth"), "metadata.obo_auth")
    for i, entry in enumerate(_list(record.get("resources"), "metadata.obo_auth.resources")):
        where = f"metadata.obo_auth.resources[{i}]"
        entry = _mapping(entry, where, required=True)
        found.append((_text(entry, "type", where), _text(entry, "name", where)))
    policy = _mapping(getattr(model, "auth_policy", None), "auth_policy")
    system = _mapping(policy.get("system_auth_policy"), "auth_policy.system_auth_policy")
    sources = ((system.get("resources"), "auth_policy.system_auth_policy.resources"), (getattr(model, "resources", None), "resources"))
    for resources, where in sources:
        resources = _mapping(resources, where)
        # mlflow writes {"api_version": "1", "databricks": {type: [{"name": ...}]}}; without the
        # "databricks" level the types sit at the top.
        if "databricks" in resources:
            where = f"{where}.databricks"
            resources = _mapping(resources["databricks"], where)
        for kind, entries in resources.items():
            if not isinstance(entries, list):
                if kind in _LABELS:
                    raise _malformed(f"{where}.{kind} is {_kind_of(entries)}, not a list of {{name: ...}}")
                continue  # api_version, and whatever else is not a list of resources
            for i, entry in enumerate(entries):
                entry = _mapping(entry, f"{where}.{kind}[{i}]", required=True)
                found.append((str(kind), _text(entry, "name", f"{where}.{kind}[{i}]")))
    return list(dict.fromkeys(found))


def _malformed(what: str, model_uri: str | None = None) -> ServingFailed:
    model = f"MLmodel of {model_uri}" if model_uri else "MLmodel"
    return ServingFailed(f"the model's {model} is malformed: {what}; log the model again (obo_auth.log_model writes it)")


def _mapping(value: Any, where: str, *, required: bool = False) -> dict:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise _malformed(f"{where} is {_kind_of(value)}, not a mapping")
    return value


def _list(value: Any, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _malformed(f"{where} is {_kind_of(value)}, not a list")
    return value


def _text(entry: dict, key: str, where: str) -> str:
    if key not in entry:
        raise _malformed(f"{where} has no {key!r}")
    value = entry[key]
    if not isinstance(value, str) or not value:
        raise _malformed(f"{where}.{key} is {_kind_of(value)}, not a non-empty string")
    return value


def _kind_of(value: Any) -> str:
    """What a malformed value is, briefly and on one line (an error quotes it)."""
    if isinstance(value, str):
        return f"the string {_one_line(value)[:60]!r}" if value else "an empty string"
    if value is None:
        return "empty"
    names = {dict: "a mapping", list: "a list", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), f"a {type(value).__name__}")


def _one_line(text: str) -> str:
    """The first non-blank line of a message, control characters blanked, at most 300 characters."""
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    line = "".join(char if char.isprintable() else " " for char in line)
    return line[:300] + ("..." if len(line) > 300 else "")


def check_resources(model: Any, existing: dict[str, list[str]], workspace_url: str) -> None:
    """ServingFailed naming every declared resource missing from ``existing`` (by type), at once."""
    missing = [
        (kind, name) for kind, name in declared_resources(model) if kind in _LABELS and kind in existing and name not in existing[kind]
    ]
    if not missing:
        return
    described = [(f"{_LABELS[kind]} {name}", _nearest(name, existing[kind])) for kind, name in missing]
    where = f"the workspace at {workspace_url}"
    if len(described) == 1:
        (what, nearest), = described
        raise ServingFailed(
            f"the model declares {what}, which does not exist in {where} ({nearest}); seed it, or fix the declaration and log the model again"
        )
    listed = "; ".join(f"{what} ({nearest})" for what, nearest in described)
    raise ServingFailed(
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
