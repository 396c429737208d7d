"""Answering a message as the user who asked it: read the question (questions.py), run its SQL
through the SQL warehouse service as that user, and keep the answer's words once the result is in.

The SQL runs as any statement of the Statement Execution API does (sql/running.py): CAN_USE on
the space's warehouse, then compiled as the caller (USE CATALOG, USE SCHEMA and SELECT per
table; the tables' row filters and column masks applied), on the caller's own statement, which
the caller can also read back with ``GET /api/2.0/sql/statements/{id}``. Genie runs it for the
user, so the token needs the Genie scope only, as on the platform. The audit record of the
request names the space, the statement, the warehouse, the tables read and the rows hidden.
"""

from __future__ import annotations

from obo_auth.local.genie import answers
from obo_auth.local.genie.conversations import Conversation, Failure, Message
from obo_auth.local.genie.questions import Unanswerable, plan
from obo_auth.local.genie.spaces import Space
from obo_auth.local.handler import Call
from obo_auth.local.sql.backend import SqlBackend
from obo_auth.local.sql.request import DEFAULT_WAIT_SECONDS, StatementRequest
from obo_auth.local.sql.running import POLL_WAIT_SECONDS, advance
from obo_auth.local.sql.statements import RUNNING, SUCCEEDED

# The most rows an answer's result holds (the statement's row_limit; its manifest says truncated).
ROW_LIMIT = 5000


async def ask(call: Call, space: Space, conversation: Conversation, message: Message) -> str:
    """Answers ``message`` as the caller; what happened, for the audit record."""
    catalog = call.state.services["catalog"]
    tables = {name: catalog.tables[name].columns for name in space.tables}
    message.answer = answer = plan(message.content, tables, previous_table=conversation.last_table)
    if isinstance(answer, Unanswerable):
        message.suggested_questions = tuple(answers.suggested_questions(tables))
        return f"question not mapped to SQL ({answer.reason})"
    conversation.last_table = answer.table
    sql: SqlBackend = call.state.services["sql"]
    warehouse = sql.warehouse(space.warehouse_id)  # the seed check made sure it exists
    if not call.can("CAN_USE", *warehouse.securable):
        message.failure = Failure(
            "WAREHOUSE_ACCESS_MISSING_EXCEPTION",
            f"You do not have CAN_USE on SQL warehouse '{warehouse.name}', which this Genie space runs its queries on. Ask its owner or a workspace admin to grant it.",
        )
        return f"{call.principal.name} may not use {warehouse.audit_resource}"
    request = StatementRequest(
        statement=answer.sql, warehouse_id=warehouse.id, catalog=None, schema=None, parameters=(),
        row_limit=ROW_LIMIT, byte_limit=None, wait_seconds=DEFAULT_WAIT_SECONDS, cancel_on_timeout=False,
    )  # fmt: skip
    message.statement = sql.statements.submit(call.principal, warehouse, request)
    # advance() checks the grants on this request and says in call.reason what the statement read.
    await advance(call, message.statement, DEFAULT_WAIT_SECONDS)
    return f"statement {message.statement.id} on {warehouse.audit_resource}: {call.reason}"


async def rerun(call: Call, space: Space, message: Message) -> str:
    """Runs the message's query again as the caller (execute-query), on a new statement."""
    sql: SqlBackend = call.state.services["sql"]
    warehouse = sql.warehouse(space.warehouse_id)
    # Checked before the statement exists, so a refused rerun leaves the message as it was.
    call.require("CAN_USE", *warehouse.securable)
    message.statement = sql.statements.submit(call.principal, warehouse, message.statement.request)
    message.summary = None
    await advance(call, message.statement, DEFAULT_WAIT_SECONDS)
    return f"statement {message.statement.id} on {warehouse.audit_resource}: {call.reason}"


async def settle(call: Call, message: Message) -> None:
    """Lets a running statement finish (up to the SQL service's poll wait), then keeps the answer's words."""
    statement = message.statement
    if statement is None:
        return
    if statement.state == RUNNING:
        await advance(call, statement, POLL_WAIT_SECONDS)
    if statement.state == SUCCEEDED and message.summary is None:
        message.summary = answers.summary(message.answer, statement.result)
