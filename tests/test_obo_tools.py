"""Tools built with ``req.user_client`` really act as the invoker, proven by the audit log.

Real clients over real HTTP: databricks_langchain / databricks_openai retriever tools, the
vector-search client, DatabricksOpenAI. Degradation follows the user, on each runtime
(conftest.runtime: Model Serving and Apps). Sibling:
test_obo_identity.py for the clients themselves.
"""

from __future__ import annotations

import base64

import threading

import openai
import pytest
from databricks.ai_search.client import VectorSearchClient
from databricks_langchain import VectorSearchRetrieverTool as LangchainRetriever
from databricks_openai import DatabricksOpenAI
from databricks_openai import VectorSearchRetrieverTool as OpenAIRetriever

import obo_auth
from obo_auth import RequestEndedError, ToolUnavailableError
from obo_auth.redact import fingerprint

INDEX = "main.docs.handbook_index"
QUESTION = "parental leave salary"
VECTOR_SEARCH_PATHS = ("/api/2.0/vector-search/", "/api/2.1/unity-catalog/", "/api/2.0/serving-endpoints/")


def langchain_tool(req):
    return LangchainRetriever(
        index_name=INDEX, workspace_client=req.user_client, columns=["id", "chunk", "doc_uri", "audience"], doc_uri="doc_uri"
    )


def openai_tool(req):
    return OpenAIRetriever(index_name=INDEX, workspace_client=req.user_client, columns=["id", "chunk", "doc_uri", "audience"], doc_uri="doc_uri")


@obo_auth.on_behalf_of_user
def retrieve_langchain(question: str):
    req = obo_auth.current_request()
    tool = req.optional("handbook", lambda: langchain_tool(req))
    docs = tool._vector_store.similarity_search(question, k=10) if tool else []
    return [d.metadata["audience"] for d in docs], obo_auth.degraded_note(req.degraded), obo_auth.degraded_outputs(req.degraded)


@obo_auth.on_behalf_of_user
def retrieve_openai(question: str):
    req = obo_auth.current_request()
    tool = req.optional("handbook", lambda: openai_tool(req))
    docs = tool.execute(query=question) if tool else []
    return [d["metadata"]["audience"] for d in docs], req.degraded


def _calls_since(workspace, before):
    return [r for r in workspace.audit()[before:] if r.path.startswith(VECTOR_SEARCH_PATHS)]


@pytest.mark.parametrize("retrieve", [retrieve_langchain, retrieve_openai], ids=["langchain", "openai"])
def test_retriever_tools_act_as_the_invoker_and_degradation_follows_the_user(runtime, workspace, invoker_token, retrieve):
    results = {}
    for user in ("alice", "bob", "carol"):
        before = len(workspace.audit())
        with runtime.user(invoker_token(workspace, user), workspace.url):
            results[user] = retrieve(QUESTION)
        calls = _calls_since(workspace, before)
        assert calls, "the tool made no calls"
        assert {(r.principal, r.actor) for r in calls} == {(f"{user}@example.com", "obo-agent")}
    alice, bob, carol = (results[u][0] for u in ("alice", "bob", "carol"))
    assert "hr" in alice
    assert bob == []
    # Both get the tool's number of passages (a query returns its nearest rows whatever the
    # wording); carol's come from the rows her row filter lets through.
    assert 0 < len(carol) == len(alice) and "hr" not in carol
    assert results["alice"][1] is None if retrieve is retrieve_langchain else results["alice"][1] == []


def test_degraded_note_and_outputs_say_what_the_user_could_not_use(runtime, workspace, invoker_token):
    with runtime.user(invoker_token(workspace, "bob"), workspace.url):
        _, note, outputs = retrieve_langchain(QUESTION)
    assert note == "I could not use: handbook (you do not have permission)."
    assert outputs == {"unavailable_tools": [{"name": "handbook", "reason": "permission_denied"}]}


def test_missing_scope_degrades_as_scope_missing(runtime, workspace):
    token = workspace.issue_token("alice", scopes=["serving.serving-endpoints"], actor="obo-agent")
    with runtime.user(token, workspace.url):
        _, note, outputs = retrieve_langchain(QUESTION)
    assert outputs["unavailable_tools"] == [{"name": "handbook", "reason": "scope_missing"}]
    assert "API scope" in note


def test_require_and_strict_fail_loudly(runtime, workspace, invoker_token):
    @obo_auth.on_behalf_of_user
    def required():
        req = obo_auth.current_request()
        return req.require("handbook", lambda: langchain_tool(req))

    @obo_auth.on_behalf_of_user(strict=True)
    def strict():
        req = obo_auth.current_request()
        return req.optional("handbook", lambda: langchain_tool(req))

    # A strict request: on Model Serving the decorated call opens it, with the decorator's
    # strict=True; on Apps app_request opens it, and a decorated call joins it with its settings.
    for predict, request_options in ((required, {}), (strict, {"strict": True})):
        with runtime.user(invoker_token(workspace, "bob"), workspace.url, **request_options):
            with pytest.raises(ToolUnavailableError, match="handbook.*permission denied") as raised:
                predict()
        assert raised.value.category == "permission_denied"
        # What the workspace said is kept: which grant bob lacks, on what.
        assert "bob@example.com does not have SELECT on vector search index 'main.docs.handbook_index'" in str(raised.value)


def test_a_refused_tool_says_why_in_one_line_without_any_token(workspace, invoker_token):
    """The workspace's words come with the error, scrubbed: the request's own token (whatever its
    shape) and anything token-shaped are replaced by fingerprints, only the first line is kept (a
    token broken across lines is never shown whole), control characters are shown escaped, and a
    long message is cut."""
    from databricks.sdk.errors import PermissionDenied

    token = invoker_token(workspace, "alice")
    other = "dapi" + "0123456789abcdef" * 2

    @obo_auth.on_behalf_of_user
    def predict(message):
        def refused():
            raise PermissionDenied(message)

        return obo_auth.current_request().require("handbook", refused)

    def said(message: str) -> str:
        with obo_auth.as_user(token, host=workspace.url):
            with pytest.raises(ToolUnavailableError) as raised:
                predict(message)
        return str(raised.value)

    echoed = said(f"no SELECT for Bearer {token} nor {other}\tX-Forged: yes " + "x" * 1000)
    assert token not in echoed and fingerprint(token) in echoed and other not in echoed and fingerprint(other) in echoed
    assert "\\x09X-Forged" in echoed and echoed.endswith("x...") and len(echoed) < 500
    split = said(f"no SELECT; the request was sent with {token[:20]}\r\n{token[20:]}")
    assert split.endswith(f"sent with {token[:20]}") and token[20:] not in split
    basic = base64.b64encode(f"token:{token}".encode()).decode()  # an echoed Basic header
    assert basic not in said(f"no SELECT for Basic {basic}") and basic not in said(f"no SELECT for Basic {basic}=")
    # The request's own token is scrubbed by value, not only by shape.
    with obo_auth.as_user("odd-token-" + "z" * 30, host=workspace.url):
        with pytest.raises(ToolUnavailableError) as raised:
            predict("Authorization: Bearer odd-token-" + "z" * 30)
    assert "z" * 30 not in str(raised.value) and fingerprint("odd-token-" + "z" * 30) in str(raised.value)


def test_programming_errors_are_not_degradation(runtime, workspace, invoker_token):
    @obo_auth.on_behalf_of_user
    def predict():
        req = obo_auth.current_request()
        return req.optional("handbook", lambda: LangchainRetriever(index_name="not-a-uc-name", workspace_client=req.user_client))

    with runtime.user(invoker_token(workspace, "alice"), workspace.url):
        with pytest.raises(Exception) as raised:
            predict()
    assert not isinstance(raised.value, ToolUnavailableError)


def test_tools_never_read_the_process_wide_slot(workspace, invoker_token, monkeypatch):
    """In serving, with bob's token in the runtime's slot, alice's request still queries as alice.

    Model Serving only (no runtime fixture): the slot is Model Serving's own token source."""
    monkeypatch.setenv("IS_IN_DB_MODEL_SERVING_ENV", "true")
    monkeypatch.setenv("DATABRICKS_MODEL_SERVING_HOST_URL", workspace.url)
    slot = threading.main_thread().__dict__
    slot["invokers_token"] = invoker_token(workspace, "bob")
    try:
        before = len(workspace.audit())
        with obo_auth.as_user(invoker_token(workspace, "alice"), host=workspace.url):
            audiences, _, _ = retrieve_langchain(QUESTION)
    finally:
        slot.pop("invokers_token", None)
    assert "hr" in audiences
    assert {r.principal for r in _calls_since(workspace, before)} == {"alice@example.com"}


def test_vector_search_client_built_from_the_user_client(runtime, workspace, invoker_token):
    @obo_auth.on_behalf_of_user
    def predict():
        config = obo_auth.current_request().user_client.config
        client = VectorSearchClient(workspace_url=config.host, personal_access_token=config.token, disable_notice=True)
        return client.get_index(index_name=INDEX).similarity_search(query_text=QUESTION, columns=["id", "audience"], num_results=10)

    before = len(workspace.audit())
    with runtime.user(invoker_token(workspace, "carol"), workspace.url):
        result = predict()
    assert result["result"]["row_count"] > 0
    assert {r.principal for r in _calls_since(workspace, before)} == {"carol@example.com"}


def test_databricks_openai_acts_as_the_invoker_and_fails_closed_when_kept(runtime, workspace, invoker_token):
    @obo_auth.on_behalf_of_user
    def predict():
        client = DatabricksOpenAI(workspace_client=obo_auth.current_request().user_client)
        answer = client.chat.completions.create(model="chat-model", messages=[{"role": "user", "content": "hi"}])
        return client, answer.choices[0].message.content

    before = len(workspace.audit())
    with runtime.user(invoker_token(workspace, "alice"), workspace.url):
        kept, content = predict()
    assert content
    assert [r.principal for r in workspace.audit()[before:]] == ["alice@example.com"]
    before = len(workspace.audit())
    # openai reports any failure to build a request as a connection error; the cause is ours.
    with pytest.raises(openai.APIConnectionError) as raised:
        kept.chat.completions.create(model="chat-model", messages=[{"role": "user", "content": "hi"}])
    assert isinstance(raised.value.__cause__, RequestEndedError)
    assert workspace.audit()[before:] == []
