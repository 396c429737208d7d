"""The audit log: one record per request, allowed or denied. Never a token, only its fingerprint."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class AuditRecord:
    time: float
    principal: str | None  # the user or service principal the token belongs to
    actor: str | None  # the service principal acting for the user, for tokens minted for an agent
    method: str
    path: str
    resource: str | None  # e.g. "index:main.docs.handbook_index"
    scopes: tuple[str, ...] | None  # the token's API scopes; None for an unrestricted token
    decision: str  # "allow" | "deny"
    reason: str
    status: int
    token_fingerprint: str | None

    def to_dict(self) -> dict:
        return asdict(self)


class AuditLog:
    def __init__(self) -> None:
        self._records: list[AuditRecord] = []
        self._lock = threading.Lock()

    def append(self, record: AuditRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self) -> list[AuditRecord]:
        with self._lock:
            return list(self._records)
