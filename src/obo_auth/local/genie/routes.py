"""Genie routes: spaces, and the conversation API, in the shapes databricks-sdk's ``GenieAPI`` and
databricks_ai_bridge's ``Genie`` read (render.py).

A question is answered within the request that asks it (asking.py), so its grants are checked
and audited there; the response shows the message as submitted (SUBMITTED, as the platform
answers), and the first poll finds it COMPLETED or FAILED (or EXECUTING_QUERY while a slow
statement still runs).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from obo_auth.http_edge import BadRequest, NotFound, read_json
from obo_auth.local._base import field, token_page
from obo_auth.local.genie import asking, render
from obo_auth.local.genie.backend import GenieBackend
from obo_auth.local.genie.conversations import Conversation, Message
from obo_auth.local.genie.questions import Plan
from obo_auth.local.genie.scopes import API_SCOPES
from obo_auth.local.genie.spaces import Space, no_such_space
from obo_auth.local.handler import Call, api

SPACES_PATH = "/api/2.0/genie/spaces"
CONVERSATION_PATH = f"{SPACES_PATH}/{{space_id}}/conversations/{{conversation_id}}"
MESSAGE_PATH = f"{CONVERSATION_PATH}/messages/{{message_id}}"
# The platform's limit is not documented; a question is a sentence, and GenieAgent sends a chat history.
MAX_QUESTION_CHARS = 10_000

SCOPE = API_SCOPES["genie"]


def _backend(call: Call) -> GenieBackend:
    return call.state.services["genie"]


# -- spaces ----------------------------------------------------------------------------------------


def _space(request: Request, call: Call, level: str = "CAN_VIEW") -> tuple[Space, str]:
    """The space of the path and why the caller holds ``level`` on it (audited): 404 if the
    caller may not see it at all, 403 naming the level if it may see it but not that."""
    space_id = request.path_params["space_id"]
    space = _backend(call).space(space_id)
    if space is None or not call.can("CAN_VIEW", *space.securable):
        if space is not None:
            call.resource = space.audit_resource  # for the audit log only
        raise no_such_space(space_id)
    return space, call.require(level, *space.securable)


@api(SCOPE)
async def list_spaces(request: Request, call: Call) -> Response:
    spaces = _backend(call).spaces()
    visible = [s for s in spaces if call.can("CAN_VIEW", *s.securable)]
    if len(visible) < len(spaces):
        # For the audit log only: the caller is not told that anything was left out.
        call.reason = f"allowed; hid {len(spaces) - len(visible)} Genie spaces the caller may not see"
    page, next_token = token_page(request, visible)
    return JSONResponse({"spaces": [render.space_json(s) for s in page], **next_token})


@api(SCOPE)
async def get_space(request: Request, call: Call) -> Response:
    serialized = _flag(request, "include_serialized_space")
    # "Requires at least CAN EDIT permission on the space" to include the export (GenieAPI.get_space).
    space, _ = _space(request, call, "CAN_EDIT" if serialized else "CAN_VIEW")
    body = render.space_json(space)
    if serialized:
        catalog = call.state.services["catalog"]
        comments = {t: catalog.tables[t].comment for t in space.tables}
        body["serialized_space"] = render.serialized_space(space, comments, {t: catalog.tables[t].columns for t in space.tables})
    return JSONResponse(body)


# -- conversations ---------------------------------------------------------------------------------


@api(SCOPE)
async def start_conversation(request: Request, call: Call) -> Response:
    space, allowed = _space(request, call, "CAN_RUN")
    question = _question(await read_json(request))
    conversation, message = _backend(call).conversations.start(call.principal, space.id, question)
    submitted = render.message_json(message)  # the message as submitted, before it is answered
    await _answer(call, space, allowed, conversation, message)
    body = {
        "conversation_id": conversation.id,
        "message_id": message.id,
        "conversation": render.conversation_json(conversation),
        "message": submitted,
    }
    return JSONResponse(body)


@api(SCOPE)
async def create_message(request: Request, call: Call) -> Response:
    space, allowed = _space(request, call, "CAN_RUN")
    conversation = _conversation(request, call, space)
    question = _question(await read_json(request))
    message = _backend(call).conversations.add(conversation, question)
    submitted = render.message_json(message)
    await _answer(call, space, allowed, conversation, message)
    return JSONResponse(submitted)


@api(SCOPE)
async def list_conversations(request: Request, call: Call) -> Response:
    include_all = _flag(request, "include_all")
    # "Include all conversations in the space across all users. Requires at least CAN MANAGE permission."
    space, _ = _space(request, call, "CAN_MANAGE" if include_all else "CAN_VIEW")
    conversations = _backend(call).conversations.listed(space.id, None if include_all else call.principal)
    page, next_token = token_page(request, conversations)
    return JSONResponse({"conversations": [render.conversation_summary_json(c) for c in page], **next_token})


@api(SCOPE)
async def delete_conversation(request: Request, call: Call) -> Response:
    space, _ = _space(request, call)
    _backend(call).conversations.delete(_conversation(request, call, space))
    return JSONResponse({})


# -- messages and their query results --------------------------------------------------------------


@api(SCOPE)
async def get_message(request: Request, call: Call) -> Response:
    space, allowed = _space(request, call)
    message = _message(request, call, space)
    await asking.settle(call, message)
    _audit(call, space, f"{allowed}; message {message.id} is {message.status}")
    return JSONResponse(render.message_json(message))


@api(SCOPE)
async def get_attachment_query_result(request: Request, call: Call) -> Response:
    space, allowed = _space(request, call)
    message = _message(request, call, space)
    _query_attachment(message, request.path_params["attachment_id"])
    return await _query_result(call, space, allowed, message)


@api(SCOPE)
async def get_message_query_result(request: Request, call: Call) -> Response:
    """Deprecated on the platform (the attachment route replaces it): the message's query result."""
    space, allowed = _space(request, call)
    message = _message(request, call, space)
    _query_attachment(message, None)
    return await _query_result(call, space, allowed, message)


@api(SCOPE)
async def execute_attachment_query(request: Request, call: Call) -> Response:
    space, allowed = _space(request, call, "CAN_RUN")
    message = _message(request, call, space)
    _query_attachment(message, request.path_params.get("attachment_id"))
    done = await asking.rerun(call, space, message)
    _audit(call, space, f"{allowed}; {done}")
    await asking.settle(call, message)
    return JSONResponse(render.query_result_json(message.statement))


# -- helpers ---------------------------------------------------------------------------------------


async def _answer(call: Call, space: Space, allowed: str, conversation: Conversation, message: Message) -> None:
    done = await asking.ask(call, space, conversation, message)
    _audit(call, space, f"{allowed}; conversation {conversation.id}, message {message.id}: {done}")


async def _query_result(call: Call, space: Space, allowed: str, message: Message) -> Response:
    await asking.settle(call, message)
    _audit(call, space, f"{allowed}; query result of message {message.id}: statement {message.statement.id} is {message.statement.state}")
    return JSONResponse(render.query_result_json(message.statement))


def _audit(call: Call, space: Space, reason: str) -> None:
    # Running the SQL named the warehouse and the tables as the resource: the space is.
    call.resource, call.reason = space.audit_resource, reason


def _conversation(request: Request, call: Call, space: Space) -> Conversation:
    return _backend(call).conversations.get(space.id, request.path_params["conversation_id"], call.principal)


def _message(request: Request, call: Call, space: Space) -> Message:
    return _conversation(request, call, space).message(request.path_params["message_id"])


def _query_attachment(message: Message, attachment_id: str | None) -> None:
    """400 unless the message has a query attachment (and ``attachment_id``, if given, is it); 404 for an unknown id."""
    has_query = isinstance(message.answer, Plan) and message.statement is not None
    if attachment_id is not None and attachment_id != message.query_attachment_id:
        if attachment_id in (message.text_attachment_id, message.suggestions_attachment_id):
            raise BadRequest(f"Attachment '{attachment_id}' of message {message.id} is not a query attachment: it has no query result.")
        raise _no_such_attachment(message, attachment_id)
    if not has_query:
        if attachment_id is not None:
            raise _no_such_attachment(message, attachment_id)
        raise BadRequest(f"Message {message.id} has no query attachment: Genie answered it without a query.")


def _no_such_attachment(message: Message, attachment_id: str) -> NotFound:
    return NotFound(f"Attachment '{attachment_id[:80]}' does not exist in message {message.id}.")


def _question(body: dict[str, Any]) -> str:
    content = field(body, "content", str)
    field(body, "enable_visualization", bool, False)  # accepted; the local Genie draws no charts
    if not content.strip():
        raise BadRequest("Field 'content' is empty; send the question to ask.")
    if len(content) > MAX_QUESTION_CHARS:
        raise BadRequest(f"Field 'content' is {len(content)} characters; the local Genie takes questions of at most {MAX_QUESTION_CHARS}.")
    return content


def _flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "false")
    if raw.lower() not in ("true", "false"):
        raise BadRequest(f"Query parameter '{name}' must be true or false, got {raw[:40]!r}.")
    return raw.lower() == "true"


routes = [
    Route(SPACES_PATH, list_spaces, methods=["GET"]),
    Route(f"{SPACES_PATH}/{{space_id}}", get_space, methods=["GET"]),
    Route(f"{SPACES_PATH}/{{space_id}}/start-conversation", start_conversation, methods=["POST"]),
    Route(f"{SPACES_PATH}/{{space_id}}/conversations", list_conversations, methods=["GET"]),
    Route(CONVERSATION_PATH, delete_conversation, methods=["DELETE"]),
    Route(f"{CONVERSATION_PATH}/messages", create_message, methods=["POST"]),
    Route(MESSAGE_PATH, get_message, methods=["GET"]),
    Route(f"{MESSAGE_PATH}/attachments/{{attachment_id}}/query-result", get_attachment_query_result, methods=["GET"]),
    Route(f"{MESSAGE_PATH}/attachments/{{attachment_id}}/execute-query", execute_attachment_query, methods=["POST"]),
    # Deprecated on the platform, still served: older clients call them.
    Route(f"{MESSAGE_PATH}/query-result", get_message_query_result, methods=["GET"]),
    Route(f"{MESSAGE_PATH}/query-result/{{attachment_id}}", get_attachment_query_result, methods=["GET"]),
    Route(f"{MESSAGE_PATH}/execute-query", execute_attachment_query, methods=["POST"]),
]
