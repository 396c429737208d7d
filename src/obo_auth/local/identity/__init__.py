"""Identity: users, groups, service principals, tokens (PAT and OAuth M2M), host metadata and SCIM."""

from obo_auth.local.identity import seed
from obo_auth.local.identity.models import IdentityBackend
from obo_auth.local.identity.routes import routes
from obo_auth.local.identity.scopes import API_SCOPES
from obo_auth.local.service import Service


def _build(section, state) -> IdentityBackend:
    principals, client_secrets = seed.principals(section)
    return IdentityBackend(principals, client_secrets, state.clock)


SERVICE = Service(
    name="identity",
    routes=routes,
    seed_fields=seed.SEED_FIELDS,
    api_scopes=API_SCOPES,
    check_seed=seed.check,
    build=_build,
)
