"""The example handbook agent's ResponsesAgent twin, called in-process as each user through
obo_auth's pytest plugin (the ``obo`` fixture), with tokens downscoped to the scopes of its
declared resources, as Model Serving would mint them.

The ChatAgent twin is exercised served, in test_local_serving.py; the demo in test_demo.py;
the plugin itself in test_pytest_plugin.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import obo_auth

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "handbook_agent"
QUESTION = "How does parental leave pay work?"


@pytest.fixture(scope="module")
def example():
    """The agent and the scopes its logged auth policy holds."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        from handbook_logic import RESOURCES
        from responses_agent import HandbookResponsesAgent
    finally:
        sys.path.remove(str(EXAMPLE))
    return HandbookResponsesAgent(), obo_auth.required_scopes(*RESOURCES)


def ask(obo, example, user, *, stream=False):
    agent, scopes = example
    return obo.ask(agent, user, QUESTION, stream=stream, scopes=scopes)


def test_each_user_gets_what_their_grants_allow(obo, example):
    alice, bob, carol = (ask(obo, example, u).body["custom_outputs"] for u in ("alice", "bob", "carol"))
    assert any(s.endswith("#5") for s in alice["sources"])  # an hr-only passage
    assert bob["unavailable_tools"] == [{"name": "the company handbook", "reason": "permission_denied"}]
    assert carol["sources"] and not any(s.endswith(("#5", "#16", "#17")) for s in carol["sources"])


def test_the_answer_cites_sources_and_says_what_was_unavailable(obo, example):
    assert "Sources: https://handbook.example.com/" in ask(obo, example, "alice").text
    assert ask(obo, example, "bob").text.endswith("I could not use: the company handbook (you do not have permission).")


def test_the_chat_model_is_called_as_the_agent_and_the_index_as_the_user(obo, example):
    ask(obo, example, "carol")
    chat = obo.audit.where(path="/serving-endpoints/chat/completions")
    index = obo.audit.where(path="/vector-search/indexes/main.docs.handbook_index")
    assert chat and {(c.principal, c.actor) for c in chat} == {("obo-agent", None)}
    index.assert_all_as("carol", actor="obo-agent")


def test_streaming_ends_with_the_whole_answer_and_its_outputs(obo, example):
    reply = ask(obo, example, "alice", stream=True)
    deltas = "".join(e["delta"] for e in reply.body if e["type"] == "response.output_text.delta")
    done = reply.body[-1]
    assert done["type"] == "response.output_item.done"
    assert deltas == reply.text == done["item"]["content"][0]["text"]
    assert any(s.endswith("#5") for s in done["custom_outputs"]["sources"])


def test_no_call_and_no_answer_crosses_users_when_they_ask_at_once(obo, example):
    agent, scopes = example
    result = obo.check_isolation(type(agent), QUESTION, stream=True, scopes=scopes, rounds=2)
    assert result.answers["bob"][QUESTION].endswith("I could not use: the company handbook (you do not have permission).")


def test_retrieval_is_traced_as_a_retriever_span_with_doc_uris(obo, example, tmp_path, own_mlflow_store):
    import mlflow
    from mlflow.entities import SpanType

    with own_mlflow_store(tmp_path, "traces"):  # a store that keeps traces; the session's is back after
        ask(obo, example, "alice")
        trace = mlflow.get_trace(mlflow.get_last_active_trace_id(), flush=True)
    retrievers = [s for s in trace.data.spans if s.span_type == SpanType.RETRIEVER]
    assert retrievers, [s.span_type for s in trace.data.spans]
    documents = retrievers[0].outputs
    assert documents and all(d["metadata"]["doc_uri"].startswith("https://handbook.example.com/") for d in documents)
