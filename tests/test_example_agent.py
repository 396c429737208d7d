"""The example handbook agent's ResponsesAgent twin, called in-process as each user.

The ChatAgent twin is exercised served, in test_local_serving.py; the demo in test_demo.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mlflow.types.responses import ResponsesAgentRequest

import obo_auth

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "handbook_agent"
QUESTION = "How does parental leave pay work?"


@pytest.fixture(scope="module")
def agent_class():
    sys.path.insert(0, str(EXAMPLE))
    try:
        from responses_agent import HandbookResponsesAgent
    finally:
        sys.path.remove(str(EXAMPLE))
    return HandbookResponsesAgent()


@pytest.fixture
def agent(agent_identity, workspace, agent_class):
    """What Model Serving gives the agent for itself; here, obo-agent's OAuth client credentials."""
    agent_identity(workspace)
    return agent_class


def ask(agent, workspace, invoker_token, user, *, stream=False):
    request = ResponsesAgentRequest(input=[{"role": "user", "content": QUESTION}])
    with obo_auth.as_user(invoker_token(workspace, user), host=workspace.url):
        if stream:
            return list(agent.predict_stream(request))
        return agent.predict(request)


def test_each_user_gets_what_their_grants_allow(agent, workspace, invoker_token):
    alice, bob, carol = (ask(agent, workspace, invoker_token, u).custom_outputs for u in ("alice", "bob", "carol"))
    assert any(s.endswith("#5") for s in alice["sources"])  # an hr-only passage
    assert bob["unavailable_tools"] == [{"name": "the company handbook", "reason": "permission_denied"}]
    assert carol["sources"] and not any(s.endswith(("#5", "#16", "#17")) for s in carol["sources"])


def test_the_answer_cites_sources_and_says_what_was_unavailable(agent, workspace, invoker_token):
    alice = ask(agent, workspace, invoker_token, "alice")
    text = alice.output[0].content[0]["text"]
    assert "Sources: https://handbook.example.com/" in text
    bob_text = ask(agent, workspace, invoker_token, "bob").output[0].content[0]["text"]
    assert bob_text.endswith("I could not use: the company handbook (you do not have permission).")


def test_the_chat_model_is_called_as_the_agent_and_the_index_as_the_user(agent, workspace, invoker_token):
    before = len(workspace.audit())
    ask(agent, workspace, invoker_token, "carol")
    calls = workspace.audit()[before:]
    chat = [r for r in calls if r.resource == "serving_endpoint:chat-model"]
    index = [r for r in calls if r.resource == "index:main.docs.handbook_index"]
    assert chat and {(r.principal, r.actor) for r in chat} == {("obo-agent", None)}
    assert index and {(r.principal, r.actor) for r in index} == {("carol@example.com", "obo-agent")}


def test_streaming_ends_with_the_whole_answer_and_its_outputs(agent, workspace, invoker_token):
    events = ask(agent, workspace, invoker_token, "alice", stream=True)
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = events[-1]
    assert done.type == "response.output_item.done"
    assert deltas == done.item["content"][0]["text"]
    assert any(s.endswith("#5") for s in done.custom_outputs["sources"])


def test_retrieval_is_traced_as_a_retriever_span_with_doc_uris(agent, workspace, invoker_token, tmp_path, own_mlflow_store):
    import mlflow
    from mlflow.entities import SpanType

    with own_mlflow_store(tmp_path, "traces"):  # a store that keeps traces; the session's is back after
        ask(agent, workspace, invoker_token, "alice")
        trace = mlflow.get_trace(mlflow.get_last_active_trace_id(), flush=True)
    retrievers = [s for s in trace.data.spans if s.span_type == SpanType.RETRIEVER]
    assert retrievers, [s.span_type for s in trace.data.spans]
    documents = retrievers[0].outputs
    assert documents and all(d["metadata"]["doc_uri"].startswith("https://handbook.example.com/") for d in documents)
