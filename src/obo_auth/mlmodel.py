"""Reading what a logged model says about its identity, from its MLmodel file alone.

Neutral ground: local serving (which refuses a model whose declared resources are missing)
and ``obo-auth review`` (which reports them) both read a model here, never running its code.
The MLmodel is a file anyone may edit: whatever in it is not in the shape mlflow and obo_auth
write is a :class:`ModelUnreadable` naming the field, never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STORE_SCHEMES = ("models:/", "runs:/")  # URIs resolved through the MLflow store; others are paths
# mlflow's resource types (mlflow.models.resources.ResourceType values), in words.
RESOURCE_LABELS = {
    "serving_endpoint": "serving endpoint",
    "vector_search_index": "vector search index",
    "genie_space": "Genie space",
    "sql_warehouse": "SQL warehouse",
    "uc_connection": "Unity Catalog connection",
    "table": "table",
    "function": "function",
    "app": "Databricks App",
    "lakebase": "Lakebase database",
}
RECORD_KEY = "obo_auth"  # the MLmodel metadata entry obo_auth.log_model writes (policy.declaration_record)


class ModelUnreadable(Exception):
    """The model is missing, or its MLmodel cannot be read; the message is one line saying what to do."""


@dataclass(frozen=True)
class ResourceEntry:
    """One resource a model names, and where it names it."""

    type: str  # mlflow's resource type: "vector_search_index", "serving_endpoint", ...
    name: str
    on_behalf_of_user: bool | None  # None: the source does not say
    source: str  # "obo_auth" (the declaration record), "system_auth_policy", or "resources" (mlflow's own list)


def model_not_found(model_uri: str, store: str) -> ModelUnreadable:
    if model_uri.startswith(STORE_SCHEMES):
        return ModelUnreadable(
            f"no model {model_uri} in the MLflow store {store} (set MLFLOW_TRACKING_URI, or log it with obo_auth.log_model)"
        )
    return ModelUnreadable(f"no model at {model_uri} (no MLmodel file there): pass a models:/ URI, or the directory of a saved model")


_MLMODEL = "MLmodel"
_MLMODEL_MAX_BYTES = 16 * 1024 * 1024  # an MLmodel is a few kilobytes; a bigger "MLmodel" is not one


def read_model(model_uri: str, store: str) -> Any:
    """The model's MLmodel (``mlflow.models.Model``), or ModelUnreadable naming where it was
    looked for, or saying in one line why it could not be read.

    The file is parsed here rather than by ``Model.load``: mlflow reads a ``resources`` that is
    a string as the path of another file, anywhere on the machine, and an MLmodel is a file
    anyone may edit. Only the MLmodel's own content is read.
    """
    import yaml
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    try:
        path = _mlmodel_file(model_uri, store)
        if path.stat().st_size > _MLMODEL_MAX_BYTES:
            raise _malformed(f"it is over {_MLMODEL_MAX_BYTES // (1024 * 1024)} MB", model_uri)
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(content, dict):
            raise _malformed(f"it is {_kind_of(content)}, not a mapping", model_uri)
        if isinstance(content.get("resources"), str):
            raise _malformed("its resources names another file; a model's resources belong in its MLmodel", model_uri)
        return Model.from_dict(content)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise model_not_found(model_uri, store) from None
        raise ModelUnreadable(f"cannot read the MLmodel of {model_uri} (MLflow store {store}): {one_line(error.message)}") from None
    except yaml.YAMLError as error:
        raise _malformed(f"it is not YAML ({one_line(str(error))})", model_uri) from None
    except UnicodeDecodeError:
        raise _malformed("it is not UTF-8 text", model_uri) from None
    except OSError as error:
        raise ModelUnreadable(f"cannot read the MLmodel of {model_uri}: {one_line(str(error))}") from None
    except RecursionError:
        raise _malformed("it is nested too deeply", model_uri) from None
    except (AttributeError, TypeError, ValueError, KeyError) as error:  # Model.from_dict given what is not an MLmodel mapping
        raise _malformed(f"mlflow cannot read it ({type(error).__name__}: {one_line(str(error))})", model_uri) from None


def _mlmodel_file(model_uri: str, store: str) -> Path:
    """The MLmodel file of ``model_uri``: in the model's directory, or downloaded alone from the store."""
    local = local_path(model_uri)
    if local is not None:
        path = local / _MLMODEL if local.is_dir() else local
        if not path.is_file():  # also a FIFO or a device, which would block or never end
            raise model_not_found(model_uri, store)
        return path
    import mlflow.artifacts

    with quiet_downloads():
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=stored_file_uri(model_uri, _MLMODEL)))


def stored_file_uri(model_uri: str, relative: str) -> str:
    """The artifact URI of the file or directory ``relative`` of a model in the MLflow store."""
    from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

    uri = model_uri.rstrip("/")
    if ModelsArtifactRepository._is_logged_model_uri(uri):  # models:/m-<id>: as Model.load resolves it
        uri = ModelsArtifactRepository.get_underlying_uri(uri)
    return f"{uri}/{relative}"


@contextmanager
def quiet_downloads() -> Iterator[None]:
    """mlflow's artifact downloads without their progress bar: a command's stdout and stderr are its own."""
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    name = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name
    was = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if was is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = was


def resource_entries(model: Any) -> list[ResourceEntry]:
    """Every resource the model names, in order: obo_auth's declaration record
    (``metadata["obo_auth"]``, every declaration, on behalf of the user or not), the system auth
    policy's resources (those the agent uses as itself), and mlflow's own ``resources`` (a model
    logged with ``mlflow.pyfunc.log_model(resources=)``)."""
    found: list[ResourceEntry] = []
    metadata = _mapping(getattr(model, "metadata", None), "metadata")
    record = _mapping(metadata.get(RECORD_KEY), f"metadata.{RECORD_KEY}")
    for i, entry in enumerate(_list(record.get("resources"), f"metadata.{RECORD_KEY}.resources")):
        where = f"metadata.{RECORD_KEY}.resources[{i}]"
        entry = _mapping(entry, where, required=True)
        obo = entry.get("on_behalf_of_user")
        found.append(ResourceEntry(_text(entry, "type", where), _text(entry, "name", where), obo if isinstance(obo, bool) else None, "obo_auth"))
    system = _mapping(_user_and_system(model)[1], "auth_policy.system_auth_policy")
    sources = (
        (system.get("resources"), "auth_policy.system_auth_policy.resources", "system_auth_policy", False),
        (getattr(model, "resources", None), "resources", "resources", None),
    )
    for resources, where, source, as_user in sources:
        resources = _mapping(resources, where)
        # mlflow writes {"api_version": "1", "databricks": {type: [{"name": ...}]}}; without the
        # "databricks" level the types sit at the top.
        if "databricks" in resources:
            where = f"{where}.databricks"
            resources = _mapping(resources["databricks"], where)
        for kind, entries in resources.items():
            if not isinstance(entries, list):
                if kind in RESOURCE_LABELS:
                    raise _malformed(f"{where}.{kind} is {_kind_of(entries)}, not a list of {{name: ...}}")
                continue  # api_version, and whatever else is not a list of resources
            for i, entry in enumerate(entries):
                entry = _mapping(entry, f"{where}.{kind}[{i}]", required=True)
                obo = entry.get("on_behalf_of_user", as_user)
                if as_user is False:
                    obo = False  # the system policy holds what the agent reaches as itself, whatever an entry says
                name = _text(entry, "name", f"{where}.{kind}[{i}]")
                found.append(ResourceEntry(str(kind), name, obo if isinstance(obo, bool) else as_user, source))
    return found


def declared_resources(model: Any) -> list[tuple[str, str]]:
    """``(type, name)`` of every resource the model names (resource_entries), each once."""
    return list(dict.fromkeys((entry.type, entry.name) for entry in resource_entries(model)))


def user_scopes(model: Any) -> list[str] | None:
    """The API scopes of the model's user auth policy; None when it has no user auth policy."""
    user = _mapping(_user_and_system(model)[0], "auth_policy.user_auth_policy")
    if not user:
        return None
    scopes = _list(user.get("api_scopes"), "auth_policy.user_auth_policy.api_scopes")
    for i, scope in enumerate(scopes):
        if not isinstance(scope, str) or not scope:
            raise _malformed(f"auth_policy.user_auth_policy.api_scopes[{i}] is {_kind_of(scope)}, not a scope string")
    return list(scopes)


def _user_and_system(model: Any) -> tuple[Any, Any]:
    policy = _mapping(getattr(model, "auth_policy", None), "auth_policy")
    return policy.get("user_auth_policy"), policy.get("system_auth_policy")


def local_path(model_uri: str) -> Path | None:
    """The model's directory when ``model_uri`` is a path (or ``file:`` URI), else None."""
    if model_uri.startswith(STORE_SCHEMES):
        return None
    path = Path(model_uri.removeprefix("file://"))
    try:
        return path.expanduser()
    except RuntimeError:  # "~name" of a user this machine does not have: a path where no model is
        return path


def _malformed(what: str, model_uri: str | None = None) -> ModelUnreadable:
    model = f"MLmodel of {model_uri}" if model_uri else "MLmodel"
    # one_line: ``what`` names fields by the MLmodel's own keys, which may hold any character.
    return ModelUnreadable(f"the model's {model} is malformed: {one_line(what)}; log the model again (obo_auth.log_model writes it)")


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
        return f"the string {one_line(value)[:60]!r}" if value else "an empty string"
    if value is None:
        return "empty"
    names = {dict: "a mapping", list: "a list", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), f"a {type(value).__name__}")


def one_line(text: str) -> str:
    """The first non-blank line of a message, control characters blanked, at most 300 characters."""
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    line = "".join(char if char.isprintable() else " " for char in line)
    return line[:300] + ("..." if len(line) > 300 else "")
