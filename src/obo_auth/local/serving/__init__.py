"""Serving endpoints: chat and embedding models answered locally (or a chat endpoint by the upstream
model its seed names), agents relayed to local serving."""

from obo_auth.local.service import SecurableType, Service
from obo_auth.local.serving import registration, seed
from obo_auth.local.serving.models import ServingBackend, ServingEndpoint
from obo_auth.local.serving.routes import routes
from obo_auth.local.serving.scopes import API_SCOPES

SERVICE = Service(
    name="serving",
    routes=[*routes, *registration.routes],
    seed_fields=seed.SEED_FIELDS,
    securable_types={"serving_endpoint": SecurableType("serving endpoint", frozenset({"CAN_QUERY"}))},
    api_scopes=API_SCOPES,
    requires=("identity",),
    securables=lambda s: {"serving_endpoint": {e.name for e in s.serving_endpoints}},
    check_seed=seed.check,
    build=lambda section, state: ServingBackend(
        [ServingEndpoint(e.name, e.kind, upstream=seed.chat_upstream(e)) for e in section.serving_endpoints]
    ),
    resource_names=lambda backend: {"serving_endpoint": sorted(e.name for e in backend.endpoints())},
)
