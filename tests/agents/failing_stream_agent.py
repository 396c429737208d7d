"""An obo_auth agent whose stream fails after its first chunk, with a token in the error text."""

import threading
import uuid

import mlflow
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentRequest, ResponsesAgentResponse, ResponsesAgentStreamEvent

import obo_auth


class FailingStreamAgent(ResponsesAgent):
    @obo_auth.on_behalf_of_user
    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        name = obo_auth.current_request().user_client.current_user.me().user_name
        return ResponsesAgentResponse(output=[self.create_text_output_item(text=name, id=str(uuid.uuid4()))])

    @obo_auth.on_behalf_of_user
    def predict_stream(self, request: ResponsesAgentRequest):
        yield ResponsesAgentStreamEvent(**self.create_text_delta(delta="partial", item_id="item-1"))
        # A careless agent puts a token in an error message: serving must not pass it on.
        token = threading.main_thread().__dict__.get("invokers_token")
        raise RuntimeError(f"the tool broke while using {token}")


mlflow.models.set_model(FailingStreamAgent())
