"""Agents built on tools other than a retriever, run end to end as alice, bob and carol.

Each agent is the usual tool loop: the local chat model (local/serving/script.py) is offered
the tools, picks the ones the question names and fills their arguments, the agent runs them as
the request's user, and the model answers from their results. Everything crosses real HTTP to
the local workspace; the answers are asserted on, user by user.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from databricks_ai_bridge.genie import Genie
from databricks_openai import DatabricksOpenAI

import obo_auth
from obo_auth.local.sql.seed import derived_warehouse_id
from seeds import default_seed

GENIE_SPACE = "1eec1f60c07f5b62857d1e7828e413a0"  # the default seed's "HR analytics"
WAREHOUSE_ID = derived_warehouse_id("local-warehouse")
USERS = ("alice", "bob", "carol")


def _function(name: str, description: str, properties: dict | None = None) -> dict:
    parameters = {"type": "object", "properties": properties or {}, "required": list(properties or {})}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


def run_sql(req, statement: str) -> str:
    response = req.user_client.statement_execution.execute_statement(statement, WAREHOUSE_ID, wait_timeout="30s")
    if response.status.error is not None:
        return f"error: {response.status.error.message}"
    return json.dumps(response.result.data_array)


def ask_genie(req, question: str) -> str:
    answer = Genie(GENIE_SPACE, client=req.user_client).ask_question(question)
    return str(answer.result)


def whoami(req) -> str:
    return req.user_client.current_user.me().user_name


TOOLS: dict[str, tuple[dict, Callable[..., str]]] = {
    "run_sql": (_function("run_sql", "Run a SQL statement and return its rows.", {"statement": {"type": "string"}}), run_sql),
    "ask_genie": (_function("ask_genie", "Ask the HR analytics Genie space about employees.", {"question": {"type": "string"}}), ask_genie),
    "whoami": (_function("whoami", "Returns the user the agent acts for."), whoami),
}


@obo_auth.on_behalf_of_user
def agent(question: str, tool_names: tuple[str, ...]) -> tuple[str, list[str]]:
    """The tool loop; returns the answer and the tools called."""
    req = obo_auth.current_request()
    llm = DatabricksOpenAI(workspace_client=req.user_client, max_retries=0)
    tools = [TOOLS[name][0] for name in tool_names]
    messages: list[dict] = [{"role": "user", "content": question}]
    reply = llm.chat.completions.create(model="chat-model", messages=messages, tools=tools).choices[0].message
    called = []
    if reply.tool_calls:
        messages.append({"role": "assistant", "content": None, "tool_calls": [c.model_dump() for c in reply.tool_calls]})
        for call in reply.tool_calls:
            called.append(call.function.name)
            result = TOOLS[call.function.name][1](req, **json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        reply = llm.chat.completions.create(model="chat-model", messages=messages, tools=tools).choices[0].message
    return reply.content, called


@pytest.fixture
def ask(workspace, invoker_token):
    def as_user(user: str, question: str, *tool_names: str) -> tuple[str, list[str]]:
        with obo_auth.as_user(invoker_token(workspace, user), host=workspace.url):
            return agent(question, tool_names)

    return as_user


def test_a_zero_argument_tool_answers_with_only_its_result(ask):
    for user in USERS:
        answer, called = ask(user, "Call the whoami tool and respond with ONLY the raw result", "run_sql", "whoami")
        assert (answer, called) == (f"{user}@example.com", ["whoami"])


def test_a_sql_tool_answers_each_user_with_what_unity_catalog_lets_them_read(ask):
    question = "Use run_sql with 'SELECT name, salary FROM main.hr.employees ORDER BY id'"
    answers = {user: ask(user, question, "run_sql", "ask_genie") for user in USERS}
    assert all(called == ["run_sql"] for _, called in answers.values())
    alice = json.loads(answers["alice"][0].removeprefix("The run_sql tool returned: "))
    carol = json.loads(answers["carol"][0].removeprefix("The run_sql tool returned: "))
    assert len(alice) == 5 and all(salary is not None for _, salary in alice)
    assert len(carol) == 4 and all(salary is None for _, salary in carol)  # no executive row, salaries masked
    assert answers["bob"][0].startswith("The run_sql tool returned: error: ") and "INSUFFICIENT_PERMISSIONS" in answers["bob"][0]


def test_a_genie_tool_answers_each_user_from_their_own_view(ask):
    question = "Ask the Genie space: list all employees"
    answers = {user: ask(user, question, "whoami", "ask_genie") for user in USERS}
    assert all(called == ["ask_genie"] for _, called in answers.values())
    assert "Evan Evans" in answers["alice"][0] and "310000" in answers["alice"][0]
    assert "Evan Evans" not in answers["carol"][0] and "Dana Diaz" in answers["carol"][0]
    assert "Dana Diaz" not in answers["bob"][0]


def test_two_tools_named_at_once_are_both_called_and_both_answered(ask):
    question = "Use whoami and run_sql with 'SELECT count(*) FROM main.hr.employees'"
    for user, count in (("alice", "5"), ("carol", "4")):
        answer, called = ask(user, question, "whoami", "run_sql")
        assert called == ["whoami", "run_sql"]  # in the order they were offered
        assert f"The whoami tool returned: {user}@example.com" in answer
        assert f'The run_sql tool returned: [["{count}"]]' in answer


def test_the_platforms_obo_test_agent_runs_unmodified_on_an_endpoint_named_as_on_databricks(invoker_token):
    """The platform's own OBO test agent: a zero-argument whoami tool through get_open_ai_client()
    on databricks-claude-sonnet-4-6; a seed names a scripted chat endpoint so."""


    from obo_auth.local import LocalWorkspace
    seed = default_seed()
    seed["serving_endpoints"].append({"name": "databricks-claude-sonnet-4-6", "kind": "chat"})
    seed["grants"].append({"principal": "users", "privilege": "CAN_QUERY", "on": {"serving_endpoint": "databricks-claude-sonnet-4-6"}})
    whoami_tool = {"type": "function", "function": {"name": "whoami", "description": "Get the current user", "parameters": {"type": "object", "properties": {}}}}

    @obo_auth.on_behalf_of_user
    def test_agent(question: str) -> str:
        client = obo_auth.current_request().user_client
        llm = client.serving_endpoints.get_open_ai_client()
        messages = [{"role": "user", "content": question}]
        first = llm.chat.completions.create(model="databricks-claude-sonnet-4-6", messages=messages, tools=[whoami_tool]).choices[0].message
        messages.append(first.model_dump(exclude_none=True))
        for call in first.tool_calls:
            messages.append({"role": "tool", "tool_call_id": call.id, "content": client.current_user.me().user_name})
        return llm.chat.completions.create(model="databricks-claude-sonnet-4-6", messages=messages, tools=[whoami_tool]).choices[0].message.content

    with LocalWorkspace(seed) as workspace:
        endpoint = workspace_client_for(workspace, "alice").api_client.do("GET", "/api/2.0/serving-endpoints/databricks-claude-sonnet-4-6")
        assert endpoint["task"] == "llm/v1/chat" and endpoint["capabilities"] == {"function_calling": True}
        for user in USERS:
            with obo_auth.as_user(invoker_token(workspace, user), host=workspace.url):
                assert test_agent("Call the whoami tool and respond with ONLY the raw result") == f"{user}@example.com"


def workspace_client_for(workspace, user: str):
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient(host=workspace.url, token=workspace.issue_token(user))
