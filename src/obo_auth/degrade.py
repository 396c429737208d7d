"""Which failures mean "this user may not use that tool", and how to say so to the user.

Only access errors degrade (401, 403, 404, and 403 "Invalid scope"), recognised across the
clients a tool may use: databricks-sdk, the vector-search client and openai. Everything else
is a programming error and propagates.
"""

from __future__ import annotations

from dataclasses import dataclass

from databricks.sdk import errors as sdk_errors

PERMISSION_DENIED = "permission_denied"
NOT_FOUND = "not_found"
SCOPE_MISSING = "scope_missing"
UNAUTHENTICATED = "unauthenticated"

_EXPLANATIONS = {
    PERMISSION_DENIED: "you do not have permission",
    NOT_FOUND: "it was not found",
    SCOPE_MISSING: "the agent was not granted the API scope it needs",
    UNAUTHENTICATED: "your credentials were not accepted",
}
_SDK_STATUS = ((sdk_errors.Unauthenticated, 401), (sdk_errors.PermissionDenied, 403), (sdk_errors.NotFound, 404))


@dataclass(frozen=True)
class Degradation:
    """A tool this request could not use: its name and a reason category, never a message or token."""

    name: str
    reason: str  # one of PERMISSION_DENIED, NOT_FOUND, SCOPE_MISSING, UNAUTHENTICATED

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "reason": self.reason}


def access_category(error: BaseException) -> str | None:
    """The access-error category of ``error`` (or of what caused it), or None if it is not one."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        category = _category(current)
        if category:
            return category
        # Only explicit causes (raise ... from ...): an unrelated error raised while handling
        # a 403 is a programming error, not a degradation.
        current = current.__cause__
    return None


def _category(error: BaseException) -> str | None:
    status = next((code for kind, code in _SDK_STATUS if isinstance(error, kind)), None)
    if status is None:
        code = getattr(error, "status_code", None)  # the vector-search client and openai both carry it
        status = code if isinstance(code, int) else None
    if status == 403 and "Invalid scope" in str(error):
        return SCOPE_MISSING
    return {401: UNAUTHENTICATED, 403: PERMISSION_DENIED, 404: NOT_FOUND}.get(status)


def degraded_note(degraded: list[Degradation]) -> str | None:
    """A short sentence for the answer, e.g. "I could not use: handbook (you do not have permission)."."""
    if not degraded:
        return None
    parts = [f"{d.name} ({_EXPLANATIONS[d.reason]})" for d in degraded]
    return "I could not use: " + "; ".join(parts) + "."


def degraded_outputs(degraded: list[Degradation]) -> dict[str, list[dict[str, str]]]:
    """The same for ``custom_outputs``: ``{"unavailable_tools": [{"name": ..., "reason": ...}]}``."""
    return {"unavailable_tools": [d.to_dict() for d in degraded]}
