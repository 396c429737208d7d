"""Vector search answers that must match the platform, through the released clients over HTTP.

Found by running the public databricks-ai-bridge integration suites against the local
workspace: a query returns its ``num_results`` nearest rows whatever the wording, with scores
in (0, 1] (so ``score_threshold`` cuts as on the platform); ANN and HYBRID are both served;
``query_vector`` ranks like the ``query_text`` it embeds; Direct Vector Access indexes are
described and queried as the SDK and the retriever tools expect. The clients are
databricks-ai-search (``VectorSearchClient``), databricks-sdk and databricks-langchain; nothing
is mocked. Sibling: tests/test_vectorsearch.py (permissions, listings, filters, audit).
"""

from __future__ import annotations

import copy
import json
import math

import httpx
import mlflow
import numpy as np
import pytest
from databricks.ai_search.client import VectorSearchClient
from databricks.ai_search.exceptions import BadRequest, PermissionDenied
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import PermissionDenied as SdkPermissionDenied
from databricks.sdk.service.vectorsearch import VectorIndexType
from databricks_ai_bridge.utils.vector_search import IndexDetails
from databricks_langchain import DatabricksVectorSearch
from databricks_langchain import VectorSearchRetrieverTool
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.embeddings import Embeddings

from obo_auth.local import LocalWorkspace, SeedError
from obo_auth.local import seed as seed_module
from obo_auth.local.embedding_model import DIMENSION, embed
from seeds import default_seed

INDEX = "main.docs.handbook_index"
FAQ = "main.docs.faq_index"
ENDPOINT = "docs-endpoint"
GIBBERISH = "xyzzy_nonexistent_query_12345"  # the ai-bridge suite's "unrelated wording"
HOLIDAY_VECTOR = embed("winter holiday office closure")  # the one FAQ row whose vector the seed spells out

FAQ_ROWS = [
    {"id": 1, "question": "How do I reset my password?", "answer": "Use the self-service portal to reset your password.", "topic": "it"},
    {"id": 2, "question": "Where do I book travel?", "answer": "Book flights and hotels through the travel portal.", "topic": "travel"},
    {"id": 3, "question": "Who approves expenses?", "answer": "Your manager approves expenses in the expense tool.", "topic": "finance"},
    {"id": 4, "question": "When is the office closed?", "answer": "See the calendar.", "topic": "office", "vec": HOLIDAY_VECTOR},
]


HANDBOOK = {row["id"]: row for row in next(t for t in default_seed()["tables"] if t["name"] == "main.docs.handbook")["rows"]}
HR_IDS = {i for i, row in HANDBOOK.items() if row["audience"] == "hr"}


def _seed_with_faq() -> dict:
    """The default seed plus a Direct Vector Access index that alice and carol may read, bob not."""
    seed = default_seed()
    seed["indexes"].append(
        {
            "name": FAQ,
            "index_type": "DIRECT_ACCESS",
            "endpoint": ENDPOINT,
            "primary_key": "id",
            "columns": {"id": "int", "question": "string", "answer": "string", "topic": "string"},
            "embedding_vector_column": "vec",
            "embed_from": "answer",
            "rows": copy.deepcopy(FAQ_ROWS),
        }
    )
    seed["grants"] += [{"principal": p, "privilege": "SELECT", "on": {"index": FAQ}} for p in ("alice@example.com", "carol@example.com")]
    return seed


@pytest.fixture(scope="module", autouse=True)
def _no_mlflow_traces():
    # The retriever tools trace every call with mlflow; exporting a trace builds mlflow's tracking
    # store (seconds, and files). reset(), not enable(), afterwards: enable() builds the store at once.
    mlflow.tracing.disable()
    yield
    mlflow.tracing.reset()


@pytest.fixture(scope="module")
def ws():
    with LocalWorkspace(_seed_with_faq()) as workspace:
        yield workspace


def _index(ws: LocalWorkspace, name: str, who: str = "alice"):
    return VectorSearchClient(workspace_url=ws.url, personal_access_token=ws.issue_token(who), disable_notice=True).get_index(index_name=name)


def _search(index, **kwargs) -> dict:
    return index.similarity_search(disable_notice=True, **kwargs)


def _rows(result: dict) -> list[list]:
    return result["result"].get("data_array", [])


def _ids(result: dict) -> list:
    return [row[0] for row in _rows(result)]


def _scores(result: dict) -> list[float]:
    return [row[-1] for row in _rows(result)]


def _in_range(scores: list[float]) -> bool:
    return all(0 < s <= 1 for s in scores)


class LocalEmbeddings(Embeddings):
    """The local embedding model as langchain sees a self-managed one (a direct-access index has no model)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return embed(text)


# -- whatever the wording: num_results rows, scores in (0, 1] --------------------------------


@pytest.mark.parametrize("question", [GIBBERISH, "quantum chromodynamics of penguins", "!!!", "parental leave salary"])
def test_any_wording_returns_num_results_nearest_rows(ws, question):
    result = _search(_index(ws, INDEX), query_text=question, columns=["id", "title"], num_results=7)
    scores = _scores(result)
    assert result["result"]["row_count"] == len(_rows(result)) == 7
    assert _in_range(scores) and scores == sorted(scores, reverse=True)


def test_sdk_and_langchain_get_num_results_for_unrelated_wording(ws):
    token = ws.issue_token("alice")
    w = WorkspaceClient(host=ws.url, token=token)
    answer = w.vector_search_indexes.query_index(INDEX, columns=["id", "chunk"], query_text=GIBBERISH, num_results=4)
    assert answer.result.row_count == 4 and _in_range([row[-1] for row in answer.result.data_array])

    store = DatabricksVectorSearch(index_name=INDEX, workspace_client=w)
    with_scores = store.similarity_search_with_score(GIBBERISH, k=3)
    assert len(with_scores) == 3 and _in_range([score for _, score in with_scores])
    tool = VectorSearchRetrieverTool(index_name=INDEX, workspace_client=w, num_results=2)
    assert tool.invoke(GIBBERISH).count("page_content") == 2


def test_score_threshold_cuts_at_the_scores_shown(ws):
    index = _index(ws, INDEX)
    everything = _search(index, query_text="remote work equipment", columns=["id"], num_results=30)
    threshold = _scores(everything)[4]
    kept = _search(index, query_text="remote work equipment", columns=["id"], num_results=30, score_threshold=threshold)
    assert _ids(kept) == [i for i, s in zip(_ids(everything), _scores(everything)) if s >= threshold]
    assert 5 <= len(_ids(kept)) < 30

    # The ai-bridge suite's check: unrelated wording and a threshold of 0.99 leave nothing.
    store = DatabricksVectorSearch(index_name=INDEX, workspace_client=WorkspaceClient(host=ws.url, token=ws.issue_token("alice")))
    assert store.similarity_search_with_score(GIBBERISH, k=3, score_threshold=0.99) == []


# -- ANN and HYBRID ------------------------------------------------------------------------------


def test_hybrid_ranks_as_ann(ws):
    index = _index(ws, INDEX)
    answers = [_search(index, query_text="vacation days", columns=["id", "title"], num_results=10, query_type=t) for t in ("ANN", "HYBRID", "hybrid")]
    assert answers[0]["result"] == answers[1]["result"] == answers[2]["result"]
    assert _ids(answers[0])[0] == 1  # "25 vacation days per year"

    store = DatabricksVectorSearch(index_name=INDEX, workspace_client=WorkspaceClient(host=ws.url, token=ws.issue_token("alice")))
    assert len(store.similarity_search("vacation days", k=3, query_type="HYBRID")) == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"query_text": "x", "query_type": "FULL_TEXT"}, "must be one of ['ANN', 'HYBRID']"),
        ({"query_text": "x", "query_type": "SEMANTIC"}, "must be one of ['ANN', 'HYBRID']"),
        ({"query_vector": HOLIDAY_VECTOR, "query_type": "HYBRID"}, "A HYBRID query needs 'query_text'"),
        ({"query_text": "x", "query_vector": HOLIDAY_VECTOR}, "not both"),
    ],
)
def test_query_types_and_their_inputs(ws, body, message):
    answer = _raw_query(ws, INDEX, {"columns": ["id"], **body})
    assert answer.status_code == 400 and answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in answer.json()["message"] and "\n" not in answer.json()["message"]


# -- query_vector ------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["parental leave salary", "how do I book flights", GIBBERISH])
def test_query_vector_ranks_like_the_query_text_it_embeds(ws, question):
    index = _index(ws, INDEX)
    by_text = _search(index, query_text=question, columns=["id", "title"], num_results=10)
    by_vector = _search(index, query_vector=embed(question), columns=["id", "title"], num_results=10)
    assert by_vector["result"] == by_text["result"]

    sdk = WorkspaceClient(host=ws.url, token=ws.issue_token("alice")).vector_search_indexes
    answer = sdk.query_index(INDEX, columns=["id", "title"], query_vector=embed(question), num_results=10)
    assert answer.result.data_array == by_text["result"]["data_array"]


def _raw_query(ws: LocalWorkspace, index: str, body: dict, who: str = "alice") -> httpx.Response:
    # Raw HTTP for bodies the clients would not build (the SDK and the client send only lists of floats).
    headers = {"Authorization": f"Bearer {ws.issue_token(who)}", "Content-Type": "application/json"}
    return httpx.post(f"{ws.url}/api/2.0/vector-search/indexes/{index}/query", content=json.dumps(body), headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("vector", "problem"),
    [
        pytest.param([0.1] * 3, "got a list of 3", id="too-short"),
        pytest.param([0.1] * (DIMENSION + 1), f"got a list of {DIMENSION + 1}", id="too-long"),
        pytest.param([], "got a list of 0", id="empty"),
        pytest.param(["0.1"] * DIMENSION, "item 0 is '0.1'", id="strings"),
        pytest.param([True] * DIMENSION, "item 0 is True", id="booleans"),
        pytest.param([[0.1]] * DIMENSION, "item 0 is [0.1]", id="nested"),
        pytest.param([0.1] * (DIMENSION - 1) + [1e39], "item 1023 (1e+39) is not a finite 32-bit float", id="beyond-float32"),
        pytest.param("0.1, 0.2", "got '0.1, 0.2'", id="a-string"),
        pytest.param({"values": [0.1]}, "got {'values': [0.1]}", id="an-object"),
    ],
)
@pytest.mark.parametrize("index", [INDEX, FAQ])
def test_bad_query_vectors_are_one_clear_bad_request(ws, index, vector, problem):
    answer = _raw_query(ws, index, {"columns": ["id"], "query_vector": vector})
    body = answer.json()
    assert (answer.status_code, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert body["message"].startswith(f"Field 'query_vector' must be a list of {DIMENSION} numbers (the index's embedding dimension); ")
    assert problem in body["message"] and "\n" not in body["message"]


@pytest.mark.parametrize("index", [INDEX, FAQ])
def test_a_nan_in_a_query_vector_is_not_json_and_one_clear_bad_request(ws, index):
    answer = _raw_query(ws, index, {"columns": ["id"], "query_vector": [0.1] * (DIMENSION - 1) + [math.nan]})
    assert (answer.status_code, answer.json()["error_code"]) == (400, "MALFORMED_REQUEST")
    assert answer.json()["message"] == "The request body is not valid JSON (NaN is not a JSON value)."


def test_the_client_reports_a_bad_vector(ws):
    with pytest.raises(BadRequest, match=r"query_vector.*got a list of 2"):
        _search(_index(ws, FAQ), query_vector=[0.5, 0.5], columns=["id"])


# -- Direct Vector Access indexes --------------------------------------------------------------


def test_direct_access_index_is_described_as_the_sdk_and_the_tools_read_it(ws):
    index = _index(ws, FAQ)
    description = index.describe()
    assert (description["name"], description["endpoint_name"], description["index_type"], description["primary_key"]) == (FAQ, ENDPOINT, "DIRECT_ACCESS", "id")
    spec = description["direct_access_index_spec"]
    assert spec["embedding_vector_columns"] == [{"name": "vec", "embedding_dimension": DIMENSION}]
    assert json.loads(spec["schema_json"]) == {"id": "long", "question": "string", "answer": "string", "topic": "string", "vec": "array<float>"}
    assert "delta_sync_index_spec" not in description and description["status"]["indexed_row_count"] == len(FAQ_ROWS)
    index.wait_until_ready()  # returns at once: ONLINE_DIRECT_ACCESS is an online state

    details = IndexDetails(index)
    assert details.is_direct_access_index() and not details.is_databricks_managed_embeddings()
    assert details.embedding_vector_column == {"name": "vec", "embedding_dimension": DIMENSION}

    w = WorkspaceClient(host=ws.url, token=ws.issue_token("alice"))
    sdk_index = w.vector_search_indexes.get_index(FAQ)
    assert sdk_index.index_type == VectorIndexType.DIRECT_ACCESS
    assert sdk_index.direct_access_index_spec.embedding_vector_columns[0].embedding_dimension == DIMENSION
    assert {i.name: i.index_type for i in w.vector_search_indexes.list_indexes(endpoint_name=ENDPOINT)} == {
        INDEX: VectorIndexType.DELTA_SYNC,
        FAQ: VectorIndexType.DIRECT_ACCESS,
    }
    # Unity Catalog describes it as a table: its scalar columns, primary key not nullable.
    table = w.tables.get(FAQ)
    assert [(c.name, c.nullable) for c in table.columns] == [("id", False), ("question", True), ("answer", True), ("topic", True)]


def test_direct_access_index_is_queried_by_vector(ws):
    index = _index(ws, FAQ)
    # A row's vector computed from its embed_from text: that text's embedding finds it first, at score 1.
    result = _search(index, query_vector=embed(FAQ_ROWS[1]["answer"]), columns=["id", "topic"], num_results=4)
    assert _rows(result)[0] == [2, "travel", 1.0]
    assert len(_rows(result)) == 4 and _in_range(_scores(result))
    # A row whose vector the seed gives is found by that vector, and returns it as a column.
    (row,) = _rows(_search(index, query_vector=HOLIDAY_VECTOR, columns=["id", "vec"], num_results=1))
    assert row[0] == 4 and row[1] == HOLIDAY_VECTOR and row[2] == 1.0
    # HYBRID on an index without a model: query_text (the keyword part) with query_vector.
    hybrid = _search(index, query_text="travel portal", query_vector=embed("travel portal"), query_type="HYBRID", columns=["id"], num_results=2)
    assert _ids(hybrid)[0] == 2
    # Filters apply as on any index.
    assert sorted(_ids(_search(index, query_vector=HOLIDAY_VECTOR, columns=["id"], filters={"topic": ["it", "finance"]}))) == [1, 3]

    sdk = WorkspaceClient(host=ws.url, token=ws.issue_token("carol")).vector_search_indexes
    answer = sdk.query_index(FAQ, columns=["id", "answer"], query_vector=embed(FAQ_ROWS[2]["answer"]), num_results=2)
    assert answer.result.data_array[0][:2] == [3, FAQ_ROWS[2]["answer"]]


@pytest.mark.parametrize("query_type", ["ANN", "HYBRID"])
def test_direct_access_index_has_no_model_for_query_text(ws, query_type):
    with pytest.raises(BadRequest) as excinfo:
        _search(_index(ws, FAQ), query_text="travel", columns=["id"], query_type=query_type)
    message = str(excinfo.value)
    assert excinfo.value.status_code == 400
    assert "Direct Vector Access index with no embedding model" in message and f"send 'query_vector', a list of {DIMENSION} numbers" in message


def test_langchain_tool_over_a_direct_access_index(ws):
    w = WorkspaceClient(host=ws.url, token=ws.issue_token("alice"))
    tool = VectorSearchRetrieverTool(
        index_name=FAQ, workspace_client=w, text_column="answer", embedding=LocalEmbeddings(), columns=["topic"], num_results=2
    )
    documents = tool.invoke({"query": "Book flights and hotels through the travel portal."}).split("Document(")[1:]
    assert len(documents) == 2 and "travel portal" in documents[0]

    with pytest.raises(ValueError, match="not in the index schema"):  # the tool checks columns against schema_json
        VectorSearchRetrieverTool(index_name=FAQ, workspace_client=w, text_column="answer", embedding=LocalEmbeddings(), columns=["nope"])


def test_bob_may_not_read_the_direct_access_index(ws):
    with pytest.raises(PermissionDenied) as excinfo:
        _index(ws, FAQ, who="bob")
    assert excinfo.value.status_code == 403 and "bob@example.com" in str(excinfo.value)
    answer = _raw_query(ws, FAQ, {"columns": ["id"], "query_vector": HOLIDAY_VECTOR}, who="bob")
    assert answer.status_code == 403 and answer.json()["error_code"] == "PERMISSION_DENIED"
    with pytest.raises(SdkPermissionDenied):
        WorkspaceClient(host=ws.url, token=ws.issue_token("bob")).vector_search_indexes.get_index(FAQ)
    denied = ws.audit()[-1]
    assert (denied.principal, denied.resource, denied.decision) == ("bob@example.com", f"index:{FAQ}", "deny")


# -- the row filter, whatever the query ---------------------------------------------------------


@pytest.mark.parametrize("by", ["query_text", "query_vector"])
def test_row_filter_hides_hr_rows_from_carol_in_both_query_kinds(ws, by):
    question = "parental leave salary"
    query = {"query_text": question} if by == "query_text" else {"query_vector": embed(question)}
    alice = _search(_index(ws, INDEX), columns=["id", "audience"], num_results=30, **query)
    carol = _search(_index(ws, INDEX, who="carol"), columns=["id", "audience"], num_results=30, **query)
    assert set(_ids(alice)) == set(HANDBOOK)
    assert set(_ids(carol)) == set(HANDBOOK) - HR_IDS and {row[1] for row in _rows(carol)} == {"all"}
    # Carol's rows rank and score as they do for alice: the rows she sees, in the same order.
    assert _rows(carol) == [row for row in _rows(alice) if row[0] not in HR_IDS]
    record = ws.audit()[-1]
    assert record.principal == "carol@example.com" and f"row filter hid {len(HR_IDS)} rows" in record.reason


# -- properties ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(ws):
    with httpx.Client(base_url=ws.url, headers={"Authorization": f"Bearer {ws.issue_token('alice')}"}, timeout=30) as client:
        yield client


def _query(http: httpx.Client, body: dict) -> list[list]:
    answer = http.post(f"/api/2.0/vector-search/indexes/{INDEX}/query", json={"columns": ["id"], **body})
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]["data_array"]


def _check_ranking(rows: list[list], num_results: int) -> None:
    scores = [s for _, s in rows]
    assert len(rows) == num_results
    assert all(0 < s <= 1 for s in scores)
    # Best first; equal scores in primary-key order.
    assert [(-s, i) for i, s in rows] == sorted((-s, i) for i, s in rows)


@settings(max_examples=60)
@given(question=st.text(max_size=60), num_results=st.integers(1, 30), query_type=st.sampled_from(["ANN", "HYBRID"]))
def test_text_queries_score_in_range_and_rank_deterministically(http, question, num_results, query_type):
    body = {"query_text": question, "num_results": num_results, "query_type": query_type}
    rows = _query(http, body)
    _check_ranking(rows, num_results)
    assert _query(http, body) == rows


@settings(max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1e-30, 1e-3, 1.0, 40.0, 1e6, 3e38]))
def test_any_vector_scores_in_range_and_ranks_deterministically(http, seed, scale):
    # The ai-bridge suite queries with random.uniform(-1, 1) vectors; here any size up to float32's largest.
    vector = (np.random.default_rng(seed).uniform(-1, 1, DIMENSION) * scale).tolist()
    rows = _query(http, {"query_vector": vector, "num_results": 30})
    _check_ranking(rows, 30)
    assert _query(http, {"query_vector": vector, "num_results": 30}) == rows


# -- seeds with a direct-access index: one clear message per problem ----------------------------


def _faq_seed(change) -> dict:
    seed = _seed_with_faq()
    change(seed["indexes"][1])
    return seed


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda i: (i.pop("embed_from"), i.update(rows=i["rows"][2:])),
            "field 'indexes[1].rows[0].vec': required: the row's vector, unless the index names an embed_from",
            id="no-vector",
        ),
        pytest.param(lambda i: i["rows"][3].update(vec=[0.5] * 3), f"field 'indexes[1].rows[3].vec': expected a list of {DIMENSION} numbers (embedding_dimension), got a list of 3", id="short-vector"),
        pytest.param(lambda i: i["rows"][3].update(vec=["a"] * DIMENSION), "field 'indexes[1].rows[3].vec': expected a list of 1024 numbers (embedding_dimension), got a list whose item 0 is 'a'", id="vector-of-strings"),
        pytest.param(lambda i: i["rows"][2].pop("answer"), "field 'indexes[1].rows[2].answer': required: the text the row's vector is computed from (embed_from)", id="no-text-to-embed"),
        pytest.param(lambda i: i["rows"][0].update(answer=5), "field 'indexes[1].rows[0].answer': expected a value of type string, got 5", id="text-not-a-string"),
        pytest.param(lambda i: i["rows"][1].update(team="x"), "field 'indexes[1].rows[1].team': not a column of the index; columns: answer, id, question, topic, vec", id="unknown-column"),
        pytest.param(lambda i: i["rows"][1].update(id="two"), "field 'indexes[1].rows[1].id': expected a value of type int, got 'two'", id="wrong-type"),
        pytest.param(lambda i: i["rows"][1].update(id=1), "field 'indexes[1].rows[1].id': the row repeats the primary key 1 of rows[0]", id="duplicate-key"),
        pytest.param(lambda i: i["rows"][1].pop("id"), "field 'indexes[1].rows[1].id': the row has no id, the index's primary key", id="no-key"),
        pytest.param(lambda i: i.update(primary_key="uid"), "field 'indexes[1].primary_key': 'uid' is not a column of the index; columns: answer, id, question, topic", id="key-not-a-column"),
        pytest.param(lambda i: i.update(embed_from="id"), "field 'indexes[1].embed_from': 'id' is not a string column of the index", id="embed-from-int"),
        pytest.param(lambda i: (i.update(embedding_dimension=16), i["rows"][3].pop("vec")), "field 'indexes[1].embed_from': the local embedding model makes 1024-dimensional vectors, not 16", id="embed-from-wrong-dimension"),
        pytest.param(lambda i: i.update(embedding_vector_column="answer"), "field 'indexes[1].embedding_vector_column': 'answer' is also a column", id="vector-column-clash"),
        pytest.param(lambda i: i.update(endpoint="nope"), "field 'indexes[1].endpoint': 'nope' is not a declared vector_search_endpoint", id="unknown-endpoint"),
        pytest.param(lambda i: i.update(source_table="main.docs.handbook"), "field 'indexes[1].source_table': unknown field", id="delta-sync-field"),
        pytest.param(lambda i: i.pop("embedding_vector_column"), "field 'indexes[1].embedding_vector_column': required field is missing", id="no-vector-column"),
        pytest.param(lambda i: i.update(index_type="DIRECT"), "field 'indexes[1]", id="unknown-index-type"),
        pytest.param(lambda i: i.update(embedding_dimension=0), "field 'indexes[1].embedding_dimension'", id="zero-dimension"),
    ],
)
def test_bad_direct_access_seeds_are_refused_with_one_clear_message(change, expected):
    with pytest.raises(SeedError) as excinfo:
        LocalWorkspace(_faq_seed(change))
    problems = str(excinfo.value).splitlines()[1:]
    assert any(expected in p for p in problems), problems
    assert len(problems) == 1, problems


def test_unknown_index_type_names_the_choices():
    with pytest.raises(SeedError, match=r"'DELTA_SYNC'.*'DIRECT_ACCESS'"):
        LocalWorkspace(_faq_seed(lambda i: i.update(index_type="DIRECT")))


def test_a_delta_sync_index_may_still_leave_index_type_out():
    seed = default_seed()
    assert "index_type" not in seed["indexes"][0]
    explicit = copy.deepcopy(seed)
    explicit["indexes"][0]["index_type"] = "DELTA_SYNC"
    assert seed_module.load_seed(explicit) == seed_module.load_seed(seed)


def test_a_dumped_seed_loads_again_with_both_kinds_of_index():
    seed = seed_module.load_seed(_seed_with_faq())
    dumped = seed.model_dump()
    assert [i["index_type"] for i in dumped["indexes"]] == ["DELTA_SYNC", "DIRECT_ACCESS"]
    assert dumped["indexes"][1]["rows"][0] == FAQ_ROWS[0]
    assert seed_module.load_seed(dumped) == seed


def test_an_index_counts_only_the_rows_the_caller_may_read():
    """Found by an adversarial review: the index's row count told carol how many rows her row filter hid."""
    with LocalWorkspace() as ws:
        counts = {
            who: WorkspaceClient(host=ws.url, token=ws.issue_token(who)).vector_search_indexes.get_index("main.docs.handbook_index").status.indexed_row_count
            for who in ("alice", "carol")
        }
    assert counts == {"alice": 30, "carol": 24}
