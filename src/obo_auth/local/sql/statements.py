"""The statements the warehouses hold: their states, results and owners, in memory, bounded.

A statement belongs to the principal that submitted it: to anyone else it does not exist (404).
States are the platform's: PENDING (submitted with wait_timeout=0s, not yet polled), RUNNING,
then SUCCEEDED, FAILED or CANCELED; a result is kept RESULT_RETENTION_SECONDS after success
(or less, when results crowd the store), then the statement is CLOSED. The oldest statements
are forgotten beyond MAX_STATEMENTS.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from obo_auth.http_edge import NotFound
from obo_auth.local.identity.models import Principal
from obo_auth.local.sql.execution import Execution, Result
from obo_auth.local.sql.failures import StatementFailed
from obo_auth.local.sql.request import StatementRequest
from obo_auth.local.sql.warehouses import Warehouse

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, CLOSED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "CLOSED"
# "The results are only available for one hour after success" (Statement Execution API docs).
RESULT_RETENTION_SECONDS = 3600.0
MAX_STATEMENTS = 1000
MAX_KEPT_RESULT_BYTES = 64 * 1024 * 1024


@dataclass(eq=False)
class Statement:
    id: str
    owner_id: str
    warehouse: Warehouse
    request: StatementRequest
    state: str = PENDING
    failure: StatementFailed | None = None
    result: Result | None = None
    succeeded_at: float | None = None
    # While RUNNING: what a poll waits on and what cancel stops.
    task: asyncio.Future | None = field(default=None, repr=False)
    execution: Execution | None = field(default=None, repr=False)


class StatementStore:
    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._statements: OrderedDict[str, Statement] = OrderedDict()  # oldest first
        self._lock = threading.Lock()

    def submit(self, owner: Principal, warehouse: Warehouse, request: StatementRequest) -> Statement:
        # Random ids: one user cannot guess another's statement.
        statement = Statement(str(uuid.uuid4()), owner.id, warehouse, request)
        with self._lock:
            self._statements[statement.id] = statement
            while len(self._statements) > MAX_STATEMENTS:
                self._statements.popitem(last=False)
        return statement

    def get(self, statement_id: str, caller: Principal) -> Statement:
        """The caller's statement; another principal's is answered as if it did not exist."""
        with self._lock:
            self._close_expired()
            statement = self._statements.get(statement_id)
        if statement is None or statement.owner_id != caller.id:
            raise NotFound(f"Statement '{statement_id[:80]}' does not exist (statements are kept for a limited time).")
        return statement

    def start(self, statement: Statement) -> bool:
        """PENDING -> RUNNING; False if it already left PENDING (another poll runs it, or it was canceled)."""
        with self._lock:
            if statement.state != PENDING:
                return False
            statement.state = RUNNING
            return True

    def running(self, statement: Statement, execution: Execution, task: asyncio.Future) -> None:
        statement.execution, statement.task = execution, task

    def succeed(self, statement: Statement, result: Result) -> None:
        with self._lock:
            if statement.state == RUNNING:  # a canceled statement keeps no result
                statement.state, statement.result, statement.succeeded_at = SUCCEEDED, result, self._clock()
            statement.execution = statement.task = None
            self._close_crowding()

    def fail(self, statement: Statement, failure: StatementFailed) -> None:
        with self._lock:
            if statement.state == RUNNING:
                statement.state, statement.failure = FAILED, failure
            statement.execution = statement.task = None

    def cancel(self, statement: Statement) -> None:
        """Cancels a statement that has not finished; a finished one stays as it is (as on the platform)."""
        with self._lock:
            if statement.state not in (PENDING, RUNNING):
                return
            statement.state = CANCELED
            execution = statement.execution
        if execution is not None:
            execution.cancel()

    def _close_expired(self) -> None:
        now = self._clock()
        for statement in self._statements.values():
            if statement.state == SUCCEEDED and now - statement.succeeded_at >= RESULT_RETENTION_SECONDS:
                _close(statement)

    def _close_crowding(self) -> None:
        """Closes the oldest results while those kept exceed MAX_KEPT_RESULT_BYTES."""
        kept = [s for s in self._statements.values() if s.state == SUCCEEDED]
        total = sum(s.result.byte_count for s in kept)
        for statement in kept:
            if total <= MAX_KEPT_RESULT_BYTES:
                break
            total -= statement.result.byte_count
            _close(statement)


def _close(statement: Statement) -> None:
    statement.state, statement.result = CLOSED, None
