"""Serving endpoints of the local workspace, driven by the released clients over real HTTP.

databricks-sdk (list/get/query), DatabricksOpenAI (chat completions, streaming, embeddings) and
ChatDatabricks (invoke, stream, bind_tools) talk to ``chat-model`` and ``databricks-gte-large-en``
exactly as they would to a Databricks workspace: nothing is mocked. Each test also reads the
audit log, so a call that "worked" but was attributed to the wrong user fails.
"""

from __future__ import annotations

import json
import logging
import math
import operator
from functools import reduce
from importlib import resources

import openai
import pytest
import yaml
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, PermissionDenied, Unauthenticated
from databricks.sdk.service.serving import ChatMessage, ChatMessageRole, EndpointStateReady
from databricks_langchain import ChatDatabricks
from databricks_openai import DatabricksOpenAI
from langchain_core.documents import Document
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool

from obo_auth.local import LocalWorkspace

CHAT = "chat-model"
EMBEDDING = "databricks-gte-large-en"
QUESTION = "How many vacation days do I get?"
CHAT_PATH = "/serving-endpoints/chat/completions"

# An unrelated tool first: the model must pick the retrieval tool, not just the first one.
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
RETRIEVER_TOOL = {
    "type": "function",
    "function": {
        "name": "search_handbook",
        "description": "Search the employee handbook for passages relevant to the query.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}
# What databricks_openai's VectorSearchRetrieverTool returns ([{page_content, metadata}]); an agent
# sends it back JSON-encoded. Curly quotes and an apostrophe: JSON escapes the former.
DOCS = [
    {
        "page_content": "Full-time employees accrue 25 vacation days per year (\u201ccredited monthly\u201d).",
        "metadata": {"doc_uri": "https://handbook.example.com/vacation-policy#1", "chunk_id": "1"},
    },
    {
        "page_content": "Vacation requests need your manager's approval.",
        "metadata": {"doc_uri": "https://handbook.example.com/vacation-policy#2", "chunk_id": "2"},
    },
]
DOC_URIS = [d["metadata"]["doc_uri"] for d in DOCS]


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return "sunny"


@tool
def search_handbook(query: str) -> str:
    """Search the employee handbook for passages relevant to the query."""
    return ""


def since(workspace: LocalWorkspace, mark: int) -> list:
    """Audit records written after ``mark`` (a length of ``workspace.audit()``)."""
    return workspace.audit()[mark:]


@pytest.fixture(scope="module")
def alice(workspace) -> WorkspaceClient:
    return WorkspaceClient(host=workspace.url, token=workspace.issue_token("alice"))


@pytest.fixture(scope="module")
def oai(alice) -> DatabricksOpenAI:
    return DatabricksOpenAI(workspace_client=alice)


# -- databricks-sdk ---------------------------------------------------------------------------


def test_sdk_lists_and_gets_the_seeded_endpoints(workspace, alice):
    mark = len(workspace.audit())
    listed = {e.name: e for e in alice.serving_endpoints.list()}
    chat = alice.serving_endpoints.get(CHAT)

    assert {n: e.task for n, e in listed.items()} == {CHAT: "llm/v1/chat", EMBEDDING: "llm/v1/embeddings"}
    assert chat.name == CHAT and chat.task == "llm/v1/chat" and chat.id
    assert chat.state.ready == EndpointStateReady.READY
    records = since(workspace, mark)
    assert [(r.principal, r.method, r.path, r.resource, r.decision) for r in records] == [
        ("alice@example.com", "GET", "/api/2.0/serving-endpoints", None, "allow"),
        ("alice@example.com", "GET", f"/api/2.0/serving-endpoints/{CHAT}", f"serving_endpoint:{CHAT}", "allow"),
    ]
    assert "through group users" in records[1].reason


def test_sdk_query_sends_chat_messages_to_the_invocations_route(workspace, alice):
    mark = len(workspace.audit())
    response = alice.serving_endpoints.query(
        CHAT,
        messages=[
            ChatMessage(role=ChatMessageRole.SYSTEM, content="You answer from the handbook."),
            ChatMessage(role=ChatMessageRole.USER, content=QUESTION),
        ],
    )

    answer = response.choices[0].message
    assert answer.role == ChatMessageRole.ASSISTANT
    assert QUESTION in answer.content and "no tools" in answer.content
    assert response.served_model_name == CHAT and response.model == CHAT
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens > 0
    (record,) = since(workspace, mark)
    assert (record.principal, record.method, record.path, record.status) == (
        "alice@example.com",
        "POST",
        f"/serving-endpoints/{CHAT}/invocations",
        200,
    )
    assert record.resource == f"serving_endpoint:{CHAT}"


def test_sdk_query_embeds_each_input(workspace, alice):
    mark = len(workspace.audit())
    first = alice.serving_endpoints.query(EMBEDDING, input=["vacation days", "sick leave"])
    again = alice.serving_endpoints.query(EMBEDDING, input=["vacation days"])

    assert [d.index for d in first.data] == [0, 1]
    vectors = [d.embedding for d in first.data]
    assert all(len(v) == 1024 and math.isclose(sum(x * x for x in v), 1.0, abs_tol=1e-4) for v in vectors)
    assert vectors[0] != vectors[1] and again.data[0].embedding == vectors[0]  # deterministic per text
    assert first.served_model_name == EMBEDDING
    assert [(r.principal, r.path) for r in since(workspace, mark)] == [
        ("alice@example.com", f"/serving-endpoints/{EMBEDDING}/invocations")
    ] * 2


# -- DatabricksOpenAI ------------------------------------------------------------------------------


def test_openai_calls_the_offered_retrieval_tool_with_the_question(workspace, oai):
    mark = len(workspace.audit())
    completion = oai.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": QUESTION}], tools=[WEATHER_TOOL, RETRIEVER_TOOL]
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id
    assert call.function.name == "search_handbook"
    assert json.loads(call.function.arguments) == {"query": QUESTION}
    assert [(r.principal, r.path, r.resource) for r in since(workspace, mark)] == [
        ("alice@example.com", CHAT_PATH, f"serving_endpoint:{CHAT}")
    ]


def test_openai_answers_from_tool_results_and_cites_their_doc_uris(oai):
    messages = [{"role": "user", "content": QUESTION}]
    first = oai.chat.completions.create(model=CHAT, messages=messages, tools=[RETRIEVER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call.id, "type": "function", "function": {"name": call.function.name, "arguments": call.function.arguments}}],
        },
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps(DOCS)},
    ]

    answer = oai.chat.completions.create(model=CHAT, messages=messages, tools=[RETRIEVER_TOOL]).choices[0]

    assert answer.finish_reason == "stop" and not answer.message.tool_calls
    # The first passage verbatim (JSON escapes undone), then every source in order.
    assert answer.message.content == DOCS[0]["page_content"] + "\n\nSources: " + ", ".join(DOC_URIS)


def test_openai_tool_results_without_doc_uris_give_no_made_up_sources(oai):
    messages = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "search_handbook", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "[]"},
    ]
    content = oai.chat.completions.create(model=CHAT, messages=messages).choices[0].message.content
    assert "found nothing" in content and "Sources" not in content


def test_openai_without_tools_answers_briefly(oai):
    completion = oai.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": QUESTION}])

    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    assert QUESTION in choice.message.content and "no tools" in choice.message.content


def _reassemble(stream) -> dict:
    """What a streaming consumer ends up with: content, tool calls, finish reason, usage, chunk count."""
    out = {"content": "", "tool_calls": {}, "finish_reason": None, "usage": None, "chunks": 0}
    for chunk in stream:
        out["chunks"] += 1
        out["usage"] = chunk.usage or out["usage"]
        for choice in chunk.choices:
            out["content"] += choice.delta.content or ""
            out["finish_reason"] = choice.finish_reason or out["finish_reason"]
            for delta in choice.delta.tool_calls or []:
                call = out["tool_calls"].setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""
    out["tool_calls"] = [out["tool_calls"][i] for i in sorted(out["tool_calls"])]
    return out


@pytest.mark.parametrize(
    "messages, tools",
    [
        pytest.param([{"role": "user", "content": QUESTION}], [WEATHER_TOOL, RETRIEVER_TOOL], id="tool-call"),
        pytest.param([{"role": "user", "content": QUESTION}], None, id="no-tools"),
        pytest.param(
            [
                {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "search_handbook", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": json.dumps(DOCS)},
            ],
            [RETRIEVER_TOOL],
            id="answer-from-tool-results",
        ),
    ],
)
def test_openai_stream_reassembles_to_the_non_streamed_reply(workspace, oai, messages, tools):
    extra = {"tools": tools} if tools else {}
    whole = oai.chat.completions.create(model=CHAT, messages=messages, **extra)
    mark = len(workspace.audit())

    streamed = _reassemble(oai.chat.completions.create(model=CHAT, messages=messages, stream=True, **extra))

    message = whole.choices[0].message
    expected_calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in message.tool_calls or []]
    assert streamed["content"] == (message.content or "")
    assert streamed["tool_calls"] == expected_calls
    assert bool(expected_calls) == (tools is not None and len(messages) == 1)  # the case says which reply it is
    assert streamed["finish_reason"] == whole.choices[0].finish_reason
    assert streamed["usage"] == whole.usage
    if message.content:
        assert streamed["chunks"] > 4  # really streamed in pieces, not one blob
    (record,) = since(workspace, mark)
    assert (record.principal, record.path, record.status) == ("alice@example.com", CHAT_PATH, 200)


def test_openai_embeddings_route_matches_the_sdk_query(alice, oai):
    via_openai = oai.embeddings.create(model=EMBEDDING, input=["vacation days", "sick leave"])
    via_sdk = alice.serving_endpoints.query(EMBEDDING, input=["vacation days", "sick leave"])

    assert [d.embedding for d in via_openai.data] == [d.embedding for d in via_sdk.data]
    assert via_openai.model == EMBEDDING and [d.index for d in via_openai.data] == [0, 1]


def test_requests_the_endpoints_cannot_serve_are_400s_that_say_why(oai):
    user = [{"role": "user", "content": QUESTION}]
    with pytest.raises(openai.BadRequestError, match="llm/v1/chat, not embeddings"):
        oai.embeddings.create(model=CHAT, input=["x"])
    with pytest.raises(openai.BadRequestError, match="llm/v1/embeddings, not chat completions"):
        oai.chat.completions.create(model=EMBEDDING, messages=user)
    # Answering with fewer choices than asked for, or calling a tool other than the one forced, would be silently wrong.
    with pytest.raises(openai.BadRequestError, match="'n' must be between 1 and 16, got 17"):
        oai.chat.completions.create(model=CHAT, messages=user, n=17)
    with pytest.raises(openai.BadRequestError, match="'lookup_salary', which is not among the offered tools: search_handbook"):
        oai.chat.completions.create(
            model=CHAT, messages=user, tools=[RETRIEVER_TOOL], tool_choice={"type": "function", "function": {"name": "lookup_salary"}}
        )


def test_odd_tool_schemas_get_a_tool_call_or_a_400_never_a_500(workspace, oai):
    user = [{"role": "user", "content": QUESTION}]
    mark = len(workspace.audit())
    odd = {"type": "function", "function": {"name": "search", "parameters": {"properties": "not an object", "required": [["x"]]}}}
    completion = oai.chat.completions.create(model=CHAT, messages=user, tools=[odd])
    assert json.loads(completion.choices[0].message.tool_calls[0].function.arguments) == {"query": QUESTION}
    with pytest.raises(openai.BadRequestError, match="'tools'"):
        oai.chat.completions.create(model=CHAT, messages=user, tools=[{"type": "function", "function": {"name": 7}}])
    with pytest.raises(openai.BadRequestError, match="'tool_choice'"):
        oai.chat.completions.create(model=CHAT, messages=user, tools=[RETRIEVER_TOOL], tool_choice={"type": "function", "function": "search"})
    # A 500 would also have been retried by the openai client: one record per call means none was.
    assert [r.status for r in since(workspace, mark)] == [200, 400, 400]


# -- ChatDatabricks --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llm(alice) -> ChatDatabricks:
    return ChatDatabricks(endpoint=CHAT, workspace_client=alice)


def test_chat_databricks_invoke_and_stream_agree(workspace, llm):
    mark = len(workspace.audit())
    invoked = llm.invoke(QUESTION)
    chunks = list(llm.stream(QUESTION))

    assert QUESTION in invoked.content and "no tools" in invoked.content
    assert invoked.response_metadata["finish_reason"] == "stop"
    streamed = reduce(operator.add, chunks)
    assert len(chunks) > 4 and streamed.content == invoked.content
    # The usage chunk at the end of the stream: ChatDatabricks reports it like invoke does.
    assert streamed.usage_metadata == invoked.usage_metadata and invoked.usage_metadata["total_tokens"] > 0
    assert [(r.principal, r.method, r.path) for r in since(workspace, mark)] == [("alice@example.com", "POST", CHAT_PATH)] * 2


def test_chat_databricks_bound_tools_produce_tool_calls(llm):
    bound = llm.bind_tools([get_weather, search_handbook])

    invoked = bound.invoke(QUESTION)
    streamed = reduce(operator.add, bound.stream(QUESTION))

    assert [(c["name"], c["args"]) for c in invoked.tool_calls] == [("search_handbook", {"query": QUESTION})]
    assert invoked.response_metadata["finish_reason"] == "tool_calls"
    assert [(c["name"], c["args"], c["id"]) for c in streamed.tool_calls] == [
        (c["name"], c["args"], c["id"]) for c in invoked.tool_calls
    ]


def test_chat_databricks_tool_choice_is_honoured(llm):
    forced = llm.bind_tools([get_weather, search_handbook], tool_choice="get_weather").invoke(QUESTION)
    declined = llm.bind_tools([get_weather, search_handbook], tool_choice="none").invoke(QUESTION)

    assert [(c["name"], c["args"]) for c in forced.tool_calls] == [("get_weather", {"city": QUESTION})]
    assert declined.tool_calls == [] and "no tools" in declined.content


def test_chat_databricks_answers_from_langchain_retriever_output(llm):
    # databricks_langchain's retriever tool returns str([Document, ...]): a Python repr, not JSON.
    bound = llm.bind_tools([search_handbook])
    asked = bound.invoke(QUESTION)
    documents = [Document(page_content=d["page_content"], metadata=d["metadata"]) for d in DOCS]
    history = [HumanMessage(QUESTION), asked, ToolMessage(str(documents), tool_call_id=asked.tool_calls[0]["id"])]

    answer = bound.invoke(history)

    assert answer.tool_calls == []
    assert answer.content == DOCS[0]["page_content"] + "\n\nSources: " + ", ".join(DOC_URIS)


# -- denials ---------------------------------------------------------------------------------------


def _seed_where_only_alice_may_query_chat() -> dict:
    text = resources.files("obo_auth.local").joinpath("default_seed.yaml").read_text(encoding="utf-8")
    seed = yaml.safe_load(text)
    everyone = {"principal": "users", "privilege": "CAN_QUERY", "on": {"serving_endpoint": CHAT}}
    assert everyone in seed["grants"]  # else this test would not remove what it means to
    seed["grants"].remove(everyone)
    seed["grants"].append({"principal": "alice@example.com", "privilege": "CAN_QUERY", "on": {"serving_endpoint": CHAT}})
    return seed


@pytest.fixture(scope="module")
def restricted():
    with LocalWorkspace(_seed_where_only_alice_may_query_chat()) as ws:
        yield ws


def test_without_can_query_bob_is_denied_by_name_and_privilege(restricted, caplog):
    caplog.set_level(logging.DEBUG)
    bob_token, alice_token = restricted.issue_token("bob"), restricted.issue_token("alice")
    bob = WorkspaceClient(host=restricted.url, token=bob_token)
    alice = WorkspaceClient(host=restricted.url, token=alice_token)
    mark = len(restricted.audit())

    with pytest.raises(PermissionDenied) as sdk_denied:
        bob.serving_endpoints.query(CHAT, messages=[ChatMessage(role=ChatMessageRole.USER, content=QUESTION)])
    with pytest.raises(openai.PermissionDeniedError) as openai_denied:
        DatabricksOpenAI(workspace_client=bob).chat.completions.create(model=CHAT, messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.PermissionDeniedError):
        ChatDatabricks(endpoint=CHAT, workspace_client=bob).invoke(QUESTION)
    with pytest.raises(PermissionDenied):
        bob.serving_endpoints.get(CHAT)

    for error in (sdk_denied.value, openai_denied.value):
        assert f"'{CHAT}'" in str(error) and "CAN_QUERY" in str(error) and "bob@example.com" in str(error)
    assert sdk_denied.value.error_code == "PERMISSION_DENIED" and openai_denied.value.status_code == 403
    # bob still sees and queries what everyone may; alice, granted by name, queries chat-model.
    assert [e.name for e in bob.serving_endpoints.list()] == [EMBEDDING]
    assert bob.serving_endpoints.query(EMBEDDING, input=["x"]).data
    assert alice.serving_endpoints.query(CHAT, messages=[ChatMessage(role=ChatMessageRole.USER, content=QUESTION)]).choices

    records = since(restricted, mark)
    denied = [r for r in records if r.decision == "deny"]
    assert [(r.principal, r.status, r.resource) for r in denied] == [("bob@example.com", 403, f"serving_endpoint:{CHAT}")] * 4
    assert all("does not have CAN_QUERY" in r.reason for r in denied)
    # alice was allowed by her own grant, not through the group grant this seed removed.
    assert records[-1].principal == "alice@example.com" and records[-1].decision == "allow"
    assert "alice@example.com has CAN_QUERY" in records[-1].reason and "through group" not in records[-1].reason
    for token in (bob_token, alice_token):
        assert token not in str(sdk_denied.value) + str(openai_denied.value) + caplog.text
        assert all(token not in json.dumps(r.to_dict()) for r in records)


def test_token_without_the_serving_scope_gets_invalid_scope(workspace):
    token = workspace.issue_token("alice", scopes=["vectorsearch.vector-search-indexes"], actor="obo-agent")
    w = WorkspaceClient(host=workspace.url, token=token)
    mark = len(workspace.audit())

    with pytest.raises(PermissionDenied, match="Invalid scope") as sdk_denied:
        w.serving_endpoints.query(CHAT, messages=[ChatMessage(role=ChatMessageRole.USER, content=QUESTION)])
    with pytest.raises(openai.PermissionDeniedError, match="Invalid scope") as openai_denied:
        DatabricksOpenAI(workspace_client=w).chat.completions.create(model=CHAT, messages=[{"role": "user", "content": QUESTION}])

    for error in (sdk_denied.value, openai_denied.value):
        assert "serving.serving-endpoints" in str(error) and token not in str(error)
    records = since(workspace, mark)
    assert [(r.principal, r.actor, r.status, r.decision) for r in records] == [("alice@example.com", "obo-agent", 403, "deny")] * 2
    assert all(r.reason.startswith("Invalid scope") and r.scopes == ("vectorsearch.vector-search-indexes",) for r in records)


@pytest.mark.parametrize("scope", ["serving.serving-endpoints", "model-serving"])
def test_token_with_the_serving_scope_may_query(workspace, scope):
    # The other side of the scope check: it denies for the missing scope, not for any downscoping.
    w = WorkspaceClient(host=workspace.url, token=workspace.issue_token("alice", scopes=[scope]))
    completion = DatabricksOpenAI(workspace_client=w).chat.completions.create(model=CHAT, messages=[{"role": "user", "content": QUESTION}])
    assert completion.choices[0].message.content


def test_unknown_endpoint_is_not_found(workspace, alice, oai):
    mark = len(workspace.audit())

    with pytest.raises(NotFound, match="'no-such-model' does not exist"):
        alice.serving_endpoints.get("no-such-model")
    with pytest.raises(NotFound, match="'no-such-model' does not exist"):
        alice.serving_endpoints.query("no-such-model", messages=[ChatMessage(role=ChatMessageRole.USER, content=QUESTION)])
    with pytest.raises(openai.NotFoundError, match="'no-such-model' does not exist"):
        oai.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": QUESTION}])

    assert [(r.principal, r.status, r.resource) for r in since(workspace, mark)] == [
        ("alice@example.com", 404, "serving_endpoint:no-such-model")
    ] * 3


def test_revoked_token_is_unauthenticated(workspace):
    token = workspace.issue_token("carol")
    w = WorkspaceClient(host=workspace.url, token=token)
    assert w.serving_endpoints.get(CHAT).name == CHAT  # works until revoked
    workspace.revoke(token)
    mark = len(workspace.audit())

    with pytest.raises(Unauthenticated, match="revoked") as sdk_error:
        w.serving_endpoints.query(CHAT, messages=[ChatMessage(role=ChatMessageRole.USER, content=QUESTION)])
    with pytest.raises(openai.AuthenticationError, match="revoked") as openai_error:
        DatabricksOpenAI(workspace_client=w).chat.completions.create(model=CHAT, messages=[{"role": "user", "content": QUESTION}])

    assert token not in str(sdk_error.value) + str(openai_error.value)
    # Denied, yet still attributed to whose token it was.
    assert [(r.principal, r.status, r.decision) for r in since(workspace, mark)] == [("carol@example.com", 401, "deny")] * 2


# -- audit -----------------------------------------------------------------------------------------


def test_audit_attributes_interleaved_calls_to_their_users(workspace, alice, oai):
    carol = WorkspaceClient(host=workspace.url, token=workspace.issue_token("carol"))
    carol_oai = DatabricksOpenAI(workspace_client=carol)
    mark = len(workspace.audit())

    alice.serving_endpoints.list()
    carol.serving_endpoints.query(EMBEDDING, input=["x"])
    oai.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": QUESTION}])
    _reassemble(carol_oai.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": QUESTION}], stream=True))

    assert [(r.principal, r.method, r.path, r.resource, r.decision, r.status) for r in since(workspace, mark)] == [
        ("alice@example.com", "GET", "/api/2.0/serving-endpoints", None, "allow", 200),
        ("carol@example.com", "POST", f"/serving-endpoints/{EMBEDDING}/invocations", f"serving_endpoint:{EMBEDDING}", "allow", 200),
        ("alice@example.com", "POST", CHAT_PATH, f"serving_endpoint:{CHAT}", "allow", 200),
        ("carol@example.com", "POST", CHAT_PATH, f"serving_endpoint:{CHAT}", "allow", 200),
    ]
