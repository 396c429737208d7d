"""The JSON shapes of the Genie API, as databricks-sdk's GenieAPI and databricks_ai_bridge's
``Genie`` read them (``GenieSpace``, ``GenieConversation``, ``GenieMessage``,
``GenieAttachment``, ``GenieQueryAttachment``, ``TextAttachment``, ``MessageError``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from obo_auth.local.genie import answers
from obo_auth.local.genie.conversations import COMPLETED, FAILED, QUERY_RESULT_EXPIRED, Conversation, Message
from obo_auth.local.genie.questions import Plan, Unanswerable
from obo_auth.local.genie.spaces import Space
from obo_auth.local.sql.routes import statement_json  # the Statement Execution API's own shape: one, for both services
from obo_auth.local.sql.statements import SUCCEEDED, Statement

# A statement that ran and failed: the MessageErrorType the message's error carries.
SQL_FAILED = "SQL_EXECUTION_EXCEPTION"
_ANSWER = "TEXT_ATTACHMENT_PURPOSE_ANSWER"


def space_json(space: Space) -> dict[str, Any]:
    return {"space_id": space.id, "title": space.title, "description": space.description, "warehouse_id": space.warehouse_id}


def serialized_space(space: Space, comments: Mapping[str, str | None], tables: Mapping[str, Mapping[str, str]]) -> str:
    """The space's export (``serialized_space``, version 2 as the platform writes it): its tables and,
    as sample questions, questions the local Genie answers."""
    samples = [{"id": uuid.uuid5(uuid.NAMESPACE_URL, f"{space.id}:{q}").hex, "question": [q]} for q in answers.suggested_questions(tables)]
    sources = [{"identifier": t, **({"description": [comments[t]]} if comments.get(t) else {})} for t in space.tables]
    return json.dumps({"version": 2, "config": {"sample_questions": samples}, "data_sources": {"tables": sources}})


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "conversation_id": conversation.id,
        "space_id": conversation.space_id,
        "title": conversation.title,
        "created_timestamp": conversation.created_ms,
        "last_updated_timestamp": conversation.messages[-1].created_ms if conversation.messages else conversation.created_ms,
    }


def conversation_summary_json(conversation: Conversation) -> dict[str, Any]:
    return {
        "conversation_id": conversation.id,
        "title": conversation.title,
        "created_timestamp": conversation.created_ms,
        "agent_type": "GENIE_CONVERSATION_TYPE_CHAT",
    }


def message_json(message: Message) -> dict[str, Any]:
    status = message.status
    body: dict[str, Any] = {
        "id": message.id,
        "message_id": message.id,
        "conversation_id": message.conversation_id,
        "space_id": message.space_id,
        "content": message.content,
        "status": status,
        "created_timestamp": message.created_ms,
        "last_updated_timestamp": _updated_ms(message),
    }
    attachments = _attachments(message, status)
    if attachments:
        body["attachments"] = attachments
    if status == FAILED:
        failure = message.failure
        body["error"] = {"error": failure.error, "type": failure.type} if failure else {"error": message.statement.failure.message, "type": SQL_FAILED}
    if message.statement is not None and message.statement.state == SUCCEEDED:
        # Deprecated on the platform (query_result_metadata replaces it), still sent: older clients read it.
        body["query_result"] = {"statement_id": message.statement.id, **_result_metadata(message.statement)}
    return body


def query_result_json(statement: Statement) -> dict[str, Any]:
    return {"statement_response": statement_json(statement)}


def _attachments(message: Message, status: str) -> list[dict[str, Any]]:
    answer, attachments = message.answer, []
    if isinstance(answer, Unanswerable):
        attachments.append(_text(message.text_attachment_id, answers.cannot_answer(answer.reason)))
        if message.suggested_questions:
            attachments.append({"attachment_id": message.suggestions_attachment_id, "suggested_questions": {"questions": list(message.suggested_questions)}})
    elif isinstance(answer, Plan) and message.statement is not None:
        attachments.append({"attachment_id": message.query_attachment_id, "query": _query(message, answer)})
        if status in (COMPLETED, QUERY_RESULT_EXPIRED) and message.summary:
            attachments.append(_text(message.text_attachment_id, message.summary))
    return attachments


def _query(message: Message, plan: Plan) -> dict[str, Any]:
    query: dict[str, Any] = {
        "id": message.query_attachment_id,
        "title": plan.title,
        "description": plan.description,
        "query": plan.sql,
        "statement_id": message.statement.id,
        "last_updated_timestamp": _updated_ms(message),
    }
    if message.statement.state == SUCCEEDED:
        query["query_result_metadata"] = _result_metadata(message.statement)
    return query


def _text(attachment_id: str, content: str) -> dict[str, Any]:
    return {"attachment_id": attachment_id, "text": {"id": attachment_id, "content": content, "purpose": _ANSWER}}


def _result_metadata(statement: Statement) -> dict[str, Any]:
    return {"row_count": statement.result.row_count, "is_truncated": statement.result.truncated}


def _updated_ms(message: Message) -> int:
    succeeded_at = message.statement.succeeded_at if message.statement is not None else None
    return int(succeeded_at * 1000) if succeeded_at is not None else message.created_ms
