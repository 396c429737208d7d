"""The handbook agent as an ``mlflow.pyfunc.ResponsesAgent`` (MLflow 3's recommended interface)."""

from __future__ import annotations

import uuid
from collections.abc import Generator

import mlflow
from handbook_logic import answer
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentRequest, ResponsesAgentResponse, ResponsesAgentStreamEvent

import obo_auth


def _messages(request: ResponsesAgentRequest) -> list[dict]:
    return ResponsesAgent.prep_msgs_for_cc_llm([item.model_dump() for item in request.input])


class HandbookResponsesAgent(ResponsesAgent):
    @obo_auth.on_behalf_of_user
    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        result = answer(_messages(request))
        item = self.create_text_output_item(text=result.text, id=str(uuid.uuid4()))
        return ResponsesAgentResponse(output=[item], custom_outputs=result.custom_outputs)

    @obo_auth.on_behalf_of_user
    def predict_stream(self, request: ResponsesAgentRequest) -> Generator[ResponsesAgentStreamEvent, None, None]:
        result = answer(_messages(request))
        item_id = str(uuid.uuid4())
        words = result.text.split(" ")
        for i, word in enumerate(words):
            yield ResponsesAgentStreamEvent(**self.create_text_delta(delta=word if i == 0 else " " + word, item_id=item_id))
        yield ResponsesAgentStreamEvent(
            type="response.output_item.done",
            item=self.create_text_output_item(text=result.text, id=item_id),
            custom_outputs=result.custom_outputs,
        )


mlflow.models.set_model(HandbookResponsesAgent())
