"""Request-bound identity: nothing obtained in one request acts, or leaks, in another.

Every OBO-compatible client the README lists is built in alice's request and then used in
bob's later request, in bob's concurrent request, and outside any request, over real HTTP
against the local workspace, with its audit log as the witness. Siblings:
test_obo_identity.py (the decorator and clients one request at a time), test_request_edges.py
(nested calls, streams, the runtime's token sources, malformed tokens).
"""

from __future__ import annotations

import copy
import json
import pickle
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from databricks.ai_search.client import VectorSearchClient
from databricks.sdk.service.serving import ExternalFunctionRequestHttpMethod
from databricks_ai_bridge.genie import Genie
from databricks_langchain import ChatDatabricks
from databricks_langchain import VectorSearchRetrieverTool as LangchainRetriever
from databricks_openai import DatabricksOpenAI
from databricks_openai import VectorSearchRetrieverTool as OpenAIRetriever

import obo_auth
from obo_auth import RequestEndedError, WorkspaceMismatchError
from obo_auth.local import LocalWorkspace
from obo_auth.local.sql.seed import derived_warehouse_id

INDEX = "main.docs.handbook_index"
QUESTION = "parental leave salary"
COLUMNS = ["id", "chunk", "doc_uri", "audience"]
GENIE_SPACE = "1eec1f60c07f5b62857d1e7828e413a0"  # the default seed's "HR analytics"
WAREHOUSE_ID = derived_warehouse_id("local-warehouse")


def _vector_search_client(req) -> VectorSearchClient:
    config = req.user_client.config
    return VectorSearchClient(workspace_url=config.host, personal_access_token=config.token, disable_notice=True)


def _chat(client) -> str:
    return client.chat.completions.create(model="chat-model", messages=[{"role": "user", "content": "hi"}]).choices[0].message.content


@dataclass(frozen=True)
class Kind:
    """One client class: how to build it in a request, and one call that crosses the wire."""

    name: str
    build: Callable
    use: Callable


KINDS = [
    Kind("WorkspaceClient", lambda req: req.user_client, lambda c: c.current_user.me().user_name),
    Kind(
        "langchain VectorSearchRetrieverTool",
        lambda req: LangchainRetriever(index_name=INDEX, workspace_client=req.user_client, columns=COLUMNS, doc_uri="doc_uri"),
        lambda tool: tool.invoke({"query": QUESTION}),
    ),
    Kind(
        "openai VectorSearchRetrieverTool",
        lambda req: OpenAIRetriever(index_name=INDEX, workspace_client=req.user_client, columns=COLUMNS, doc_uri="doc_uri"),
        lambda tool: tool.execute(query=QUESTION),
    ),
    Kind(
        "VectorSearchClient",
        _vector_search_client,
        lambda client: client.get_index(index_name=INDEX).similarity_search(query_text=QUESTION, columns=COLUMNS),
    ),
    Kind(
        "VectorSearchIndex",
        lambda req: _vector_search_client(req).get_index(index_name=INDEX),
        lambda index: index.similarity_search(query_text=QUESTION, columns=COLUMNS),
    ),
    # max_retries=0: openai retries a request it could not build, with a back-off, before raising.
    Kind("DatabricksOpenAI", lambda req: DatabricksOpenAI(workspace_client=req.user_client, max_retries=0), _chat),
    Kind("get_open_ai_client", lambda req: req.user_client.serving_endpoints.get_open_ai_client(max_retries=0), _chat),
    # Who the answer is about shows whose request it ran in: alice sees the executive row, carol not.
    Kind("Genie", lambda req: Genie(GENIE_SPACE, client=req.user_client), lambda genie: genie.ask_question("list employees").result),
    Kind(
        "statement_execution",
        lambda req: req.user_client,
        lambda c: c.statement_execution.execute_statement("SELECT name FROM main.hr.employees", WAREHOUSE_ID).result.data_array,
    ),
    # A per-user connection: the upstream says whose credential came.
    Kind(
        "http_request (UC connection)",
        lambda req: req.user_client,
        lambda c: c.serving_endpoints.http_request(conn="echo_per_user", method=ExternalFunctionRequestHttpMethod.GET, path="/").json(),
    ),
    Kind(
        "ChatDatabricks",
        lambda req: ChatDatabricks(endpoint="chat-model", workspace_client=req.user_client, max_retries=0),
        lambda llm: llm.invoke("hi").content,
    ),
]


@pytest.fixture(params=KINDS, ids=[k.name for k in KINDS])
def kind(request) -> Kind:
    return request.param


def build_as(runtime, workspace, token: str, kind: Kind):
    """``kind`` built inside a request of ``token``'s user on ``runtime``, and kept after it."""

    @obo_auth.on_behalf_of_user
    def predict():
        return kind.build(obo_auth.current_request())

    with runtime.user(token, workspace.url):
        return predict()


def use_as(runtime, workspace, token: str, kind: Kind, kept):
    @obo_auth.on_behalf_of_user
    def predict():
        return kind.use(kept)

    with runtime.user(token, workspace.url):
        return predict()


def raised_by_obo_auth(error: BaseException, kind: type[BaseException] = RequestEndedError) -> bool:
    """The clients wrap what fails while they build a request (openai: APIConnectionError): follow the chain."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, kind):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def test_kept_client_acts_for_the_later_request_it_is_used_in(runtime, workspace, invoker_token, kind):
    """alice may read the HR rows; carol may not (row filter). A tool alice's request built never shows them to carol."""
    kept = build_as(runtime, workspace, invoker_token(workspace, "alice"), kind)
    before = len(workspace.audit())
    result = use_as(runtime, workspace, invoker_token(workspace, "carol"), kind, kept)
    calls = workspace.audit()[before:]
    assert calls, "the kept client made no call"
    assert {(r.principal, r.actor, r.decision) for r in calls} == {("carol@example.com", "obo-agent", "allow")}
    assert "'hr'" not in repr(result) and '"hr"' not in repr(result)


def _kind(name: str) -> Kind:
    return next(k for k in KINDS if k.name.startswith(name))


def test_a_kept_genie_answers_with_the_later_users_rows_and_a_connection_with_their_credential(runtime, workspace, invoker_token):
    genie = build_as(runtime, workspace, invoker_token(workspace, "alice"), _kind("Genie"))
    as_carol = use_as(runtime, workspace, invoker_token(workspace, "carol"), _kind("Genie"), genie)
    as_alice = use_as(runtime, workspace, invoker_token(workspace, "alice"), _kind("Genie"), genie)
    assert "Carol Chen" in as_carol and "Evan Evans" not in as_carol  # the row filter, as carol
    assert "Evan Evans" in as_alice
    client = build_as(runtime, workspace, invoker_token(workspace, "alice"), _kind("http_request"))
    assert use_as(runtime, workspace, invoker_token(workspace, "carol"), _kind("http_request"), client)["credential_of"] == "carol@example.com"


def test_kept_tool_used_by_a_user_without_access_is_refused_as_that_user(runtime, workspace, invoker_token):
    kind = KINDS[1]  # the langchain retriever tool; bob holds no grant on the index
    kept = build_as(runtime, workspace, invoker_token(workspace, "alice"), kind)
    before = len(workspace.audit())
    with pytest.raises(Exception, match="bob@example.com does not have SELECT"):
        use_as(runtime, workspace, invoker_token(workspace, "bob"), kind, kept)
    assert {(r.principal, r.decision) for r in workspace.audit()[before:]} == {("bob@example.com", "deny")}


def test_kept_client_used_outside_any_request_raises_and_sends_nothing(runtime, workspace, invoker_token, kind):
    kept = build_as(runtime, workspace, invoker_token(workspace, "alice"), kind)
    before = len(workspace.audit())
    with pytest.raises(Exception) as raised:
        kind.use(kept)
    assert raised_by_obo_auth(raised.value), f"{kind.name} failed, but not because obo_auth refused: {raised.value!r}"
    assert workspace.audit()[before:] == []


def test_client_from_a_running_request_acts_for_the_concurrent_request_it_is_used_in(runtime, workspace, invoker_token, kind):
    """alice's request is still in flight (blocked) while carol's request uses what alice's built."""
    handed_over: queue.Queue = queue.Queue()
    release = threading.Event()

    @obo_auth.on_behalf_of_user
    def alices_request():
        built = kind.build(obo_auth.current_request())
        handed_over.put(built)
        release.wait(60)
        return kind.use(built)  # after carol's use, alice's own request still acts as alice

    alice_token = invoker_token(workspace, "alice")
    results: list = []

    def run_alice():
        with runtime.user(alice_token, workspace.url):
            results.append(alices_request())

    thread = threading.Thread(target=run_alice)
    thread.start()
    try:
        handed_over_client = handed_over.get(timeout=60)
        before = len(workspace.audit())
        use_as(runtime, workspace, invoker_token(workspace, "carol"), kind, handed_over_client)
        assert {r.principal for r in workspace.audit()[before:]} == {"carol@example.com"}
    finally:
        release.set()
        thread.join(60)
    assert results, "alice's request failed"
    last = workspace.audit()[-1]
    assert last.principal == "alice@example.com"


def test_client_built_for_one_workspace_is_refused_in_a_request_for_another(runtime, workspace, invoker_token, kind):
    kept = build_as(runtime, workspace, invoker_token(workspace, "alice"), kind)
    with LocalWorkspace() as other:
        before = len(workspace.audit())
        with pytest.raises(Exception) as raised:
            use_as(runtime, other, other.issue_token("bob"), kind, kept)
        assert raised_by_obo_auth(raised.value, WorkspaceMismatchError), repr(raised.value)
        assert other.audit() == []  # nothing at all was sent, to either workspace
    assert workspace.audit()[before:] == []  # bob's token of the other workspace never reached this one


def test_after_its_request_nothing_reachable_from_a_client_yields_the_token(runtime, workspace, invoker_token, kind, reachable_strings):
    canary = invoker_token(workspace, "alice")
    kept = build_as(runtime, workspace, canary, kind)
    use_as(runtime, workspace, canary, kind, kept)  # it has sent the token at least once
    assert not [s for s in reachable_strings(kept) if canary in s]


def test_the_user_client_config_never_yields_the_token(runtime, workspace, invoker_token):
    canary = invoker_token(workspace, "alice")
    kept = build_as(runtime, workspace, canary, KINDS[0])
    config = kept.config
    shown = [str(config.token), repr(config.token), config.token + "", config.token.encode().decode(), repr(config)]
    shown += [json.dumps({k: str(v) for k, v in config.as_dict().items()}), str(pickle.loads(pickle.dumps(config.token)))]
    shown += [str(copy.deepcopy(config.token)), "%s" % config.token]
    assert all(canary not in text for text in shown)
    assert config.auth_type == "pat" and config.token  # what the tools branch on, and a non-empty string
    with pytest.raises(RequestEndedError):
        f"{config.token}"
    with pytest.raises(RequestEndedError):
        config.authenticate()


def test_a_class_that_keeps_its_token_is_handed_out_with_a_loud_warning(runtime, workspace, invoker_token, caplog):
    """databricks_mcp's OAuth provider calls config.authenticate() once and keeps the token it got:
    obo_auth cannot make it request-bound, so req.require says so (SECURITY.md, residual risk 3)."""
    from databricks_mcp.oauth_provider import DatabricksOAuthClientProvider

    @obo_auth.on_behalf_of_user
    def predict():
        req = obo_auth.current_request()
        return req.require("mcp", lambda: DatabricksOAuthClientProvider(req.user_client))

    with runtime.user(invoker_token(workspace, "alice"), workspace.url):
        with pytest.warns(obo_auth.KeptUnsafeWarning, match="'mcp' is a DatabricksOAuthClientProvider.*never keep it"):
            predict()
    assert "never keep it" in caplog.text


def test_request_bound_classes_are_handed_out_without_a_warning(runtime, workspace, invoker_token, kind, recwarn):
    build_as(runtime, workspace, invoker_token(workspace, "alice"), Kind(kind.name, lambda req: req.require(kind.name, lambda: kind.build(req)), kind.use))
    assert not [w for w in recwarn if issubclass(w.category, obo_auth.KeptUnsafeWarning)]
