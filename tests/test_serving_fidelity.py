"""Serving endpoints answering as the platform does, found by running the databricks-ai-bridge
integration suites against the local workspace: capabilities and task in GET serving-endpoints,
chat completions honouring stop / max_tokens / n / response_format, the Responses API route
(the local chat model, or relayed to a served ResponsesAgent), and 1024-dimension embeddings.

Everything goes through the released clients over real HTTP: openai, DatabricksOpenAI,
ChatDatabricks, databricks-sdk (and databricks-ai-bridge's own capability probe).
"""

from __future__ import annotations

import json
import math
import operator
from functools import reduce
from importlib import resources
from pathlib import Path
from typing import Literal, Optional

import jsonschema
import openai
import pytest
import yaml
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest
from databricks_ai_bridge.test_utils.fmapi import has_function_calling
from databricks_langchain import ChatDatabricks
from databricks_openai import DatabricksOpenAI
from pydantic import BaseModel, Field

import obo_auth
from obo_auth.http_edge import ApiError
from obo_auth.local import LocalWorkspace, embedding_model
from obo_auth.local.grants import Grant
from obo_auth.local.identity.models import ALL_USERS_GROUP
from obo_auth.serving import serve

AGENTS = Path(__file__).resolve().parent / "agents"
CHAT = "chat-model"
EMBEDDING = "databricks-gte-large-en"
QUESTION = "How many vacation days do I get?"
USER = [{"role": "user", "content": QUESTION}]
# The chat model's answer when it has no tools (chat_model.respond): 21 words.
ANSWER = f"You asked: {QUESTION!r}. I have no tools to look that up, so I cannot answer from your documents."
RETRIEVER = {
    "type": "function",
    "function": {
        "name": "search_handbook",
        "description": "Search the employee handbook.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}
DOCS = [{"page_content": "Full-time employees accrue 25 vacation days per year.", "metadata": {"doc_uri": "https://handbook.example.com/vacation#1"}}]


@pytest.fixture(scope="module")
def token(workspace) -> str:
    return workspace.issue_token("alice")


@pytest.fixture(scope="module")
def alice(workspace, token) -> WorkspaceClient:
    return WorkspaceClient(host=workspace.url, token=token)


@pytest.fixture(scope="module")
def client(workspace, token) -> openai.OpenAI:
    """The plain openai client, pointed at the workspace as Databricks' docs show."""
    return openai.OpenAI(base_url=f"{workspace.url}/serving-endpoints", api_key=token, max_retries=0)


@pytest.fixture(scope="module")
def oai(alice) -> DatabricksOpenAI:
    return DatabricksOpenAI(workspace_client=alice)


def register(workspace: LocalWorkspace, name: str, url: str | None, interface: str | None) -> None:
    """Declares an agent endpoint with the interface local serving knows its agent by, in process
    (serving's own registration does not say it yet), queryable by every user as serving's is."""
    workspace.state.services["serving"].register_agent(name, url, interface)
    workspace.state.grants.add(Grant(ALL_USERS_GROUP, "CAN_QUERY", "serving_endpoint", name))


def since(workspace: LocalWorkspace, mark: int) -> list:
    return workspace.audit()[mark:]


def ask(client, stream: bool = False, **options):
    return client.chat.completions.create(model=CHAT, messages=USER, stream=stream, **options)


def streamed_choices(stream) -> dict:
    """Each choice's reassembled content and finish reason, and the usage, from a chat stream."""
    choices: dict[int, dict] = {}
    usage = None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            seen = choices.setdefault(choice.index, {"content": "", "finish_reason": None})
            seen["content"] += choice.delta.content or ""
            seen["finish_reason"] = choice.finish_reason or seen["finish_reason"]
    return {"choices": choices, "usage": usage}


# -- GET serving-endpoints: task and capabilities -------------------------------------------------------


@pytest.fixture
def with_agents():
    """A workspace of its own with an agent endpoint of each interface (local serving says which
    when it registers one; the test registers them in-process, with no agent behind them)."""
    with LocalWorkspace() as ws:
        register(ws, "responses-agent", None, "responses_agent")
        register(ws, "chat-agent", None, "chat_agent")
        register(ws, "some-agent", None, None)
        yield ws


def test_endpoints_report_their_task_and_capabilities_as_clients_read_them(with_agents):
    alice = WorkspaceClient(host=with_agents.url, token=with_agents.issue_token("alice"))
    expected = {
        CHAT: ("llm/v1/chat", True),
        EMBEDDING: ("llm/v1/embeddings", False),
        "responses-agent": ("agent/v1/responses", False),
        "chat-agent": ("agent/v2/chat", False),
        "some-agent": ("agent/v1/chat", False),  # serving did not say which interface
    }

    listed = alice.api_client.do("GET", "/api/2.0/serving-endpoints")["endpoints"]
    for name, (task, function_calling) in expected.items():
        raw = alice.api_client.do("GET", f"/api/2.0/serving-endpoints/{name}")
        assert (raw["task"], raw["capabilities"]) == (task, {"function_calling": function_calling})
        assert alice.serving_endpoints.get(name).task == task  # ServingEndpointDetailed.from_dict
        # databricks-ai-bridge's own probe, which its FMAPI suites use to pick the chat models to test.
        assert has_function_calling(alice, name) is function_calling
    assert {e["name"]: (e["task"], e["capabilities"]["function_calling"]) for e in listed} == expected
    assert {e.name: e.task for e in alice.serving_endpoints.list()} == {n: t for n, (t, _) in expected.items()}
    # An agent is a logged model, not a foundation model.
    agent = alice.serving_endpoints.get("responses-agent").config.served_entities[0]
    assert agent.name == "responses-agent" and agent.foundation_model is None
    assert alice.serving_endpoints.get(CHAT).config.served_entities[0].foundation_model.name == CHAT


def test_an_agent_is_registered_with_a_known_interface_or_none(workspace):
    with pytest.raises(ApiError, match="Field 'interface' must be one of chat_agent, responses_agent, pyfunc, got 'langgraph'."):
        workspace.state.services["serving"].register_agent("odd-agent", None, "langgraph")


# -- chat completions: stop, max_tokens, n, response_format -------------------------------------------


@pytest.mark.parametrize(
    "stop, content",
    [
        pytest.param("no tools", "You asked: 'How many vacation days do I get?'. I have ", id="string"),
        pytest.param(["cannot", "'."], "You asked: 'How many vacation days do I get?", id="list-earliest-wins"),
        pytest.param(["not in the answer"], ANSWER, id="never-met"),
    ],
)
def test_stop_ends_the_reply_before_the_first_stop_sequence(client, stop, content):
    whole = ask(client, stop=stop).choices[0]
    streamed = streamed_choices(ask(client, stream=True, stop=stop))["choices"]

    assert (whole.message.content, whole.finish_reason) == (content, "stop")
    assert streamed == {0: {"content": content, "finish_reason": "stop"}}


def test_max_tokens_cuts_the_reply_to_that_many_words(client, oai):
    cut = ask(oai, max_tokens=4)
    streamed = streamed_choices(ask(oai, stream=True, max_tokens=4))
    roomy = ask(client, max_tokens=1000).choices[0]

    assert (cut.choices[0].message.content, cut.choices[0].finish_reason) == ("You asked: 'How many", "length")
    assert cut.usage.completion_tokens == 4
    assert streamed["choices"] == {0: {"content": "You asked: 'How many", "finish_reason": "length"}}
    assert streamed["usage"] == cut.usage
    assert (roomy.message.content, roomy.finish_reason) == (ANSWER, "stop")


def test_whichever_of_stop_and_max_tokens_comes_first_ends_the_reply(client):
    stopped = ask(client, stop="do I", max_tokens=10).choices[0]  # the stop sequence is within 10 words
    cut = ask(client, stop="cannot", max_tokens=3).choices[0]  # it is not within 3

    assert (stopped.message.content, stopped.finish_reason) == ("You asked: 'How many vacation days ", "stop")
    assert (cut.message.content, cut.finish_reason) == ("You asked: 'How", "length")


def test_n_answers_with_n_choices_the_same_each_time(client, oai):
    first, again = ask(oai, n=3), ask(oai, n=3)
    streamed = streamed_choices(ask(client, stream=True, n=3, max_tokens=2))
    tools = ask(client, n=2, tools=[RETRIEVER]).choices

    assert [c.index for c in first.choices] == [0, 1, 2]
    assert [c.message.content for c in first.choices] == [ANSWER] * 3 == [c.message.content for c in again.choices]
    assert first.usage.completion_tokens == 3 * len(ANSWER.split())
    assert streamed["choices"] == {i: {"content": "You asked:", "finish_reason": "length"} for i in range(3)}
    assert [(c.index, c.finish_reason, c.message.tool_calls[0].function.name) for c in tools] == [
        (0, "tool_calls", "search_handbook"),
        (1, "tool_calls", "search_handbook"),
    ]


def test_json_object_format_answers_a_json_object(client):
    whole = ask(client, response_format={"type": "json_object"}).choices[0].message.content
    streamed = streamed_choices(ask(client, stream=True, response_format={"type": "json_object"}))["choices"][0]["content"]

    assert json.loads(whole) == {"answer": ANSWER} and streamed == whole


class Leave(BaseModel):
    kind: Literal["vacation", "sick", "parental"]
    days: int = Field(ge=20, le=30)
    paid: bool
    note: Optional[str] = None


class LeavePolicy(BaseModel):
    """What the handbook says about one kind of leave."""

    title: str = Field(max_length=12)
    leaves: list[Leave] = Field(min_length=2)
    ratio: float = Field(gt=0.5, lt=0.75)
    contact: str = Field(json_schema_extra={"format": "email"})


SCHEMAS = {
    "pydantic, with $defs, bounds and an enum": LeavePolicy.model_json_schema(),
    "types as lists, tuple items, allOf": {
        "type": "object",
        "properties": {
            "maybe": {"type": ["null", "integer"], "exclusiveMinimum": 3, "multipleOf": 5},
            "pair": {"type": "array", "prefixItems": [{"const": "a"}, {"type": "number", "maximum": -2.5}], "minItems": 2},
            "merged": {"allOf": [{"$ref": "#/$defs/named"}, {"properties": {"size": {"type": "integer", "minimum": 7}}, "required": ["size"]}]},
        },
        "required": ["maybe", "pair", "merged"],
        "additionalProperties": False,
        "$defs": {"named": {"type": "object", "properties": {"name": {"type": "string", "minLength": 200}}, "required": ["name"]}},
    },
    "anything": {},
}


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=SCHEMAS.keys())
def test_json_schema_format_answers_a_value_valid_for_the_schema(client, schema):
    response_format = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
    whole = ask(client, response_format=response_format).choices[0].message.content
    again = ask(client, response_format=response_format).choices[0].message.content
    streamed = streamed_choices(ask(client, stream=True, response_format=response_format))["choices"][0]["content"]

    jsonschema.validate(json.loads(whole), schema)
    assert whole == again == streamed


def test_chat_databricks_structured_output_and_stop_and_max_tokens(alice):
    llm = ChatDatabricks(endpoint=CHAT, workspace_client=alice)
    structured = llm.with_structured_output(LeavePolicy, method="json_schema").invoke(QUESTION)
    json_mode = llm.with_structured_output(method="json_mode").invoke(QUESTION)
    cut = ChatDatabricks(endpoint=CHAT, workspace_client=alice, max_tokens=3, stop=["How"])
    invoked = cut.invoke(QUESTION)
    streamed = reduce(operator.add, cut.stream(QUESTION))

    assert isinstance(structured, LeavePolicy) and len(structured.leaves) == 2 and structured.contact == "user@example.com"
    assert json_mode == {"answer": ANSWER}
    assert invoked.content == streamed.content == "You asked: '"
    assert invoked.response_metadata["finish_reason"] == "stop"


# A node whose `next` is another node: no finite value has every property.
LINKED_LIST = {"$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}}, "$ref": "#/$defs/node"}
BAD_CHAT_REQUESTS = {
    "n below 1": ({"n": 0}, "Field 'n' must be between 1 and 16, got 0."),
    "n over the cap": ({"n": 17}, "Field 'n' must be between 1 and 16, got 17."),
    "max_tokens below 1": ({"max_tokens": 0}, "Field 'max_tokens' must be at least 1, got 0."),
    "max_tokens not a number": ({"max_tokens": "ten"}, "Field 'max_tokens' must be an integer, got a string."),
    "too many stop sequences": ({"stop": ["a", "b", "c", "d", "e"]}, "Field 'stop' must be a string or an array of at most 4 non-empty strings."),
    "an empty stop sequence": ({"stop": [""]}, "Field 'stop' must be a string or an array of at most 4 non-empty strings."),
    "a stop number": ({"stop": 7}, "Field 'stop' must be a string or an array of at most 4 non-empty strings."),
    "unknown format type": (
        {"response_format": {"type": "xml"}},
        "Field 'response_format' must be an object whose 'type' is 'text', 'json_object' or 'json_schema', got 'xml'.",
    ),
    "format not an object": (
        {"response_format": "json"},
        "Field 'response_format' must be an object whose 'type' is 'text', 'json_object' or 'json_schema', got a str.",
    ),
    "schema not an object": (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": "an object"}}},
        "Field 'response_format' has a JSON schema that is not an object.",
    ),
    "schema nothing satisfies": (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "integer", "minimum": 3, "maximum": 2}}}},
        "The 'response_format' JSON schema bounds an integer so that no value fits: {'minimum': 3, 'maximum': 2}.",
    ),
    "schema with a remote $ref": (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "https://example.com/s.json"}}}},
        "The 'response_format' JSON schema has a $ref other than '#/...' within the schema: 'https://example.com/s.json'.",
    ),
    "recursive schema": (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": LINKED_LIST}}},
        "The 'response_format' JSON schema describes a value too large or too deep (over 32 levels; a recursive $ref?).",
    ),
}


@pytest.mark.parametrize("options, message", BAD_CHAT_REQUESTS.values(), ids=BAD_CHAT_REQUESTS.keys())
def test_bad_options_are_one_clear_400(workspace, client, token, options, message):
    mark = len(workspace.audit())
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=CHAT, messages=USER, extra_body=options)
    assert refused.value.body["message"] == message and token not in message
    assert [(r.status, r.path) for r in since(workspace, mark)] == [(400, "/serving-endpoints/chat/completions")]


# -- POST /serving-endpoints/responses: the local chat model ------------------------------------------


def test_responses_answers_as_the_chat_model_does(workspace, client, oai):
    mark = len(workspace.audit())
    response = client.responses.create(model=CHAT, input=QUESTION, instructions="Answer from the handbook.")
    items = oai.responses.create(model=CHAT, input=[{"type": "message", "role": "user", "content": [{"type": "input_text", "text": QUESTION}]}])

    assert response.object == "response" and response.status == "completed" and response.model == CHAT
    assert response.output_text == items.output_text == ANSWER
    (message,) = response.output
    assert (message.type, message.role, message.content[0].type) == ("message", "assistant", "output_text")
    assert response.usage.output_tokens == len(ANSWER.split())
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert [(r.principal, r.path, r.resource, r.status) for r in since(workspace, mark)] == [
        ("alice@example.com", "/serving-endpoints/responses", f"serving_endpoint:{CHAT}", 200)
    ] * 2


def test_responses_calls_a_function_tool_and_answers_from_its_output(oai):
    tool = {"type": "function", "name": "search_handbook", "description": "Search the employee handbook.", "parameters": RETRIEVER["function"]["parameters"]}
    first = oai.responses.create(model=CHAT, input=QUESTION, tools=[tool])
    (call,) = first.output
    second = oai.responses.create(
        model=CHAT,
        input=[
            {"role": "user", "content": QUESTION},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": json.dumps(DOCS)},
        ],
        tools=[tool],
    )
    forced = oai.responses.create(model=CHAT, input=QUESTION, tools=[tool], tool_choice={"type": "function", "name": "search_handbook"})

    assert (call.type, call.name, json.loads(call.arguments)) == ("function_call", "search_handbook", {"query": QUESTION})
    assert call.call_id.startswith("call_") and first.output_text == ""
    assert second.output_text == DOCS[0]["page_content"] + "\n\nSources: " + DOCS[0]["metadata"]["doc_uri"]
    assert forced.output[0].name == "search_handbook"


def test_responses_stream_events_build_the_whole_response(client):
    tool = {"type": "function", "name": "search_handbook", "parameters": RETRIEVER["function"]["parameters"]}
    whole = client.responses.create(model=CHAT, input=QUESTION)
    events = list(client.responses.create(model=CHAT, input=QUESTION, stream=True))
    with client.responses.stream(model=CHAT, input=QUESTION) as stream:  # the client's own accumulator
        text = stream.get_final_response()
    with client.responses.stream(model=CHAT, input=QUESTION, tools=[tool]) as stream:
        called = stream.get_final_response()

    types = [e.type for e in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 4 and "".join(deltas) == whole.output_text == text.output_text
    assert events[-1].response.usage == whole.usage
    assert (called.output[0].type, called.output[0].name) == ("function_call", "search_handbook")


def test_responses_max_output_tokens_and_text_format(client):
    cut = client.responses.create(model=CHAT, input=QUESTION, max_output_tokens=5)
    parsed = client.responses.parse(model=CHAT, input=QUESTION, text_format=LeavePolicy)  # sends text.format json_schema
    json_object = client.responses.create(model=CHAT, input=QUESTION, text={"format": {"type": "json_object"}})
    incomplete = list(client.responses.create(model=CHAT, input=QUESTION, max_output_tokens=5, stream=True))[-1]

    assert (cut.status, cut.incomplete_details.reason, cut.output_text) == ("incomplete", "max_output_tokens", "You asked: 'How many vacation")
    assert isinstance(parsed.output_parsed, LeavePolicy)
    assert json.loads(json_object.output_text) == {"answer": ANSWER}
    assert incomplete.type == "response.incomplete" and incomplete.response.output[0].content[0].text == cut.output_text


def test_chat_databricks_on_the_responses_api(alice):
    llm = ChatDatabricks(endpoint=CHAT, workspace_client=alice, use_responses_api=True)
    invoked = llm.invoke(QUESTION)
    streamed = reduce(operator.add, llm.stream(QUESTION))
    called = llm.bind_tools([RETRIEVER]).invoke(QUESTION)

    assert invoked.text == streamed.text == ANSWER
    assert [(c["name"], c["args"]) for c in called.tool_calls] == [("search_handbook", {"query": QUESTION})]


BAD_RESPONSES_REQUESTS = {
    "an embedding endpoint": ({"model": EMBEDDING, "input": "x"}, f"Serving endpoint '{EMBEDDING}' serves llm/v1/embeddings, not responses."),
    "no input": ({"model": CHAT}, "Missing required field 'input'."),
    "previous_response_id": (
        {"model": CHAT, "input": "x", "previous_response_id": "resp_1"},
        f"Serving endpoint '{CHAT}' keeps no responses: send the whole conversation in 'input', not 'previous_response_id'.",
    ),
    "a hosted tool": (
        {"model": CHAT, "input": "x", "tools": [{"type": "web_search"}]},
        "Field 'tools' must hold function tools {'type': 'function', 'name': ..., 'parameters': ...}; no other kind is served.",
    ),
    "an unknown input item": (
        {"model": CHAT, "input": [{"type": "image_generation_call", "id": "x"}]},
        "Field 'input' must be a string or an array of messages ({'role': ..., 'content': ...}), "
        "function_call and function_call_output items; got an item of type 'image_generation_call'.",
    ),
    "max_output_tokens below 1": ({"model": CHAT, "input": "x", "max_output_tokens": 0}, "Field 'max_output_tokens' must be at least 1, got 0."),
    "unknown text format": (
        {"model": CHAT, "input": "x", "text": {"format": {"type": "yaml"}}},
        "Field 'text.format' must be an object whose 'type' is 'text', 'json_object' or 'json_schema', got 'yaml'.",
    ),
}


@pytest.mark.parametrize("body, message", BAD_RESPONSES_REQUESTS.values(), ids=BAD_RESPONSES_REQUESTS.keys())
def test_bad_responses_requests_are_one_clear_400(workspace, alice, body, message):
    mark = len(workspace.audit())
    with pytest.raises(BadRequest) as refused:
        alice.api_client.do("POST", "/serving-endpoints/responses", body=body)
    assert str(refused.value) == message
    assert [r.status for r in since(workspace, mark)] == [400]


@pytest.fixture(scope="module")
def only_alice():
    """A workspace where only alice may query chat-model (the default seed lets everyone)."""
    seed = yaml.safe_load(resources.files("obo_auth.local").joinpath("default_seed.yaml").read_text(encoding="utf-8"))
    seed["grants"] = [g for g in seed["grants"] if g["on"] != {"serving_endpoint": CHAT}]
    seed["grants"].append({"principal": "alice@example.com", "privilege": "CAN_QUERY", "on": {"serving_endpoint": CHAT}})
    with LocalWorkspace(seed) as ws:
        yield ws


def test_responses_needs_can_query_like_every_serving_route(only_alice):
    bob = DatabricksOpenAI(workspace_client=WorkspaceClient(host=only_alice.url, token=only_alice.issue_token("bob")))
    alice = DatabricksOpenAI(workspace_client=WorkspaceClient(host=only_alice.url, token=only_alice.issue_token("alice")))
    mark = len(only_alice.audit())

    with pytest.raises(openai.PermissionDeniedError, match="CAN_QUERY"):
        bob.responses.create(model=CHAT, input=QUESTION)
    assert alice.responses.create(model=CHAT, input=QUESTION).output_text == ANSWER
    assert [(r.principal, r.status, r.decision, r.resource) for r in since(only_alice, mark)] == [
        ("bob@example.com", 403, "deny", f"serving_endpoint:{CHAT}"),
        ("alice@example.com", 200, "allow", f"serving_endpoint:{CHAT}"),
    ]


# -- POST /serving-endpoints/responses: an agent, relayed to local serving ---------------------------


@pytest.fixture(scope="module")
def responses_agent(workspace, tmp_path_factory, own_mlflow_store, logging_as_alice):
    """The escaping agent (a ResponsesAgent, tests/agents/escaping_agent.py) served as 'escaping':
    it answers with the name of the user it acts for, and streams "chunk 0", "chunk 1", ..."""
    with own_mlflow_store(tmp_path_factory.mktemp("fidelity-store"), "fidelity"):
        with logging_as_alice(workspace):
            info = obo_auth.log_model(
                str(AGENTS / "escaping_agent.py"), resources=[obo_auth.ServingEndpoint(CHAT)], name="escaping_agent", pip_requirements=["mlflow"]
            )
        with serve(info.model_uri, workspace, "escaping") as endpoint:
            yield endpoint


def test_responses_of_an_agent_are_relayed_to_it_as_the_caller(workspace, responses_agent):
    answers = {}
    for user in ("alice", "bob"):
        mark = len(workspace.audit())
        client = DatabricksOpenAI(workspace_client=WorkspaceClient(host=workspace.url, token=workspace.issue_token(user)))
        answers[user] = client.responses.create(model="escaping", input="who am i", instructions="Answer briefly.").output_text
        (record,) = [r for r in since(workspace, mark) if r.path == "/serving-endpoints/responses"]
        assert (record.principal, record.resource, record.status) == (f"{user}@example.com", "serving_endpoint:escaping", 200)
        assert f"relayed to the agent at {responses_agent.url}" in record.reason
    assert answers == {"alice": "alice@example.com", "bob": "bob@example.com"}


def test_a_streamed_agent_response_is_relayed_event_by_event(workspace, responses_agent, client):
    stream = client.responses.create(model="escaping", input=[{"role": "user", "content": "hi"}], stream=True, extra_body={"custom_inputs": {"chunks": 4}})
    events = list(stream)
    carol = WorkspaceClient(host=workspace.url, token=workspace.issue_token("carol"))
    llm = ChatDatabricks(endpoint="escaping", workspace_client=carol, use_responses_api=True)

    assert [(e.type, e.delta) for e in events] == [("response.output_text.delta", f"chunk {i}") for i in range(4)]
    assert llm.invoke("who am i").text == "carol@example.com"


def test_a_chat_agent_is_told_to_use_its_invocations(workspace, client):
    register(workspace, "chat-agent", "http://127.0.0.1:9", "chat_agent")
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="chat-agent", input=QUESTION)
    assert refused.value.body["message"] == (
        "Serving endpoint 'chat-agent' serves a ChatAgent (agent/v2/chat), which takes chat messages: "
        "query it at /serving-endpoints/chat-agent/invocations with 'messages', not with the Responses API."
    )


def test_an_agent_nothing_serves_is_a_503_on_responses_too(workspace, client):
    register(workspace, "unserved", None, "responses_agent")
    with pytest.raises(openai.InternalServerError) as unavailable:
        client.responses.create(model="unserved", input=QUESTION)
    assert unavailable.value.status_code == 503 and "'unserved' is an agent that nothing serves" in unavailable.value.body["message"]


# -- embeddings: the local embedding model ------------------------------------------------------------


def test_embeddings_are_the_local_embedding_model(alice, client):
    texts = ["vacation days", "vacation day", "quarterly revenue"]
    via_openai = [d.embedding for d in client.embeddings.create(model=EMBEDDING, input=texts).data]
    via_sdk = [d.embedding for d in alice.serving_endpoints.query(EMBEDDING, input=texts).data]
    via_route = [d.embedding for d in DatabricksOpenAI(workspace_client=alice).embeddings.create(model=EMBEDDING, input=texts[0]).data]

    assert via_openai == via_sdk == [embedding_model.embed(t) for t in texts] and via_route == via_openai[:1]
    assert all(len(v) == embedding_model.DIMENSION == 1024 and math.isclose(sum(x * x for x in v), 1.0, abs_tol=1e-6) for v in via_openai)
    cosine = [sum(a * b for a, b in zip(via_openai[0], other)) for other in via_openai[1:]]
    assert cosine[0] > cosine[1]  # texts sharing words land nearer each other
