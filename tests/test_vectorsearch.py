"""The local workspace's vector search, driven by the released clients over real HTTP.

Who reads what comes from the default seed: alice (group hr) reads every row of the handbook
index, carol reads it through a row filter that hides audience == "hr", bob may not read it,
and obo-agent (the agent's own service principal) may not either. The clients are
databricks-ai-search (``VectorSearchClient``), the langchain and openai retriever tools;
nothing is mocked. Sibling: tests/test_smoke_sdk.py (databricks-sdk auth and SCIM).
"""

from __future__ import annotations

import json
import logging
import re

import mlflow
import pytest
from databricks.ai_search.client import VectorSearchClient
from databricks.ai_search.exceptions import AISearchException, BadRequest, NotFound, PermissionDenied
from databricks.ai_search.index import VectorSearchIndex
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import PermissionDenied as SdkPermissionDenied
from databricks_langchain import VectorSearchRetrieverTool as LangchainRetrieverTool
from databricks_openai import VectorSearchRetrieverTool as OpenAIRetrieverTool

from obo_auth.local import LocalWorkspace
from seeds import default_seed

INDEX = "main.docs.handbook_index"
ENDPOINT = "docs-endpoint"
EMBEDDING_ENDPOINT = "databricks-gte-large-en"
HR_QUESTION = "parental leave salary"

INDEX_PATH = f"/api/2.0/vector-search/indexes/{INDEX}"
QUERY_PATH = f"{INDEX_PATH}/query"
SERVING_PATH = f"/api/2.0/serving-endpoints/{EMBEDDING_ENDPOINT}"
TABLE_PATH = f"/api/2.1/unity-catalog/tables/{INDEX}"
# What constructing each tool sends, in order (shared/API_SHAPES.md, section 6).
LANGCHAIN_CONSTRUCTION = [INDEX_PATH, SERVING_PATH, INDEX_PATH, INDEX_PATH, TABLE_PATH, INDEX_PATH]
OPENAI_CONSTRUCTION = [INDEX_PATH, SERVING_PATH, INDEX_PATH, TABLE_PATH]


ROWS = {row["id"]: row for row in next(t for t in default_seed()["tables"] if t["name"] == "main.docs.handbook")["rows"]}
HR_IDS = {i for i, row in ROWS.items() if row["audience"] == "hr"}


@pytest.fixture(scope="module", autouse=True)
def _no_mlflow_traces():
    # The retriever tools trace every call with mlflow; exporting a trace builds mlflow's
    # tracking store (seconds, and files), and tracing is not what these tests look at.
    # reset(), not enable(), afterwards: enable() builds the store at once.
    mlflow.tracing.disable()
    yield
    mlflow.tracing.reset()


def _client(ws: LocalWorkspace, token: str) -> VectorSearchClient:
    return VectorSearchClient(workspace_url=ws.url, personal_access_token=token, disable_notice=True)


def _search(index, **kwargs) -> dict:
    return index.similarity_search(disable_notice=True, **kwargs)


def _ids(result: dict) -> list:
    """The first column (id) of each row."""
    return [row[0] for row in result["result"].get("data_array", [])]


# What databricks-sdk reads, unauthenticated, before it authenticates.
_METADATA_PATHS = {"/.well-known/databricks-config", "/oidc/.well-known/oauth-authorization-server"}


def _api_requests(ws: LocalWorkspace, since: int) -> list:
    """Audit records after ``since``, without the SDK's metadata lookups."""
    return [r for r in ws.audit()[since:] if r.path not in _METADATA_PATHS]


@pytest.fixture(scope="module")
def alice_index(workspace):
    return _client(workspace, workspace.issue_token("alice")).get_index(index_name=INDEX)


# -- the vector-search client --------------------------------------------------------------


def test_client_lists_and_gets_endpoints_and_indexes(workspace):
    client = _client(workspace, workspace.issue_token("alice"))
    assert [e["name"] for e in client.list_endpoints()["endpoints"]] == [ENDPOINT]
    assert client.get_endpoint(ENDPOINT)["endpoint_status"]["state"] == "ONLINE"
    assert [i["name"] for i in client.list_indexes(ENDPOINT)["vector_indexes"]] == [INDEX]

    # Both addressings the client offers reach the same index.
    for index in (client.get_index(index_name=INDEX), client.get_index(endpoint_name=ENDPOINT, index_name=INDEX)):
        description = index.describe()
        assert (description["name"], description["endpoint_name"], description["primary_key"]) == (INDEX, ENDPOINT, "id")
        assert description["delta_sync_index_spec"]["embedding_source_columns"][0] == {
            "name": "chunk",
            "embedding_model_endpoint_name": EMBEDDING_ENDPOINT,
        }
        index.wait_until_ready()  # returns at once: the index reports an ONLINE detailed_state

    # A listing shows only what the caller may read.
    bob = _client(workspace, workspace.issue_token("bob"))
    assert bob.list_indexes(ENDPOINT).get("vector_indexes", []) == []


def test_similarity_search_returns_requested_columns_and_best_rows_first(workspace, alice_index):
    result = _search(alice_index, query_text=HR_QUESTION, columns=["id", "title", "audience"], num_results=3)
    assert [c["name"] for c in result["manifest"]["columns"]] == ["id", "title", "audience", "score"]
    assert result["result"]["row_count"] == 3
    # Nearest by the local embedding model (words and word pieces): row 5 names all three words;
    # row 4 two of them; row 17 "salary" twice.
    assert _ids(result) == [5, 4, 17]
    assert [row[1:3] for row in result["result"]["data_array"]] == [[ROWS[i]["title"], ROWS[i]["audience"]] for i in (5, 4, 17)]
    scores = [row[-1] for row in result["result"]["data_array"]]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0


def test_ranking_is_deterministic(workspace, alice_index):
    first = _search(alice_index, query_text="remote work from home", columns=["id", "chunk"], num_results=10)
    again = _search(
        _client(workspace, workspace.issue_token("alice")).get_index(index_name=INDEX),
        query_text="remote work from home",
        columns=["id", "chunk"],
        num_results=10,
    )
    assert first["result"]["data_array"] == again["result"]["data_array"]
    assert len(_ids(first)) >= 2


def test_score_threshold_drops_weaker_rows(alice_index):
    everything = _search(alice_index, query_text=HR_QUESTION, columns=["id"], num_results=50)
    threshold = everything["result"]["data_array"][2][-1]
    strong = _search(alice_index, query_text=HR_QUESTION, columns=["id"], num_results=50, score_threshold=threshold)
    assert _ids(strong) == _ids(everything)[:3]


@pytest.mark.parametrize(
    ("filters", "expected_ids"),
    [
        ({"title": "Security"}, [11, 12]),
        ({"title": ["Travel", "Expenses"]}, [8, 9]),
        ({"audience NOT": "all"}, sorted(HR_IDS)),
        ({"id >=": 28}, [28, 29, 30]),
        ({"id <": 3}, [1, 2]),
        # LIKE matches a whole token, not a substring; '%' makes it a pattern.
        ({"title LIKE": "remote"}, [6, 7]),
        ({"title LIKE": "remot"}, []),
        ({"doc_uri LIKE": "%/security#%"}, [11, 12]),
        ({"title OR audience": ["Travel", "hr"]}, sorted({9} | HR_IDS)),
        ({"audience": "hr", "title LIKE": "%leave%"}, [5]),  # keys are ANDed
    ],
)
def test_filters(alice_index, filters, expected_ids):
    # Without query_text every row scores the same, so rows come in primary-key order.
    result = _search(alice_index, columns=["id", "title"], filters=filters, num_results=100)
    assert _ids(result) == expected_ids


@pytest.mark.parametrize(
    "filters",
    [
        {"no_such_column": 1},
        {"id BETWEEN": [1, 2]},
        {"id <": "three"},
        {"title LIKE": 5},
        {"title OR audience": ["Travel"]},
        "audience = 'hr'",  # a SQL filter string: storage-optimized endpoints only; never silently dropped
    ],
)
def test_bad_filters_are_bad_requests(alice_index, filters):
    with pytest.raises(BadRequest) as excinfo:
        _search(alice_index, query_text="leave", columns=["id"], filters=filters)
    assert (excinfo.value.status_code, excinfo.value.error_code) == (400, "INVALID_PARAMETER_VALUE")
    assert "filter" in str(excinfo.value).lower()


def test_unknown_and_malformed_index_names(workspace):
    client = _client(workspace, workspace.issue_token("alice"))
    with pytest.raises(NotFound) as excinfo:
        client.get_index(index_name="main.docs.no_such_index")
    assert excinfo.value.status_code == 404 and "no_such_index" in str(excinfo.value)

    with pytest.raises(NotFound):
        client.get_index(endpoint_name="other-endpoint", index_name=INDEX)

    with pytest.raises(BadRequest) as excinfo:
        client.get_index(index_name="handbook_index")
    assert excinfo.value.status_code == 400 and "catalog.schema.name" in str(excinfo.value)


# -- listings show only the indexes the caller may read ---------------------------------------

PAYROLL = "main.finance.payroll_index"


@pytest.fixture(scope="module")
def two_indexes():
    """Two indexes on one endpoint: alice and carol read the handbook, bob the payroll index,
    dana (group index-admins) both, obo-agent neither."""
    seed = default_seed()
    handbook = next(t for t in seed["tables"] if t["name"] == "main.docs.handbook")
    seed["tables"].append({"name": "main.finance.payroll", "columns": handbook["columns"], "rows": handbook["rows"][:2]})
    seed["indexes"].append({**seed["indexes"][0], "name": PAYROLL, "source_table": "main.finance.payroll"})
    seed["users"].append({"user_name": "dana@example.com"})
    seed["groups"].append({"name": "index-admins", "members": ["dana@example.com"]})
    seed["grants"] += [
        {"principal": "users", "privilege": "USE SCHEMA", "on": {"schema": "main.finance"}},
        {"principal": "bob@example.com", "privilege": "SELECT", "on": {"index": PAYROLL}},
        *({"principal": "index-admins", "privilege": "SELECT", "on": {"index": name}} for name in (INDEX, PAYROLL)),
    ]
    with LocalWorkspace(seed) as ws:
        yield ws


@pytest.mark.parametrize(
    ("principal", "readable"),
    [
        pytest.param("alice@example.com", {INDEX}, id="reads-one"),
        pytest.param("bob@example.com", {PAYROLL}, id="reads-the-other"),
        pytest.param("dana@example.com", {INDEX, PAYROLL}, id="admin-group-reads-all"),
        pytest.param("obo-agent", set(), id="service-principal-reads-none"),
    ],
)
def test_listings_show_only_the_indexes_the_caller_may_read(two_indexes, principal, readable):
    token = two_indexes.issue_token(principal)
    client, w = _client(two_indexes, token), WorkspaceClient(host=two_indexes.url, token=token)
    mark = len(two_indexes.audit())
    listed = {
        "client.list_indexes": client.list_indexes(ENDPOINT),
        "client.get_endpoint": client.get_endpoint(ENDPOINT),
        "client.list_endpoints": client.list_endpoints(),
        "sdk.list_indexes": [i.as_dict() for i in w.vector_search_indexes.list_indexes(endpoint_name=ENDPOINT)],
        "sdk.get_endpoint": w.vector_search_endpoints.get_endpoint(ENDPOINT).as_dict(),
    }
    assert {i["name"] for i in listed["client.list_indexes"].get("vector_indexes", [])} == readable
    assert {i["name"] for i in listed["sdk.list_indexes"]} == readable
    # The endpoint's index count tells no more than its listing does.
    counts = [listed["client.get_endpoint"], listed["client.list_endpoints"]["endpoints"][0], listed["sdk.get_endpoint"]]
    assert [e["num_indexes"] for e in counts] == [len(readable)] * 3
    hidden = {INDEX, PAYROLL} - readable
    assert not any(name in json.dumps(listed) for name in hidden)

    # The workspace filtered (the hidden index exists), as this caller, and said so only in the audit log.
    records = _api_requests(two_indexes, mark)
    assert [(r.principal, r.decision) for r in records] == [(principal, "allow")] * len(listed)
    assert [f"hid {len(hidden)} indexes" in r.reason for r in records] == [bool(hidden)] * len(listed)

    # The listing follows the rule the index GET applies.
    for name in readable:
        assert w.vector_search_indexes.get_index(name).name == name
    for name in hidden:
        with pytest.raises(SdkPermissionDenied):
            w.vector_search_indexes.get_index(name)


# -- the retriever tools, as alice, carol and bob --------------------------------------------


def _langchain_tool(workspace_client: WorkspaceClient) -> LangchainRetrieverTool:
    return LangchainRetrieverTool(
        index_name=INDEX, workspace_client=workspace_client, doc_uri="doc_uri", primary_key="id", columns=["audience"], num_results=10
    )


def _openai_tool(workspace_client: WorkspaceClient) -> OpenAIRetrieverTool:
    return OpenAIRetrieverTool(
        index_name=INDEX, workspace_client=workspace_client, doc_uri="doc_uri", primary_key="id", columns=["audience"], num_results=10
    )


def _ask(tool, question: str) -> list[dict]:
    """The metadata of each passage the tool returns: doc_uri, audience, chunk_id."""
    if isinstance(tool, LangchainRetrieverTool):
        # The langchain tool answers str([Document(metadata={...}, page_content=...), ...]).
        text = tool.invoke({"query": question})
        uris = re.findall(r"'doc_uri': '([^']*)'", text)
        audiences = re.findall(r"'audience': '([^']*)'", text)
        assert len(uris) == len(audiences) == text.count("Document(")
        return [{"doc_uri": u, "audience": a} for u, a in zip(uris, audiences)]
    return [passage["metadata"] for passage in tool.execute(query=question)]


TOOLS = [
    pytest.param(_langchain_tool, LANGCHAIN_CONSTRUCTION, id="langchain"),
    pytest.param(_openai_tool, OPENAI_CONSTRUCTION, id="openai"),
]
TOOL_MAKERS = [pytest.param(_langchain_tool, id="langchain"), pytest.param(_openai_tool, id="openai")]


@pytest.mark.parametrize(("make_tool", "construction"), TOOLS)
def test_tool_as_alice_includes_hr_passages_and_is_audited_as_alice(workspace, make_tool, construction):
    mark = len(workspace.audit())
    tool = make_tool(WorkspaceClient(host=workspace.url, token=workspace.issue_token("alice")))
    built = _api_requests(workspace, mark)
    assert [(r.method, r.path) for r in built] == [("GET", path) for path in construction]
    assert {(r.principal, r.decision) for r in built} == {("alice@example.com", "allow")}

    mark = len(workspace.audit())
    passages = _ask(tool, HR_QUESTION)
    uris = [p["doc_uri"] for p in passages]
    assert uris[:2] == [ROWS[5]["doc_uri"], ROWS[4]["doc_uri"]]
    assert {ROWS[i]["doc_uri"] for i in (5, 16, 17)} <= set(uris)  # hr rows about leave and salary
    assert "hr" in {p["audience"] for p in passages}
    (query,) = _api_requests(workspace, mark)
    assert (query.principal, query.method, query.path, query.resource, query.decision) == (
        "alice@example.com", "GET", QUERY_PATH, f"index:{INDEX}", "allow"
    )
    assert "row filter" not in query.reason


@pytest.mark.parametrize("make_tool", TOOL_MAKERS)
def test_tool_as_carol_never_returns_hr_passages(workspace, make_tool):
    alice = _ask(make_tool(WorkspaceClient(host=workspace.url, token=workspace.issue_token("alice"))), HR_QUESTION)
    mark = len(workspace.audit())
    carol = _ask(make_tool(WorkspaceClient(host=workspace.url, token=workspace.issue_token("carol"))), HR_QUESTION)

    # Both get num_results passages (a query returns its nearest rows whatever the wording);
    # carol's come from the rows her row filter lets through.
    assert len(carol) == len(alice) == 10
    assert {p["audience"] for p in carol} == {"all"}
    assert not {ROWS[i]["doc_uri"] for i in HR_IDS} & {p["doc_uri"] for p in carol}
    requests = _api_requests(workspace, mark)
    assert {r.principal for r in requests} == {"carol@example.com"}
    assert requests[-1].path == QUERY_PATH and f"row filter hid {len(HR_IDS)} rows" in requests[-1].reason


@pytest.mark.parametrize("make_tool", TOOL_MAKERS)
def test_tool_as_bob_is_denied_by_the_index(workspace, make_tool):
    mark = len(workspace.audit())
    with pytest.raises(PermissionDenied) as excinfo:
        make_tool(WorkspaceClient(host=workspace.url, token=workspace.issue_token("bob")))
    assert excinfo.value.status_code == 403 and "bob@example.com" in str(excinfo.value)
    (denied,) = _api_requests(workspace, mark)
    assert (denied.principal, denied.path, denied.resource, denied.decision) == ("bob@example.com", INDEX_PATH, f"index:{INDEX}", "deny")
    assert "does not have SELECT" in denied.reason


# -- downscoped tokens -----------------------------------------------------------------------


def _index_object(ws: LocalWorkspace, token: str) -> VectorSearchIndex:
    """The client's index object, built without get_index's lookups, so only the query is sent."""
    return VectorSearchIndex(
        workspace_url=ws.url, index_url=None, name=INDEX, endpoint_name=ENDPOINT, personal_access_token=token,
        use_user_passed_credentials=True,
    )


def test_token_without_the_index_scope_gets_invalid_scope(workspace, caplog):
    caplog.set_level(logging.DEBUG)
    token = workspace.issue_token("alice", scopes=["serving.serving-endpoints"])
    with pytest.raises(PermissionDenied) as excinfo:
        _search(_index_object(workspace, token), query_text=HR_QUESTION, columns=["id"])
    message = str(excinfo.value)
    assert "Invalid scope" in message and "vectorsearch.vector-search-indexes" in message
    denied = workspace.audit()[-1]
    assert (denied.principal, denied.path, denied.decision, denied.scopes) == (
        "alice@example.com", QUERY_PATH, "deny", ("serving.serving-endpoints",)
    )
    assert token not in message + repr(excinfo.value.response_content) + repr(denied) + caplog.text


def test_token_with_the_vector_search_scopes_can_query(workspace):
    token = workspace.issue_token("alice", scopes=["vectorsearch.vector-search-indexes", "vectorsearch.vector-search-endpoints"])
    client = _client(workspace, token)
    assert [e["name"] for e in client.list_endpoints()["endpoints"]] == [ENDPOINT]
    assert _ids(_search(_index_object(workspace, token), query_text=HR_QUESTION, columns=["id"], num_results=3)) == [5, 4, 17]

    # get_index also looks up the index's embedding endpoint, which needs the serving scope:
    # an agent over a managed-embeddings index declares serving.serving-endpoints as well.
    with pytest.raises(PermissionDenied, match=r"Invalid scope.*serving\.serving-endpoints"):
        client.get_index(index_name=INDEX)
    token = workspace.issue_token(
        "alice", scopes=["vectorsearch.vector-search-indexes", "vectorsearch.vector-search-endpoints", "serving.serving-endpoints"]
    )
    assert _ids(_search(_client(workspace, token).get_index(index_name=INDEX), query_text=HR_QUESTION, columns=["id"], num_results=3)) == [5, 4, 17]


def test_revoked_token_is_unauthenticated_and_not_echoed(workspace):
    token = workspace.issue_token("alice")
    workspace.revoke(token)
    with pytest.raises(AISearchException) as excinfo:
        _client(workspace, token).list_endpoints()
    # 401 has no class of its own in the client: the base exception, never PermissionDenied.
    assert type(excinfo.value) is AISearchException and excinfo.value.status_code == 401
    assert token not in str(excinfo.value) and token not in repr(workspace.audit()[-1])


# -- OAuth M2M: the agent's own service principal --------------------------------------------


def test_service_principal_without_a_grant_is_denied(workspace):
    client_id, client_secret = workspace.client_credentials("obo-agent")
    client = VectorSearchClient(
        workspace_url=workspace.url, service_principal_client_id=client_id, service_principal_client_secret=client_secret, disable_notice=True
    )
    with pytest.raises(PermissionDenied) as excinfo:
        client.get_index(index_name=INDEX)
    assert "obo-agent" in str(excinfo.value) and client_secret not in str(excinfo.value)
    assert (workspace.audit()[-1].principal, workspace.audit()[-1].decision) == ("obo-agent", "deny")


def test_oauth_m2m_client_mints_its_token_and_queries_the_index_url():
    seed = default_seed()
    seed["grants"].append({"principal": "obo-agent", "privilege": "SELECT", "on": {"index": INDEX}})
    with LocalWorkspace(seed) as ws:
        client_id, client_secret = ws.client_credentials("obo-agent")
        client = VectorSearchClient(
            workspace_url=ws.url, service_principal_client_id=client_id, service_principal_client_secret=client_secret, disable_notice=True
        )
        index = client.get_index(index_name=INDEX)
        # With OAuth the client queries status.index_url rather than building the URL itself.
        assert index.index_url == index.describe()["status"]["index_url"] == ws.url + INDEX_PATH
        result = _search(index, query_text=HR_QUESTION, columns=["id", "audience"], num_results=10)
        # obo-agent is not in group hr: the row filter applies to it too.
        assert _ids(result) and {row[1] for row in result["result"]["data_array"]} == {"all"}

        # The langchain tool forwards a WorkspaceClient's oauth-m2m credentials the same way.
        w = WorkspaceClient(host=ws.url, client_id=client_id, client_secret=client_secret)
        passages = _ask(_langchain_tool(w), HR_QUESTION)
        assert passages and {p["audience"] for p in passages} == {"all"}

        records = _api_requests(ws, 0)
        minted = [r for r in records if r.path == "/oidc/v1/token"]
        assert minted and {(r.method, r.resource, r.decision) for r in minted} == {("POST", "service_principal:obo-agent", "allow")}
        used = [r for r in records if r.path != "/oidc/v1/token"]
        assert [r.path for r in used][:4] == [INDEX_PATH, SERVING_PATH, INDEX_PATH, QUERY_PATH]
        assert {(r.principal, r.decision) for r in used} == {("obo-agent", "allow")}
        assert QUERY_PATH in {r.path for r in used[4:]}  # the tool's query too
        assert not any(client_secret in repr(r) for r in records)
