"""Running a statement for one request: compile it as the caller (its grants checked and audited
on this request), start it on a worker thread, and wait for it as long as the request may.

A statement submitted with ``wait_timeout=0s`` is PENDING until its first poll, which runs it:
the platform queues it for the warehouse, and here the poll is the warehouse's next free moment.
Either way the caller's grants are checked when it runs, by the request that runs it.
"""

from __future__ import annotations

import asyncio
import functools
import logging

from starlette.concurrency import run_in_threadpool

from obo_auth.local.handler import Call
from obo_auth.local.sql.compile import Compiled, compile_statement
from obo_auth.local.sql.execution import Execution
from obo_auth.local.sql.failures import StatementFailed
from obo_auth.local.sql.statements import PENDING, RUNNING, Statement, StatementStore

# "This call currently might take up to 5 seconds to get the latest status" (get_statement).
POLL_WAIT_SECONDS = 5.0

logger = logging.getLogger("obo_auth.local")


async def advance(call: Call, statement: Statement, wait_seconds: float) -> None:
    """Runs ``statement`` if it is PENDING, then waits up to ``wait_seconds`` for it to finish."""
    store: StatementStore = call.state.services["sql"].statements
    if statement.state == PENDING:
        await _start(call, store, statement)
    if statement.state == RUNNING and statement.task is not None:
        await asyncio.wait({statement.task}, timeout=wait_seconds)


async def _start(call: Call, store: StatementStore, statement: Statement) -> None:
    allowed = call.require("CAN_USE", *statement.warehouse.securable)
    if not store.start(statement):
        return  # another poll started it, or it was canceled
    try:
        compiled = await run_in_threadpool(
            compile_statement, statement.request, principal=call.principal, catalog=call.state.services["catalog"], require=call.require
        )
    except Exception as error:  # noqa: BLE001 - a StatementFailed, or a bug: either way the statement FAILED, never stuck RUNNING
        failure = error if isinstance(error, StatementFailed) else _unexpected(statement, error)
        store.fail(statement, failure)
        call.reason = f"{allowed}; statement failed: {failure.message}"
        return
    finally:
        # The grant checks of the tables and functions named them as the resource: the warehouse is.
        call.resource = statement.warehouse.audit_resource
    call.reason = f"{allowed}; {_reads(compiled)}"
    if statement.state != RUNNING:
        return  # canceled while it compiled
    execution = Execution(compiled, row_limit=statement.request.row_limit, byte_limit=statement.request.byte_limit)
    task = asyncio.ensure_future(run_in_threadpool(execution.run))
    store.running(statement, execution, task)
    task.add_done_callback(functools.partial(_finished, store, statement))


def _finished(store: StatementStore, statement: Statement, task: asyncio.Future) -> None:
    if task.cancelled():  # the workspace stopped while it ran
        store.fail(statement, StatementFailed(None, "The local SQL warehouse stopped while the statement ran."))
        return
    error = task.exception()
    if error is None:
        store.succeed(statement, task.result())
    else:
        store.fail(statement, error if isinstance(error, StatementFailed) else _unexpected(statement, error))


def _unexpected(statement: Statement, error: BaseException) -> StatementFailed:
    """A bug: the log has it, the caller a FAILED statement (never a traceback)."""
    logger.error("local workspace: statement %s failed unexpectedly", statement.id, exc_info=error)
    return StatementFailed(None, "The local SQL warehouse failed unexpectedly; see its log.")


def _reads(compiled: Compiled) -> str:
    """For the audit: the tables read (and rows their row filters hid) and the functions executed."""
    reads = []
    for view, table in compiled.tables.items():
        hidden = compiled.views[view].hidden
        reads.append(f"read {table}" + (f" (row filter hid {hidden} rows)" if hidden else ""))
    reads += [f"executed {function}" for function in compiled.functions]
    return "; ".join(reads) or "read no table"
