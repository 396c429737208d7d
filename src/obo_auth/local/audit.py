"""The audit log: one record per request, allowed or denied. Never a token, only its fingerprint."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass

logger = logging.getLogger("obo_auth.local")


@dataclass(frozen=True)
class AuditRecord:
    time: float
    principal: str | None  # the user or service principal the token belongs to
    actor: str | None  # the service principal acting for the user, for tokens minted for an agent
    method: str
    path: str
    resource: str | None  # e.g. "index:main.docs.handbook_index"
    scopes: tuple[str, ...] | None  # the token's API scopes; None for an unrestricted token
    needed_scope: str | None  # the API scope the route needs of a downscoped token; None: it needs none
    decision: str  # "allow" | "deny"
    reason: str
    status: int
    token_fingerprint: str | None

    def to_dict(self) -> dict:
        return asdict(self)


Subscriber = Callable[[AuditRecord], None]


class AuditLog:
    def __init__(self) -> None:
        self._records: list[AuditRecord] = []
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def append(self, record: AuditRecord) -> None:
        with self._lock:
            self._records.append(record)
            subscribers = list(self._subscribers)
        # Outside the lock, so a slow subscriber (a terminal) never holds up other requests' records.
        for subscriber in subscribers:
            try:
                subscriber(record)
            except Exception:  # whatever a subscriber does wrong, the request it records goes on
                logger.exception("local workspace: an audit subscriber failed")

    def subscribe(self, subscriber: Subscriber) -> None:
        """Calls ``subscriber(record)`` after each append (in the thread serving the request)."""
        with self._lock:
            self._subscribers.append(subscriber)

    def records(self) -> list[AuditRecord]:
        with self._lock:
            return list(self._records)

    def since(self, position: int) -> tuple[list[AuditRecord], int]:
        """The records from ``position`` on, and the position after the last of them."""
        with self._lock:
            return self._records[position:], len(self._records)
