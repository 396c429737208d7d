"""The people agent as an ``mlflow.pyfunc.ChatAgent`` (models-from-code file)."""

from __future__ import annotations

import uuid
from collections.abc import Generator
from typing import Any

import mlflow
from mlflow.pyfunc import ChatAgent
from mlflow.types.agent import ChatAgentChunk, ChatAgentMessage, ChatAgentResponse, ChatContext
from people_logic import answer

import obo_auth


class PeopleChatAgent(ChatAgent):
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
        lines = result.text.split("\n")  # line by line: a Genie result table arrives a row at a time
        for i, line in enumerate(lines):
            last = i == len(lines) - 1
            yield ChatAgentChunk(
                delta=ChatAgentMessage(id=message_id, role="assistant", content=line if i == 0 else "\n" + line),
                custom_outputs=result.custom_outputs if last else None,
            )


mlflow.models.set_model(PeopleChatAgent())
