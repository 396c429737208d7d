"""Unity Catalog HTTP connections: ``http_request`` through a connection to a loopback upstream
(or the built-in echo), ``USE CONNECTION`` checked per caller, the connection's credential
(shared, or the caller's own) injected, the caller's token never forwarded."""

from obo_auth.local.connections import seed, upstream
from obo_auth.local.connections.models import Connection, ConnectionsBackend, Credential, SHARED
from obo_auth.local.connections.routes import routes
from obo_auth.local.connections.scopes import API_SCOPES
from obo_auth.local.service import SecurableType, Service

# A connection is a top-level securable of the metastore (not in a catalog or schema), so it
# inherits no grant: only USE CONNECTION on the connection itself lets a caller use it.
SECURABLE_TYPES = {"connection": SecurableType("connection", frozenset({"USE CONNECTION"}))}


def _build(section, state) -> ConnectionsBackend:
    return ConnectionsBackend(_connection(c) for c in section.connections)


def _connection(seeded: seed.ConnectionSeed) -> Connection:
    per_user = {user: Credential(user, token.get_secret_value()) for user, token in (seeded.per_user_tokens or {}).items()}
    shared = Credential(SHARED, seeded.bearer_token.get_secret_value()) if seeded.bearer_token is not None else None
    return Connection(seeded.name, upstream.parse(seeded.url), shared, per_user, seeded.comment)


SERVICE = Service(
    name="connections",
    routes=routes,
    seed_fields=seed.SEED_FIELDS,
    securable_types=SECURABLE_TYPES,
    api_scopes=API_SCOPES,
    # Per-user credentials name users; the seed check reads the identity section.
    requires=("identity",),
    securables=lambda s: {"connection": {c.name for c in s.connections}},
    check_seed=seed.check,
    build=_build,
    resource_names=lambda backend: {"uc_connection": backend.names()},
)
