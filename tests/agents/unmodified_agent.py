"""An agent written the docs' way, without obo_auth: it reads the runtime's process-wide slot itself.

Local serving must run it one request at a time (it cannot tell concurrent invokers apart).
"""

import time
import uuid

import mlflow
from databricks.sdk import WorkspaceClient
from databricks.sdk.credentials_provider import ModelServingUserCredentials
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentRequest, ResponsesAgentResponse


class WhoAmIAgent(ResponsesAgent):
    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        client = WorkspaceClient(credentials_strategy=ModelServingUserCredentials())
        time.sleep(0.05)  # another request would overwrite the slot here, if served concurrently
        me = client.current_user.me()
        name = me.user_name if "@" in me.user_name else me.display_name  # a service principal's is its application id
        return ResponsesAgentResponse(output=[self.create_text_output_item(text=name, id=str(uuid.uuid4()))])


mlflow.models.set_model(WhoAmIAgent())
