"""A ChatAgent written the README's way: it answers with the name of the user it acts for.

It prints a line as client libraries do (the vector-search client's [NOTICE]), which must
never reach the stdout of the script that logs it.
"""

import uuid

import mlflow
from mlflow.pyfunc import ChatAgent
from mlflow.types.agent import ChatAgentMessage, ChatAgentResponse

import obo_auth


class WhoAmIChatAgent(ChatAgent):
    @obo_auth.on_behalf_of_user
    def predict(self, messages, context=None, custom_inputs=None):
        req = obo_auth.current_request()
        print("[NOTICE] a client library's chatter")
        name = req.user_client.current_user.me().user_name
        return ChatAgentResponse(messages=[ChatAgentMessage(id=str(uuid.uuid4()), role="assistant", content=name)])


mlflow.models.set_model(WhoAmIChatAgent())
