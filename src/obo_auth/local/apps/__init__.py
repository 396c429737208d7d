"""Databricks Apps: the Apps API (get and list, as databricks-sdk's ``AppsAPI`` calls them), the
Apps of the seed and those registered through the admin API while they run locally."""

from obo_auth.local.apps import registration, seed
from obo_auth.local.apps.models import LEVELS, App, AppsBackend, app_url, checked_user_api_scopes
from obo_auth.local.apps.routes import routes
from obo_auth.local.apps.scopes import API_SCOPES
from obo_auth.local.identity.models import ADMIN_NAME
from obo_auth.local.service import SecurableType, Service


def _build(section, state) -> AppsBackend:
    # The seed check has checked every part; the URL and the scopes are stored as a registration stores them.
    now = state.clock()
    apps = [
        App(
            name=a.name,
            description=a.description,
            service_principal=state.identity.find(a.service_principal),
            user_api_scopes=tuple(checked_user_api_scopes(a.user_api_scopes)),
            url=app_url(a.url),
            creator=ADMIN_NAME,  # the workspace seeded it
            create_time=now,
            update_time=now,
        )
        for a in section.apps
    ]
    return AppsBackend(apps, state.clock)


SERVICE = Service(
    name="apps",
    routes=[*routes, *registration.routes],
    seed_fields=seed.SEED_FIELDS,
    # Grants name an App by its name: {app: hr-assistant}.
    securable_types={"app": SecurableType("app", frozenset(LEVELS), levels=LEVELS)},
    api_scopes=API_SCOPES,
    requires=("identity",),
    securables=lambda s: {"app": {a.name for a in s.apps}},
    check_seed=seed.check,
    build=_build,
    resource_names=lambda backend: {"app": sorted(a.name for a in backend.apps())},
)
