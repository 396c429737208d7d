"""Conversations and their messages, in memory, bounded.

A conversation belongs to the principal that started it: to anyone else it does not exist
(404), as the SQL service's statements do. A message's status is read from its statement, so
it is never out of step with it: EXECUTING_QUERY while the statement runs, then COMPLETED,
FAILED, CANCELLED (the statement was canceled through the SQL API) or QUERY_RESULT_EXPIRED
(the SQL service closed its result). The oldest conversations are forgotten beyond
MAX_CONVERSATIONS per user; a conversation takes at most MAX_MESSAGES messages.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from obo_auth.http_edge import BadRequest, NotFound
from obo_auth.local.genie.questions import Answer, Unanswerable
from obo_auth.local.identity.models import Principal
from obo_auth.local.sql import statements as sql_states
from obo_auth.local.sql.statements import Statement

# The platform keeps 10,000 conversations per space and 10,000 messages per conversation;
# a local workspace lives for a test run, so it keeps fewer.
MAX_CONVERSATIONS = 1000
MAX_MESSAGES = 100

SUBMITTED, EXECUTING_QUERY, COMPLETED, FAILED = "SUBMITTED", "EXECUTING_QUERY", "COMPLETED", "FAILED"
CANCELLED, QUERY_RESULT_EXPIRED = "CANCELLED", "QUERY_RESULT_EXPIRED"
_BY_STATEMENT = {
    sql_states.PENDING: EXECUTING_QUERY,
    sql_states.RUNNING: EXECUTING_QUERY,
    sql_states.SUCCEEDED: COMPLETED,
    sql_states.FAILED: FAILED,
    sql_states.CANCELED: CANCELLED,
    sql_states.CLOSED: QUERY_RESULT_EXPIRED,
}


def _new_id() -> str:
    # Random, 32 hex digits as the platform's ids: one user cannot guess another's.
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Failure:
    """Why a message failed before any statement ran: the message's ``error``."""

    type: str  # a MessageErrorType, e.g. WAREHOUSE_ACCESS_MISSING_EXCEPTION
    error: str


@dataclass(eq=False)
class Message:
    id: str
    conversation_id: str
    space_id: str
    content: str
    created_ms: int
    answer: Answer | None = None  # None until the question has been read
    statement: Statement | None = None  # the SQL service's statement that answers it
    failure: Failure | None = None
    summary: str | None = None  # the answer's words, kept once the result is in (the result may later expire)
    suggested_questions: tuple[str, ...] = ()  # offered with a reply to a question it cannot answer
    query_attachment_id: str = field(default_factory=_new_id)
    text_attachment_id: str = field(default_factory=_new_id)
    suggestions_attachment_id: str = field(default_factory=_new_id)

    @property
    def status(self) -> str:
        if self.failure is not None:
            return FAILED
        if self.answer is None:
            return SUBMITTED
        if isinstance(self.answer, Unanswerable) or self.statement is None:
            return COMPLETED
        return _BY_STATEMENT[self.statement.state]


@dataclass(eq=False)
class Conversation:
    id: str
    space_id: str
    owner_id: str
    title: str
    created_ms: int
    messages: list[Message] = field(default_factory=list)
    # The table of the last question that had one: a follow-up that names no table asks about it.
    last_table: str | None = None

    def message(self, message_id: str) -> Message:
        found = next((m for m in self.messages if m.id == message_id), None)
        if found is None:
            raise NotFound(f"Message '{message_id[:80]}' does not exist in conversation '{self.id}'.")
        return found


class ConversationStore:
    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._conversations: OrderedDict[str, Conversation] = OrderedDict()  # oldest first
        self._lock = threading.Lock()

    def start(self, owner: Principal, space_id: str, content: str) -> tuple[Conversation, Message]:
        # The platform titles a conversation with its first question.
        conversation = Conversation(_new_id(), space_id, owner.id, content[:200], self._now_ms())
        with self._lock:
            self._conversations[conversation.id] = conversation
            # Per owner: one user's many conversations never push out another's.
            mine = [key for key, kept in self._conversations.items() if kept.owner_id == owner.id]
            for key in mine[: max(0, len(mine) - MAX_CONVERSATIONS)]:
                del self._conversations[key]
        return conversation, self.add(conversation, content)

    def add(self, conversation: Conversation, content: str) -> Message:
        with self._lock:
            if len(conversation.messages) >= MAX_MESSAGES:
                raise BadRequest(
                    f"Conversation '{conversation.id}' already has {MAX_MESSAGES} messages, the local workspace's limit; start a new conversation.",
                    error_code="RESOURCE_LIMIT_EXCEEDED",
                )
            message = Message(_new_id(), conversation.id, conversation.space_id, content, self._now_ms())
            conversation.messages.append(message)
        return message

    def get(self, space_id: str, conversation_id: str, caller: Principal) -> Conversation:
        """The caller's conversation in the space; another's is answered as if it did not exist."""
        with self._lock:
            conversation = self._conversations.get(conversation_id)
        if conversation is None or conversation.space_id != space_id or conversation.owner_id != caller.id:
            raise NotFound(f"Conversation '{conversation_id[:80]}' does not exist in this Genie space (conversations are kept for a limited time).")
        return conversation

    def listed(self, space_id: str, owner: Principal | None) -> list[Conversation]:
        """The space's conversations, newest first: ``owner``'s, or everyone's for None."""
        with self._lock:
            found = [c for c in self._conversations.values() if c.space_id == space_id and (owner is None or c.owner_id == owner.id)]
        return found[::-1]

    def delete(self, conversation: Conversation) -> None:
        with self._lock:
            self._conversations.pop(conversation.id, None)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
