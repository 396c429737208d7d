"""A Databricks App as its bundle (``databricks.yml``) declares it: the review's input for an App.

What the platform deploys is what the bundle says: the App's ``user_api_scopes`` (None when
it has none: no user authorization) and its App resources, which its service principal
reaches as itself, the same for every user. Its code is the ``source_code_path`` directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from obo_auth.mlmodel import ResourceEntry

BUNDLE_FILE = "databricks.yml"

# App resource keys (databricks-sdk service/apps.py AppResource) -> the MLmodel resource type that names the same kind.
_RESOURCE_TYPES = {"serving_endpoint": "serving_endpoint", "sql_warehouse": "sql_warehouse", "genie_space": "genie_space"}
_UC_TYPES = {"TABLE": "table", "FUNCTION": "function", "CONNECTION": "uc_connection", "VOLUME": "volume"}
_NAME_FIELDS = ("name", "id", "space_id", "securable_full_name")


class BundleUnreadable(ValueError):
    """The bundle cannot be read as a Databricks App; the message is one line saying why."""


@dataclass(frozen=True)
class AppBundle:
    path: Path  # the databricks.yml
    name: str
    user_api_scopes: list[str] | None
    resources: list[ResourceEntry]
    source_dir: Path


def read_bundle(path: str | Path, name: str | None = None) -> AppBundle:
    """The App ``name`` (or the bundle's only App) of the ``databricks.yml`` at ``path`` (or in that directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / BUNDLE_FILE
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BundleUnreadable(f"cannot read {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise BundleUnreadable(f"{path} is not valid YAML ({type(error).__name__})") from None
    apps = ((document or {}).get("resources") or {}).get("apps") if isinstance(document, dict) else None
    if not isinstance(apps, dict) or not apps:
        raise BundleUnreadable(f"{path} declares no App (resources.apps is empty)")
    chosen = _choose(apps, name, path)
    app_name = str(chosen.get("name") or name)
    scopes = chosen.get("user_api_scopes")
    if scopes is not None and (not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes)):
        raise BundleUnreadable(f"{path}: user_api_scopes of App {app_name} is not a list of scope strings")
    source = path.parent / str(chosen.get("source_code_path") or ".")
    return AppBundle(path, app_name, scopes, [_entry(r, path) for r in chosen.get("resources") or []], source)


def _choose(apps: dict[str, Any], name: str | None, path: Path) -> dict[str, Any]:
    entries = {str((spec or {}).get("name") or key): spec or {} for key, spec in apps.items()}
    if name is not None:
        if name not in entries:
            raise BundleUnreadable(f"{path} has no App named {name!r}; it has: {', '.join(sorted(entries))}")
        return entries[name]
    if len(entries) > 1:
        raise BundleUnreadable(f"{path} declares {len(entries)} Apps ({', '.join(sorted(entries))}): say which with --name")
    return next(iter(entries.values()))


def _entry(resource: Any, path: Path) -> ResourceEntry:
    if not isinstance(resource, dict):
        raise BundleUnreadable(f"{path}: an App resource is not a mapping")
    for key, spec in resource.items():
        if key == "uc_securable" and isinstance(spec, dict):
            kind = _UC_TYPES.get(str(spec.get("securable_type")), str(spec.get("securable_type")).lower())
            return ResourceEntry(kind, str(spec.get("securable_full_name")), False, "app_resources")
        if isinstance(spec, dict) and key not in ("name", "description"):
            label = next((str(spec[f]) for f in _NAME_FIELDS if spec.get(f)), "?")
            return ResourceEntry(_RESOURCE_TYPES.get(key, key), label, False, "app_resources")
    raise BundleUnreadable(f"{path}: App resource {resource.get('name', '?')!r} names no resource")
