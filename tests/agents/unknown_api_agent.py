"""An obo_auth agent that calls, as its user, an API the local workspace does not serve (the
scope drift run cannot tell which scope that call needs), then answers with the user's name."""

import uuid

import mlflow
from mlflow.pyfunc import ChatAgent
from mlflow.types.agent import ChatAgentMessage, ChatAgentResponse

import obo_auth


class UnknownApiAgent(ChatAgent):
    @obo_auth.on_behalf_of_user
    def predict(self, messages, context=None, custom_inputs=None):
        req = obo_auth.current_request()
        req.optional("the report service", lambda: req.user_client.api_client.do("GET", "/api/2.0/no-such-report-service"))
        name = req.user_client.current_user.me().user_name
        return ChatAgentResponse(messages=[ChatAgentMessage(id=str(uuid.uuid4()), role="assistant", content=name)])


mlflow.models.set_model(UnknownApiAgent())
