"""The invoker's token as a value object that never shows its secret."""

from __future__ import annotations

from dataclasses import dataclass, field

from obo_auth.redact import fingerprint


@dataclass(frozen=True)
class UserToken:
    """An end user's (downscoped) token. ``repr``/``str`` show only a fingerprint."""

    value: str = field(repr=False)
    source: str  # where it was read: "as_user", "mlflowserving", "main-thread slot"

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or not self.value.strip():
            raise ValueError("An invoker token must be a non-empty string.")

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.value)

    def __str__(self) -> str:
        return f"UserToken({self.fingerprint}, from {self.source})"

    __repr__ = __str__
