"""Databricks Apps and who may use them; no HTTP.

An App is a name, its own service principal (the identity it runs as), the user API scopes it
asks for (what the user token Databricks Apps forwards to it may do: the Databricks Apps
allowlist, not Model Serving's) and, while it runs locally, the loopback URL it listens at.

The platform's permission levels on an App, the higher including the lower: CAN_USE (see and
open it), CAN_MANAGE. Every level includes CAN_USE, so a caller without CAN_USE holds nothing on
the App: it is answered as if the App did not exist (404 RESOURCE_DOES_NOT_EXIST, as Genie
answers a space the caller may not see), so a name tells a caller nothing about Apps they may
not use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from obo_auth import scopes as scope_math
from obo_auth.http_edge import BadRequest, NotFound
from obo_auth.local._base import loopback_url, loopback_url_problem
from obo_auth.local.identity.models import Principal

# Lowest first: the grants mechanism lets a grant of a level hold every level below it (grants.py).
LEVELS = ("CAN_USE", "CAN_MANAGE")
# "The name must contain only lowercase alphanumeric characters and hyphens" (databricks-sdk's
# App.name), 2 to 30 of them (the Apps UI's rule).
APP_NAME_PATTERN = r"^[a-z0-9-]{2,30}$"
APP_NAME_HELP = "2-30 lowercase letters, digits and '-'"
_APP_NAME = re.compile(APP_NAME_PATTERN)
# Where a local App listens; the workspace may one day send it callers' tokens: loopback only.
_URL_EXAMPLE = "'http://127.0.0.1:8000' (where the App listens)"
_URL_ROOT = "an App answers at its root"


@dataclass(frozen=True)
class App:
    name: str
    description: str
    service_principal: Principal  # the App's own identity
    user_api_scopes: tuple[str, ...]  # normalised, each on the Databricks Apps allowlist
    url: str | None  # rebuilt loopback http://HOST:PORT; None: not running
    creator: str
    create_time: float  # seconds since the epoch, as the workspace clock says
    update_time: float

    @property
    def securable(self) -> tuple[str, str]:
        """How grants name it: by its name, as the seed's grants do."""
        return "app", self.name

    @property
    def audit_resource(self) -> str:
        return "{}:{}".format(*self.securable)


class AppsBackend:
    def __init__(self, apps: Iterable[App], clock: Callable[[], float]):
        self._apps = {a.name: a for a in apps}
        self.clock = clock

    def apps(self) -> list[App]:
        return list(self._apps.values())

    def app(self, name: str) -> App | None:
        """The App of this name, or None: the routes answer a missing App and a hidden one alike."""
        return self._apps.get(name)

    def register(
        self, name: str, url: str | None, user_api_scopes: Iterable[str], service_principal: Principal, creator: str
    ) -> tuple[App, bool]:
        """Declares the App ``name`` (again: replaces its URL, scopes and service principal); the
        App and True if it did not exist. Everything is checked here, whoever registers it: the
        name, the URL (stored rebuilt by ``app_url``) and the scopes (``checked_user_api_scopes``)."""
        name = app_name(name)
        url = app_url(url)
        scopes = tuple(checked_user_api_scopes(user_api_scopes))
        if service_principal.kind != "service_principal":
            raise BadRequest(f"Field 'service_principal' must name a service principal (the App's own identity), not the user {service_principal.name}.")
        now = self.clock()
        existing = self._apps.get(name)
        if existing is None:
            app = App(name, "", service_principal, scopes, url, creator, now, now)
        else:
            app = replace(existing, service_principal=service_principal, user_api_scopes=scopes, url=url, update_time=now)
        self._apps[name] = app
        return app, existing is None


def app_name(name: str) -> str:
    if not _APP_NAME.fullmatch(name):
        raise BadRequest(f"Invalid App name {name[:120]!r}: use {APP_NAME_HELP}.")
    return name


def app_url(url: str | None) -> str | None:
    """``http://HOST:PORT`` rebuilt from ``url`` if it is a loopback URL, else a 400 saying why; None: not running."""
    return loopback_url(url, example=_URL_EXAMPLE, root=_URL_ROOT)


def app_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a local App's URL, or None: for the seed check."""
    return loopback_url_problem(url, root=_URL_ROOT)


def checked_user_api_scopes(scopes: Iterable[str]) -> list[str]:
    """Normalised ``scopes``, each on the Databricks Apps allowlist; else a 400 naming each bad
    one with the nearest valid scope (``sql.warehouses`` is Model Serving's: an App asks for ``sql``)."""
    scopes = list(scopes)
    try:
        return scope_math.check_scopes(scopes, scope_math.APPS)
    except TypeError as wrong:
        raise BadRequest(f"Invalid user_api_scopes: {wrong}.") from None
    except scope_math.UnknownScopeError as unknown:
        raise BadRequest(
            f"Invalid user API scope(s) {unknown_scopes(scopes, unknown)}: an App's user_api_scopes must be on the "
            f"{scope_math.RUNTIME_NAMES[scope_math.APPS]} allowlist: {', '.join(unknown.allowed)}."
        ) from None


def unknown_scopes(scopes: list[str], unknown: scope_math.UnknownScopeError) -> str:
    """The scopes of ``unknown`` as one line, each with the nearest valid one, or the App scope
    that grants the same APIs where Model Serving's name differs (``sql.warehouses`` -> ``sql``)."""
    bad = [s for s in scope_math.normalize(scopes) if s not in scope_math.APPS_ALLOWED_SCOPES]  # in the order of unknown.hints
    hints = [
        f"{hint} (an App asks for {scope_math.APPS_EQUIVALENT[scope]!r})" if scope in scope_math.APPS_EQUIVALENT and "did you mean" not in hint else hint
        for scope, hint in zip(bad, unknown.hints)
    ]
    return ", ".join(hints)


def no_such_app(name: str) -> NotFound:
    # The platform's words, the same for an App that does not exist and one the caller may not use.
    return NotFound(f"App with name {name[:80]} does not exist or is deleted.")
