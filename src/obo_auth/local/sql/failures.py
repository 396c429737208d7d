"""Why a statement failed, as the platform reports it: HTTP 200 with ``status.state = FAILED``.

A request the API cannot accept (bad JSON, an unknown warehouse, a bad ``wait_timeout``) is an
HTTP error instead (http_edge.py). A statement the warehouse accepted but could not run (a
syntax error, a missing table or privilege) is a FAILED statement whose ``status.error`` holds
``error_code`` and a message in the platform's ``[ERROR_CLASS] text SQLSTATE: xxxxx`` shape,
so clients that look for ``[TABLE_OR_VIEW_NOT_FOUND]`` in it (as databricks-labs-lsql does) work.
"""

from __future__ import annotations

# The SDK's ServiceErrorCode for a statement the SQL engine refused (it has no PERMISSION_DENIED:
# a missing privilege is an [INSUFFICIENT_PERMISSIONS] error of the statement).
ENGINE_ERROR_CODE = "BAD_REQUEST"


class StatementFailed(Exception):
    """The statement cannot run, and why: ``status.error`` and ``status.sql_state`` of a FAILED statement."""

    def __init__(self, error_class: str | None, message: str, sql_state: str | None = None):
        super().__init__(message)
        self.error_class = error_class
        self.sql_state = sql_state
        text = f"[{error_class}] {message}" if error_class else message
        self.message = f"{text} SQLSTATE: {sql_state}" if sql_state else text


def unsupported(message: str) -> StatementFailed:
    """What the local warehouse does not do (writes, file reads, ...): the platform's UNSUPPORTED_FEATURE class."""
    return StatementFailed("UNSUPPORTED_FEATURE", message, "0A000")
