"""The Apps part of a seed: Databricks Apps, each a name, its own service principal, the user API
scopes it asks for (on the Databricks Apps allowlist, not Model Serving's) and, while it runs
locally, the loopback URL it listens at.

Grants name an App by its name: ``{app: hr-assistant}``. Without a grant nobody may use it.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from obo_auth import scopes as scope_math
from obo_auth.local.apps.models import APP_NAME_HELP, APP_NAME_PATTERN, app_url_problem, unknown_scopes
from obo_auth.local.seed_parts import Strict, duplicates, known, short_repr
from obo_auth.local.service import SeedContext


class AppSeed(Strict):
    name: str = Field(pattern=APP_NAME_PATTERN, description=APP_NAME_HELP)
    description: str = Field(default="", max_length=1000)
    service_principal: str = Field(description="the name of a seeded service principal: the App's own identity")
    user_api_scopes: list[str] = Field(default=[], description="API scopes of the Databricks Apps allowlist, e.g. [sql, vector-search]")
    url: str | None = Field(default=None, description="a loopback URL such as http://127.0.0.1:8000 while the App runs locally; none: not running")


SEED_FIELDS = {"apps": (list[AppSeed], [])}


def check(context: SeedContext) -> Iterator[str]:
    apps = context.seed.apps
    yield from duplicates([(f"apps[{i}].name", a.name) for i, a in enumerate(apps)])
    service_principals = {sp.name for sp in context.seed.service_principals}
    for ai, app in enumerate(apps):
        at = f"apps[{ai}]"
        if app.service_principal not in service_principals:
            yield f"field '{at}.service_principal': {app.service_principal!r} is not a declared service principal name{known(service_principals)}"
        try:
            scope_math.check_scopes(app.user_api_scopes, scope_math.APPS)
        except scope_math.UnknownScopeError as unknown:
            yield (
                f"field '{at}.user_api_scopes': {unknown_scopes(app.user_api_scopes, unknown)}: not a scope a Databricks App may ask for; "
                f"expected scopes of the Databricks Apps allowlist: {', '.join(unknown.allowed)}"
            )
        why = None if app.url is None else app_url_problem(app.url)
        if why:
            yield f"field '{at}.url': expected a loopback URL such as http://127.0.0.1:8000 (or none: not running), but {why}, got {short_repr(app.url)}"
