"""Genie spaces: the Genie conversation API over a deterministic local Genie, which turns a few
documented question patterns (questions.py) into SQL and runs it through the SQL warehouse
service as the user who asked, so row filters, column masks and SELECT grants apply exactly as
they do to the user's own SQL statements."""

from obo_auth.local.genie import seed
from obo_auth.local.genie.backend import GenieBackend
from obo_auth.local.genie.routes import routes
from obo_auth.local.genie.scopes import API_SCOPES
from obo_auth.local.genie.spaces import LEVELS, Space
from obo_auth.local.service import SecurableType, Service


def _build(section, state) -> GenieBackend:
    warehouse_ids = {w.name: w.id for w in state.services["sql"].warehouses()}
    spaces = [
        Space(s.space_id, s.title, s.description, warehouse_ids[s.warehouse], tuple(s.tables))
        for s in section.genie_spaces
    ]
    return GenieBackend(spaces, state.clock)


SERVICE = Service(
    name="genie",
    routes=routes,
    seed_fields=seed.SEED_FIELDS,
    # Grants name a space by its title, as they name a SQL warehouse by its name.
    securable_types={"genie_space": SecurableType("Genie space", frozenset(LEVELS), levels=LEVELS)},
    api_scopes=API_SCOPES,
    requires=("sql", "catalog"),
    securables=lambda s: {"genie_space": {space.title for space in s.genie_spaces}},
    check_seed=seed.check,
    build=_build,
    # By id: what a model's resource declaration (GenieSpace(space_id=...)) names.
    resource_names=lambda backend: {"genie_space": sorted(s.id for s in backend.spaces())},
)
