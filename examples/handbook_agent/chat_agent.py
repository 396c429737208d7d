"""The handbook agent as an ``mlflow.pyfunc.ChatAgent`` (models-from-code file)."""

from __future__ import annotations

import uuid
from collections.abc import Generator
from typing import Any

import mlflow
from handbook_logic import answer
from mlflow.pyfunc import ChatAgent
from mlflow.types.agent import ChatAgentChunk, ChatAgentMessage, ChatAgentResponse, ChatContext

import obo_auth


class HandbookChatAgent(ChatAgent):
    @obo_auth.on_behalf_of_user
    def predict(
        self, messages: list[ChatAgentMessage], context: ChatContext | None = None, custom_inputs: dict[str, Any] | None = None
    ) -> ChatAgentResponse:
        result = answer([{"role": m.role, "content": m.content} for m in messages])
        reply = ChatAgentMessage(id=str(uuid.uuid4()), role="assistant", content=result.text)
        return ChatAgentResponse(messages=[reply], custom_outputs=result.custom_outputs)

    @obo_auth.on_behalf_of_user
    def predict_stream(
        self, messages: list[ChatAgentMessage], context: ChatContext | None = None, custom_inputs: dict[str, Any] | None = None
    ) -> Generator[ChatAgentChunk, None, None]:
        result = answer([{"role": m.role, "content": m.content} for m in messages])
        message_id = str(uuid.uuid4())
        words = result.text.split(" ")
        for i, word in enumerate(words):
            last = i == len(words) - 1
            yield ChatAgentChunk(
                delta=ChatAgentMessage(id=message_id, role="assistant", content=word if i == 0 else " " + word),
                custom_outputs=result.custom_outputs if last else None,
            )


mlflow.models.set_model(HandbookChatAgent())
