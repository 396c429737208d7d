"""The handbook agent as a Databricks App: mlflow's agent server in front of the same
ResponsesAgent, each request run as the user the Apps proxy forwarded.

- ``obo_auth.OboAppMiddleware`` opens each request from the ``x-forwarded-access-token``
  header and answers 401 without it: never the App's own service principal;
- the agent code is the Model Serving one, unchanged: ``@on_behalf_of_user`` joins the
  request the middleware opened, and ``req.user_client`` / ``req.system_client`` are the App
  user and the App's service principal;
- ``databricks.yml`` beside this file holds ``obo_auth.app_config(*RESOURCES).bundle()``: the
  App's user_api_scopes from the same declarations the model is logged with.

Locally: ``obo-auth serve-app app:app --name handbook-app`` (from this directory), then
``DatabricksOpenAI().responses.create(model="apps/handbook-app", input=[...])`` as a user.
On Databricks: ``databricks bundle deploy`` with ``app.yaml``'s command.
"""

from __future__ import annotations

from handbook_logic import RESOURCES
from mlflow.genai.agent_server import AgentServer, invoke, stream
from responses_agent import HandbookResponsesAgent

import obo_auth

APP_CONFIG = obo_auth.app_config(*RESOURCES)  # what databricks.yml must say (tests/test_apps.py checks it does)

agent = HandbookResponsesAgent()
invoke()(agent.predict)
stream()(agent.predict_stream)

server = AgentServer("ResponsesAgent")
app = server.app
app.add_middleware(obo_auth.OboAppMiddleware, public_paths={"/health"})

if __name__ == "__main__":
    server.run("app:app")
