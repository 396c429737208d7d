"""The services of the local workspace, found rather than listed: every package under
``obo_auth.local`` whose ``__init__`` defines ``SERVICE`` (see service.py), ordered so a
service comes after those it requires."""

from __future__ import annotations

import functools
import importlib
import pkgutil

from obo_auth.local.service import ApiScope, SecurableType, Service


@functools.cache
def services() -> tuple[Service, ...]:
    import obo_auth.local as package

    found: dict[str, Service] = {}
    for module in pkgutil.iter_modules(package.__path__):
        if not module.ispkg:
            continue
        service = getattr(importlib.import_module(f"{package.__name__}.{module.name}"), "SERVICE", None)
        if isinstance(service, Service):
            if service.name in found:
                raise RuntimeError(f"Two local workspace services are named {service.name!r}.")
            found[service.name] = service
    return tuple(_ordered(found))


def _ordered(found: dict[str, Service]) -> list[Service]:
    ordered: list[Service] = []
    visiting: set[str] = set()

    def visit(name: str, needed_by: str) -> None:
        if any(s.name == name for s in ordered):
            return
        if name not in found:
            raise RuntimeError(f"Service {needed_by!r} requires {name!r}, which no package under obo_auth.local declares.")
        if name in visiting:
            raise RuntimeError(f"Services require each other in a cycle through {name!r}.")
        visiting.add(name)
        for required in found[name].requires:
            visit(required, name)
        ordered.append(found[name])

    for name in sorted(found):
        visit(name, name)
    return ordered


def api_scopes() -> dict[str, ApiScope]:
    """Every API family of every service and the scope a downscoped token needs for it."""
    return {family: scope for service in services() for family, scope in service.api_scopes.items()}


def securable_types() -> dict[str, SecurableType]:
    types: dict[str, SecurableType] = {}
    for service in services():
        for name, kind in service.securable_types.items():
            if name in types:
                raise RuntimeError(f"Securable type {name!r} is declared by two services.")
            types[name] = kind
    return types
