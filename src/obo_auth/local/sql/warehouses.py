"""SQL warehouses and who may use them; no HTTP."""

from __future__ import annotations

from dataclasses import dataclass

# The platform's warehouse permission levels: a grant of CAN_MANAGE includes CAN_USE (grants.py).
LEVELS = ("CAN_USE", "CAN_MANAGE")


@dataclass(frozen=True)
class Warehouse:
    id: str
    name: str

    @property
    def securable(self) -> tuple[str, str]:
        """How grants name it: by its name, as the seed's grants do."""
        return "sql_warehouse", self.name

    @property
    def audit_resource(self) -> str:
        return "{}:{}".format(*self.securable)

