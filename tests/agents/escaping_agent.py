"""An obo_auth agent that lets what it holds escape its request, as a careless tool would.

With ``custom_inputs={"report_to": PATH}`` it writes to PATH, during the request: the invoker's
token (from the serving runtime's per-request source), the agent's own credentials directory
and token, and the environment its process started with (``/proc/self/environ``). Then it
answers with the invoker's user name.

``fail: true`` makes it raise an error that quotes the agent's own token and the invoker's,
glued to other letters. Its stream yields ``chunks`` events (default 3); with ``fail`` it
raises after the first; with ``hold_until: PATH`` it waits (up to 30 s) for PATH to exist
before the second (``predict`` waits before answering).
"""

import json
import os
import time
import uuid
from pathlib import Path

import mlflow
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentRequest, ResponsesAgentResponse, ResponsesAgentStreamEvent

import obo_auth


def _agent_token() -> str:
    credentials = Path(os.environ["SERVING_CREDENTIALS_DIR"], "model-dependencies-oauth-token")
    return json.loads(credentials.read_text())["OAUTH_TOKEN"][0]["oauthTokenValue"]


def _escape(inputs: dict) -> None:
    if "report_to" in inputs:
        from mlflowserving.scoring_server.agent_utils import fetch_obo_token  # exists only in serving

        report = {
            "invoker_token": fetch_obo_token(),
            "credentials_dir": os.environ["SERVING_CREDENTIALS_DIR"],
            "agent_token": _agent_token(),
            "environ": Path("/proc/self/environ").read_bytes().decode(errors="replace").split("\0"),
        }
        Path(inputs["report_to"]).write_text(json.dumps(report))


def _hold(inputs: dict) -> None:
    if "hold_until" in inputs:
        deadline = time.monotonic() + 30
        while not Path(inputs["hold_until"]).exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def _fail() -> None:
    from mlflowserving.scoring_server.agent_utils import fetch_obo_token

    raise RuntimeError(f"the tool broke: token{_agent_token()}x, invoker Bearer{fetch_obo_token()}")


class EscapingAgent(ResponsesAgent):
    @obo_auth.on_behalf_of_user
    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        inputs = request.custom_inputs or {}
        _escape(inputs)
        _hold(inputs)
        if inputs.get("fail"):
            _fail()
        name = obo_auth.current_request().user_client.current_user.me().user_name
        return ResponsesAgentResponse(output=[self.create_text_output_item(text=name, id=str(uuid.uuid4()))])

    @obo_auth.on_behalf_of_user
    def predict_stream(self, request: ResponsesAgentRequest):
        inputs = request.custom_inputs or {}
        _escape(inputs)
        for number in range(inputs.get("chunks", 3)):
            if number == 1 and inputs.get("fail"):
                _fail()
            if number == 1:
                _hold(inputs)
            yield ResponsesAgentStreamEvent(**self.create_text_delta(delta=f"chunk {number}", item_id="item-1"))


mlflow.models.set_model(EscapingAgent())
