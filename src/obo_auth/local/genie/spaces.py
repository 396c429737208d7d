"""Genie spaces and who may do what with them; no HTTP.

The platform's permission levels on a space, each including the ones before it: CAN_VIEW
(see the space), CAN_RUN (ask it questions), CAN_EDIT (read its configuration), CAN_MANAGE
(also list everyone's conversations). A space the caller holds none of is answered as if it
did not exist (404 RESOURCE_DOES_NOT_EXIST, as the platform answers it), so an id tells a
caller nothing about spaces they may not see.
"""

from __future__ import annotations

from dataclasses import dataclass

from obo_auth.http_edge import NotFound

# Lowest first: the grants mechanism lets a grant of a level hold every level below it (grants.py).
LEVELS = ("CAN_VIEW", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE")


@dataclass(frozen=True)
class Space:
    id: str
    title: str
    description: str
    warehouse_id: str
    tables: tuple[str, ...]

    @property
    def securable(self) -> tuple[str, str]:
        """How grants name it: by its title, as the seed's grants do."""
        return "genie_space", self.title

    @property
    def audit_resource(self) -> str:
        return "{}:{}".format(*self.securable)


def no_such_space(space_id: str) -> NotFound:
    # The same words for a space that does not exist and one the caller may not see.
    return NotFound(f"Genie space '{space_id[:80]}' does not exist or you do not have access to it; GET /api/2.0/genie/spaces lists yours.")

