"""The local workspace's audit log as something a test can ask questions of.

``AuditView`` holds audit records (the workspace's ``AuditRecord`` objects, or the dicts its
admin API and ``obo-auth workspace audit --json`` give) and answers "which calls ran as
whom, needing which scope". Users may be named in full (``alice@example.com``) or short
(``alice``), as everywhere else in obo_auth.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, overload


def principal_names(*names: str | None) -> set[str]:
    """Every way a user may be named: each given name, and for ``alice@example.com`` also ``alice``."""
    full = {name for name in names if name}
    return full | {name.split("@", 1)[0] for name in full}


@dataclass(frozen=True)
class AuditCall:
    """One call the workspace answered: who made it, as whom, what it needed, what it decided."""

    time: float
    principal: str | None  # whose identity the call carried (the user, for an on-behalf-of-user call)
    actor: str | None  # the agent's service principal, for a token minted for an agent
    method: str
    path: str
    resource: str | None
    scopes: tuple[str, ...] | None  # the token's scopes; None for an unrestricted token
    needed_scope: str | None  # the API scope the route needs of a downscoped token
    decision: str
    reason: str
    status: int
    token_fingerprint: str | None

    @classmethod
    def of(cls, record: Any) -> AuditCall:
        if isinstance(record, AuditCall):
            return record
        values = record if isinstance(record, Mapping) else vars(record)
        call = {f.name: values.get(f.name) for f in fields(cls)}
        if call["scopes"] is not None:
            call["scopes"] = tuple(call["scopes"])  # JSON gives a list
        return cls(**call)

    @property
    def on_behalf_of_user(self) -> bool:
        """True for a call an agent made with a token minted for its invoker."""
        return self.actor is not None

    def ran_as(self, user: str) -> bool:
        return user in principal_names(self.principal)

    def __str__(self) -> str:
        who = f"{self.principal or 'anonymous'}" + (f" via {self.actor}" if self.actor else "")
        return f"{who} {self.method} {self.path} -> {self.decision} {self.status}"


class AuditView(Sequence[AuditCall]):
    """A filtered, ordered view of audit records (oldest first)."""

    def __init__(self, records: Iterable[Any] = ()):
        self._calls = tuple(AuditCall.of(r) for r in records)

    @overload
    def __getitem__(self, index: int) -> AuditCall: ...
    @overload
    def __getitem__(self, index: slice) -> AuditView: ...
    def __getitem__(self, index):
        return AuditView(self._calls[index]) if isinstance(index, slice) else self._calls[index]

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self) -> Iterator[AuditCall]:
        return iter(self._calls)

    def __repr__(self) -> str:
        return f"AuditView({len(self._calls)} calls)"

    def where(
        self,
        *,
        user: str | None = None,
        actor: str | None = None,
        decision: str | None = None,
        path: str | None = None,
        on_behalf_of_user: bool | None = None,
    ) -> AuditView:
        """The calls matching every criterion given: ``user`` names the principal (full or short
        name), ``actor`` the agent acting for it, ``path`` a substring of the path."""
        return AuditView(
            c
            for c in self._calls
            if (user is None or c.ran_as(user))
            and (actor is None or actor in principal_names(c.actor))
            and (decision is None or c.decision == decision)
            and (path is None or path in c.path)
            and (on_behalf_of_user is None or c.on_behalf_of_user == on_behalf_of_user)
        )

    @property
    def denied(self) -> AuditView:
        return self.where(decision="deny")

    def principals(self) -> set[str]:
        """Whose identity the calls carried (full names; None for unauthenticated calls is left out)."""
        return {c.principal for c in self._calls if c.principal}

    def needed_scopes(self) -> set[str]:
        return {c.needed_scope for c in self._calls if c.needed_scope}

    def assert_all_as(self, user: str, *, actor: str | None = None) -> None:
        """AssertionError listing every call that did not run as ``user`` (via ``actor``, if given),
        and when there were no calls at all: a check that nothing ran proves nothing."""
        __tracebackhide__ = True  # pytest shows the failing test's line, not this one
        if not self._calls:
            raise AssertionError(f"no calls were audited, so none can be shown to run as {user}")
        wrong = [c for c in self._calls if not c.ran_as(user) or (actor is not None and actor not in principal_names(c.actor))]
        if wrong:
            shown = "; ".join(str(c) for c in wrong[:10]) + ("; ..." if len(wrong) > 10 else "")
            expected = f"{user} via {actor}" if actor else user
            raise AssertionError(f"{len(wrong)} of {len(self._calls)} calls did not run as {expected}: {shown}")
