"""SQL warehouses and who may use them; no HTTP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# A grant of CAN_MANAGE includes CAN_USE, as in the platform's warehouse permission levels.
USE_PRIVILEGES = ("CAN_USE", "CAN_MANAGE")

# (privilege, securable type, name) -> whether the caller holds it
Can = Callable[[str, str, str], bool]
# (privilege, securable type, name) -> why the caller holds it, checked and audited; PermissionDenied if it does not
Require = Callable[[str, str, str], str]


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


def can_use(can: Can, warehouse: Warehouse) -> bool:
    return any(can(privilege, *warehouse.securable) for privilege in USE_PRIVILEGES)


def require_use(require: Require, can: Can, warehouse: Warehouse) -> str:
    """Why the caller may use the warehouse (checked and audited); PermissionDenied naming CAN_USE if it may not."""
    held = next((p for p in USE_PRIVILEGES if can(p, *warehouse.securable)), USE_PRIVILEGES[0])
    return require(held, *warehouse.securable)
