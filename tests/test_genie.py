"""The local workspace's Genie spaces, driven by the released clients over real HTTP:
databricks_ai_bridge's ``Genie``, databricks-sdk's ``GenieAPI`` and databricks_langchain's
``GenieAgent`` (a RunnableLambda over ``Genie``: it needs no LLM, so it runs here as it is).

The seed is the default seed plus three spaces (``SPACES``): "HR analytics" over
main.hr.employees, which every identity may run; "Handbook topics" over the handbook and the
employees, which alice manages, carol may only view and bob may not see; "Private numbers",
on a warehouse only alice may use. Who sees what of main.hr.employees comes from the default
seed: alice (group hr) every row and salary, carol no executive row and no salary (a row
filter and a mask), bob nothing (no SELECT). A service principal ``report-bot`` may read the
table; obo-agent may not. alice may also read the handbook table (the default seed grants only its index). Nothing is mocked but two module constants (the conversation bounds).
Siblings: tests/test_sql_warehouses.py (the SQL Genie's answers run through).
"""

from __future__ import annotations

import copy
import json

import httpx
import pandas as pd
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, NotFound, OperationFailed, PermissionDenied
from databricks.sdk.service.dashboards import MessageStatus
from databricks.sdk.service.sql import StatementState
from databricks_ai_bridge.genie import Genie

from obo_auth.local import LocalWorkspace, SeedError
from obo_auth.local.genie import conversations
from obo_auth.local.genie.questions import Plan, Unanswerable, plan
from obo_auth.local.genie.routes import MAX_QUESTION_CHARS
from obo_auth.local.genie.seed import derived_space_id
from obo_auth.local.sql.seed import derived_warehouse_id
from seeds import default_seed

EMPLOYEES = "main.hr.employees"
HR = derived_space_id("HR analytics")
HANDBOOK = "01f0aa11bb22cc33dd44ee55ff667788"
PRIVATE = derived_space_id("Private numbers")
SPACES = [
    {"title": "HR analytics", "description": "Employees, their teams and salaries.", "warehouse": "local-warehouse", "tables": [EMPLOYEES]},
    {"title": "Handbook topics", "id": HANDBOOK, "warehouse": "local-warehouse", "tables": ["main.docs.handbook", EMPLOYEES]},
    {"title": "Private numbers", "warehouse": "private warehouse", "tables": [EMPLOYEES]},
]
GRANTS = [
    {"principal": "users", "privilege": "CAN_RUN", "on": {"genie_space": "HR analytics"}},
    {"principal": "alice@example.com", "privilege": "CAN_MANAGE", "on": {"genie_space": "Handbook topics"}},
    {"principal": "carol@example.com", "privilege": "CAN_VIEW", "on": {"genie_space": "Handbook topics"}},
    {"principal": "users", "privilege": "CAN_RUN", "on": {"genie_space": "Private numbers"}},
    {"principal": "alice@example.com", "privilege": "CAN_USE", "on": {"sql_warehouse": "private warehouse"}},
    {"principal": "report-bot", "privilege": "SELECT", "on": {"table": EMPLOYEES}},
    {"principal": "alice@example.com", "privilege": "SELECT", "on": {"table": "main.docs.handbook"}},
]
# Every employee, as alice sees them; carol sees the first four, without salaries.
ALL_EMPLOYEES = [(1, "Alice Adams", 98000), (2, "Bob Brown", 121000), (3, "Carol Chen", 134000), (4, "Dana Diaz", 87000), (5, "Evan Evans", 310000)]


def _seed() -> dict:
    seed = copy.deepcopy(default_seed())
    seed["genie_spaces"] = copy.deepcopy(SPACES)
    seed["sql_warehouses"].append({"name": "private warehouse"})
    seed["service_principals"].append({"name": "report-bot"})
    seed["grants"] += copy.deepcopy(GRANTS)
    return seed


@pytest.fixture(scope="module")
def ws():
    with LocalWorkspace(_seed()) as workspace:
        yield workspace


def _client(ws: LocalWorkspace, who: str, scopes: list[str] | None = None, actor: str | None = None) -> WorkspaceClient:
    return WorkspaceClient(host=ws.url, token=ws.issue_token(who, scopes=scopes, actor=actor))


def _m2m(ws: LocalWorkspace, service_principal: str) -> WorkspaceClient:
    client_id, client_secret = ws.client_credentials(service_principal)
    return WorkspaceClient(host=ws.url, client_id=client_id, client_secret=client_secret)


def _employees(frame: pd.DataFrame) -> list[tuple]:
    return [(row.id, row.name, None if pd.isna(row.salary) else row.salary) for row in frame.itertuples()]


def _genie_records(ws: LocalWorkspace) -> list:
    return [r for r in ws.audit() if r.path.startswith("/api/2.0/genie/")]


# -- spaces ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "visible"),
    [("alice", {HR, HANDBOOK, PRIVATE}), ("carol", {HR, HANDBOOK, PRIVATE}), ("bob", {HR, PRIVATE})],
)
def test_a_space_is_listed_and_read_only_by_those_with_a_privilege_on_it(ws, who, visible):
    w = _client(ws, who)
    assert {s.space_id for s in w.genie.list_spaces().spaces} == visible
    hr = w.genie.get_space(HR)
    assert (hr.title, hr.description, hr.warehouse_id) == ("HR analytics", "Employees, their teams and salaries.", derived_warehouse_id("local-warehouse"))
    if HANDBOOK not in visible:
        # A space the caller may not see is answered as one that does not exist: the same 404.
        with pytest.raises(NotFound, match=f"Genie space '{HANDBOOK}' does not exist or you do not have access to it"):
            w.genie.get_space(HANDBOOK)
        with pytest.raises(NotFound, match="does not exist or you do not have access to it"):
            w.genie.start_conversation_and_wait(HANDBOOK, "How many employees are there?")
    with pytest.raises(NotFound, match="Genie space 'ffffffffffffffffffffffffffffffff' does not exist or you do not have access to it"):
        w.genie.get_space("f" * 32)


def test_a_model_declares_a_space_by_its_id(ws):
    assert ws.state.resource_names()["genie_space"] == sorted([HR, HANDBOOK, PRIVATE])


def test_list_spaces_pages(ws):
    w = _client(ws, "alice")
    first = w.genie.list_spaces(page_size=2)
    second = w.genie.list_spaces(page_size=2, page_token=first.next_page_token)
    assert len(first.spaces) == 2 and len(second.spaces) == 1 and second.next_page_token is None
    assert {s.space_id for s in first.spaces + second.spaces} == {HR, HANDBOOK, PRIVATE}


def test_the_serialized_space_needs_can_edit(ws):
    exported = json.loads(_client(ws, "alice").genie.get_space(HANDBOOK, include_serialized_space=True).serialized_space)
    assert exported["version"] == 2
    assert [t["identifier"] for t in exported["data_sources"]["tables"]] == ["main.docs.handbook", EMPLOYEES]
    assert exported["config"]["sample_questions"][0]["question"] == ["How many handbook are there?"]
    assert _client(ws, "carol").genie.get_space(HANDBOOK).serialized_space is None
    with pytest.raises(PermissionDenied, match="does not have CAN_EDIT on Genie space 'Handbook topics'"):
        _client(ws, "carol").genie.get_space(HANDBOOK, include_serialized_space=True)


# -- who the questions run as: the bridge's Genie, the SDK, GenieAgent --------------------------------


@pytest.mark.parametrize(("who", "expected"), [("alice", ALL_EMPLOYEES), ("carol", [(i, n, None) for i, n, _ in ALL_EMPLOYEES[:4]])])
def test_genie_answers_with_what_the_user_may_see(ws, who, expected):
    genie = Genie(HR, client=_client(ws, who), return_pandas=True)
    assert genie.description == "Employees, their teams and salaries."
    answer = genie.ask_question("List all employees")
    assert _employees(answer.result) == expected
    assert answer.query == "SELECT `id`, `name`, `email`, `team`, `salary` FROM `main`.`hr`.`employees` ORDER BY `id`"
    assert answer.description == "Lists every column of main.hr.employees, ordered by id."
    assert answer.text_attachment_content == f"Here are {len(expected)} employees."
    assert answer.conversation_id


@pytest.mark.parametrize(("who", "count", "average"), [("alice", "5", "150000.0"), ("carol", "4", None)])
def test_the_sdk_reads_the_message_and_its_query_result(ws, who, count, average):
    w = _client(ws, who)
    message = w.genie.start_conversation_and_wait(HR, "How many employees are there?")
    assert message.status == MessageStatus.COMPLETED and message.space_id == HR
    query, text = message.attachments
    assert query.query.query == "SELECT COUNT(*) AS `count` FROM `main`.`hr`.`employees`"
    assert (query.query.title, query.query.query_result_metadata.row_count) == ("Number of employees", 1)
    assert text.text.content == f"There are {count} employees."
    result = w.genie.get_message_attachment_query_result(HR, message.conversation_id, message.message_id, query.attachment_id)
    assert result.statement_response.status.state == StatementState.SUCCEEDED
    assert result.statement_response.result.data_array == [[count]]
    # The deprecated routes give the same statement.
    assert w.genie.get_message_query_result(HR, message.conversation_id, message.message_id).statement_response.statement_id == query.query.statement_id
    by_attachment = w.genie.get_message_query_result_by_attachment(HR, message.conversation_id, message.message_id, query.attachment_id)
    assert by_attachment.statement_response.result.data_array == [[count]]
    # The answer ran as an ordinary statement of the SQL service: the user can read it back, no one else can.
    assert w.statement_execution.get_statement(query.query.statement_id).result.data_array == [[count]]
    other = "carol" if who == "alice" else "alice"
    with pytest.raises(NotFound):
        _client(ws, other).statement_execution.get_statement(query.query.statement_id)
    averaged = w.genie.start_conversation_and_wait(HR, "What is the average salary?")
    assert averaged.attachments[1].text.content == f"The average salary of employees is {average or 'NULL'}."


def test_bob_without_select_gets_a_failed_message_in_the_platforms_shape(ws):
    w = _client(ws, "bob")
    waiter = w.genie.start_conversation(HR, "How many employees are there?")
    assert waiter.response.message.status == MessageStatus.SUBMITTED
    with pytest.raises(OperationFailed, match="failed to reach COMPLETED, got MessageStatus.FAILED"):
        waiter.result()
    message = w.genie.get_message(HR, waiter.conversation_id, waiter.message_id)
    assert message.status == MessageStatus.FAILED
    assert message.error.type.value == "SQL_EXECUTION_EXCEPTION"
    assert message.error.error.startswith("[INSUFFICIENT_PERMISSIONS] Insufficient privileges:")
    assert "User bob@example.com does not have SELECT on table 'main.hr.employees'" in message.error.error
    # The query attachment stays, with its failed statement.
    (query,) = message.attachments
    result = w.genie.get_message_attachment_query_result(HR, message.conversation_id, message.message_id, query.attachment_id)
    assert result.statement_response.status.state == StatementState.FAILED
    answer = Genie(HR, client=w).ask_question("List all employees")
    assert answer.result.startswith("Genie query failed with error: ") and "INSUFFICIENT_PERMISSIONS" in answer.result


def test_running_a_space_needs_can_run(ws):
    carol = _client(ws, "carol")  # CAN_VIEW on Handbook topics: she sees it, and may not ask it
    assert carol.genie.get_space(HANDBOOK).title == "Handbook topics"
    with pytest.raises(PermissionDenied, match="User carol@example.com does not have CAN_RUN on Genie space 'Handbook topics'"):
        carol.genie.start_conversation(HANDBOOK, "How many employees are there?")
    # alice's CAN_MANAGE includes running it; she reads both of its tables.
    alice = _client(ws, "alice")
    message = alice.genie.start_conversation_and_wait(HANDBOOK, "How many handbook passages are there per audience?")
    assert alice.genie.get_message_attachment_query_result(
        HANDBOOK, message.conversation_id, message.message_id, message.attachments[0].attachment_id
    ).statement_response.result.data_array == [["all", "24"], ["hr", "6"]]


def test_genie_agent_runs_without_an_llm(ws):
    from databricks_langchain import GenieAgent

    agent = GenieAgent(HR, client=_client(ws, "carol"), include_context=True)
    answer = agent.invoke({"messages": [{"role": "user", "content": "How many employees are there?"}]})
    reasoning, sql, result = answer["messages"]
    assert (reasoning.content, sql.content) == ("Counts the rows of main.hr.employees.", "SELECT COUNT(*) AS `count` FROM `main`.`hr`.`employees`")
    assert result.content.splitlines()[-1].split("|")[-2].strip() == "4"
    follow_up = agent.invoke({"messages": [{"role": "user", "content": "Top 2 employees by id"}], "conversation_id": answer["conversation_id"]})
    assert follow_up["conversation_id"] == answer["conversation_id"]
    assert "Dana Diaz" in follow_up["messages"][-1].content and "Alice Adams" not in follow_up["messages"][-1].content


# -- conversations ---------------------------------------------------------------------------------


def test_a_follow_up_asks_about_the_table_of_the_previous_question(ws):
    w = _client(ws, "alice")
    first = w.genie.start_conversation_and_wait(HANDBOOK, "How many handbook passages are there?")
    assert first.attachments[1].text.content == "There are 30 handbook."
    # Names a column of the handbook only: the conversation's table.
    follow_up = w.genie.create_message_and_wait(HANDBOOK, first.conversation_id, "List the titles where audience is 'HR'")
    assert follow_up.conversation_id == first.conversation_id and follow_up.status == MessageStatus.COMPLETED
    assert follow_up.attachments[0].query.query == (
        "SELECT `title` FROM `main`.`docs`.`handbook` WHERE LOWER(`audience`) = 'hr' ORDER BY `title`"
    )
    assert follow_up.attachments[1].text.content == "Here are 6 handbook where audience is hr."
    listed = w.genie.list_conversations(HANDBOOK)
    assert listed.conversations[0].conversation_id == first.conversation_id
    assert listed.conversations[0].title == "How many handbook passages are there?"
    # alice manages the space: she may list everyone's conversations in it.
    assert first.conversation_id in {c.conversation_id for c in w.genie.list_conversations(HANDBOOK, include_all=True).conversations}


def test_a_question_it_cannot_map_gets_a_completed_text_reply(ws):
    w = _client(ws, "carol")
    message = w.genie.start_conversation_and_wait(HR, "What's the weather like tomorrow?")
    assert message.status == MessageStatus.COMPLETED
    text, suggestions = message.attachments
    assert text.text.content.startswith("I can't answer that with the data in this space: it names none of this space's tables (employees)")
    assert suggestions.suggested_questions.questions[:2] == ["How many employees are there?", "List all employees"]
    with pytest.raises(BadRequest, match="has no query attachment"):
        w.genie.get_message_query_result(HR, message.conversation_id, message.message_id)
    with pytest.raises(BadRequest, match="is not a query attachment"):
        w.genie.get_message_attachment_query_result(HR, message.conversation_id, message.message_id, text.attachment_id)
    answer = Genie(HR, client=w).ask_question("Tell me a joke")
    assert answer.result == answer.text_attachment_content and answer.result.startswith("I can't answer that")
    assert answer.suggested_questions and answer.query == ""


def test_another_users_conversation_does_not_exist_for_them(ws):
    alice = _client(ws, "alice")
    message = alice.genie.start_conversation_and_wait(HR, "List all employees")
    carol = _client(ws, "carol")
    conversation, message_id, attachment = message.conversation_id, message.message_id, message.attachments[0].attachment_id
    for attempt in (
        lambda: carol.genie.get_message(HR, conversation, message_id),
        lambda: carol.genie.get_message_attachment_query_result(HR, conversation, message_id, attachment),
        lambda: carol.genie.create_message(HR, conversation, "How many employees are there?"),
        lambda: carol.genie.execute_message_attachment_query(HR, conversation, message_id, attachment),
        lambda: carol.genie.delete_conversation(HR, conversation),
    ):
        with pytest.raises(NotFound, match=f"Conversation '{conversation}' does not exist in this Genie space"):
            attempt()
    assert conversation not in {c.conversation_id for c in carol.genie.list_conversations(HR).conversations or []}
    # Only a CAN_MANAGE may list everyone's conversations.
    with pytest.raises(PermissionDenied, match="does not have CAN_MANAGE on Genie space 'HR analytics'"):
        carol.genie.list_conversations(HR, include_all=True)
    # The conversation is in HR analytics: asked through another space's id it does not exist either.
    with pytest.raises(NotFound, match="does not exist in this Genie space"):
        alice.genie.get_message(HANDBOOK, conversation, message_id)
    assert alice.genie.get_message(HR, conversation, message_id).status == MessageStatus.COMPLETED


def test_a_query_is_run_again_on_a_new_statement(ws):
    w = _client(ws, "carol")
    message = w.genie.start_conversation_and_wait(HR, "Top 2 employees by id")
    query = message.attachments[0]
    rerun = w.genie.execute_message_attachment_query(HR, message.conversation_id, message.message_id, query.attachment_id)
    assert rerun.statement_response.statement_id != query.query.statement_id
    assert [row[0] for row in rerun.statement_response.result.data_array] == ["4", "3"]
    assert w.genie.get_message(HR, message.conversation_id, message.message_id).attachments[0].query.statement_id == rerun.statement_response.statement_id


def test_a_deleted_conversation_is_gone(ws):
    w = _client(ws, "carol")
    message = w.genie.start_conversation_and_wait(HR, "How many employees are there?")
    w.genie.delete_conversation(HR, message.conversation_id)
    with pytest.raises(NotFound):
        w.genie.get_message(HR, message.conversation_id, message.message_id)


def test_conversations_are_bounded(ws, monkeypatch):
    monkeypatch.setattr(conversations, "MAX_MESSAGES", 2)
    monkeypatch.setattr(conversations, "MAX_CONVERSATIONS", 3)
    w = _client(ws, "carol")
    first = w.genie.start_conversation_and_wait(HR, "How many employees are there?")
    w.genie.create_message_and_wait(HR, first.conversation_id, "List all employees")
    with pytest.raises(BadRequest, match="already has 2 messages, the local workspace's limit; start a new conversation"):
        w.genie.create_message(HR, first.conversation_id, "List all employees")
    for _ in range(3):
        w.genie.start_conversation(HR, "How many employees are there?")
    with pytest.raises(NotFound):  # the oldest was forgotten
        w.genie.get_message(HR, first.conversation_id, first.message_id)


def test_one_users_many_conversations_never_push_out_anothers(ws, monkeypatch):
    """Found by an adversarial review: the bound was shared, so one user could evict everyone else's."""
    monkeypatch.setattr(conversations, "MAX_CONVERSATIONS", 3)
    alices = _client(ws, "alice").genie.start_conversation_and_wait(HR, "How many employees are there?")
    carol = _client(ws, "carol")
    for _ in range(5):
        carol.genie.start_conversation(HR, "How many employees are there?")
    assert _client(ws, "alice").genie.get_message(HR, alices.conversation_id, alices.message_id).status.value == "COMPLETED"


@pytest.mark.parametrize("question", ["top " + "9" * 5000 + " employees by salary", "list employees where salary is nan"])
def test_a_number_out_of_range_is_a_reply_not_a_failure(ws, question):
    message = _client(ws, "alice").genie.start_conversation_and_wait(HR, question)
    assert message.status.value == "COMPLETED" and message.attachments[0].text is not None


# -- identities, scopes, warehouses -------------------------------------------------------------------


def test_a_service_principal_asks_as_itself_per_its_grants(ws):
    bot = Genie(HR, client=_m2m(ws, "report-bot"), return_pandas=True).ask_question("List all employees")
    # SELECT granted, not in hr: the row filter and the mask apply to it as to carol.
    assert _employees(bot.result) == [(i, n, None) for i, n, _ in ALL_EMPLOYEES[:4]]
    agent = _m2m(ws, "obo-agent")
    with pytest.raises(OperationFailed):
        agent.genie.start_conversation_and_wait(HR, "List all employees")
    record = _genie_records(ws)[-2]  # the start-conversation (the last is the failed poll)
    assert (record.principal, record.path) == ("obo-agent", f"/api/2.0/genie/spaces/{HR}/start-conversation")
    assert "does not have SELECT on table 'main.hr.employees'" in record.reason


def test_a_downscoped_token_needs_the_genie_scope_and_no_sql_scope(ws):
    with pytest.raises(PermissionDenied, match="Invalid scope: .* needs the API scope 'dashboards.genie'"):
        _client(ws, "alice", scopes=["sql"], actor="obo-agent").genie.list_spaces()
    for scopes in (["genie"], ["dashboards.genie"]):
        w = _client(ws, "alice", scopes=scopes, actor="obo-agent")
        message = w.genie.start_conversation_and_wait(HR, "How many employees are there?")
        assert message.attachments[1].text.content == "There are 5 employees."
        record = _genie_records(ws)[-1]
        assert (record.principal, record.actor, record.needed_scope) == ("alice@example.com", "obo-agent", "dashboards.genie")


def test_a_user_who_may_not_use_the_warehouse_gets_a_failed_message(ws):
    carol = _client(ws, "carol")
    with pytest.raises(OperationFailed):
        carol.genie.start_conversation_and_wait(PRIVATE, "How many employees are there?")
    (conversation,) = carol.genie.list_conversations(PRIVATE).conversations
    messages = [r for r in _genie_records(ws) if r.path.endswith("/start-conversation")]
    assert "carol@example.com may not use sql_warehouse:private warehouse" in messages[-1].reason
    assert conversation.title == "How many employees are there?"
    alice = _client(ws, "alice").genie.start_conversation_and_wait(PRIVATE, "How many employees are there?")
    assert alice.attachments[1].text.content == "There are 5 employees."


def test_the_failed_message_names_the_warehouse(ws):
    carol = _client(ws, "carol")
    waiter = carol.genie.start_conversation(PRIVATE, "List all employees")
    message = carol.genie.get_message(PRIVATE, waiter.conversation_id, waiter.message_id)
    assert message.status == MessageStatus.FAILED and not message.attachments
    assert message.error.type.value == "WAREHOUSE_ACCESS_MISSING_EXCEPTION"
    assert message.error.error.startswith("You do not have CAN_USE on SQL warehouse 'private warehouse'")


def test_the_audit_names_the_space_the_statement_and_the_rows_hidden(ws):
    token = ws.issue_token("carol")
    WorkspaceClient(host=ws.url, token=token).genie.start_conversation(HR, "List all employees")
    record = next(r for r in reversed(_genie_records(ws)) if r.path.endswith("/start-conversation"))
    assert (record.principal, record.resource, record.decision, record.status) == ("carol@example.com", "genie_space:HR analytics", "allow", 200)
    assert record.reason.startswith("carol@example.com has CAN_RUN on Genie space HR analytics through group users; conversation ")
    assert "on sql_warehouse:local-warehouse: carol@example.com has CAN_USE on SQL warehouse local-warehouse" in record.reason
    assert record.reason.endswith("read main.hr.employees (row filter hid 1 rows)")
    assert all(token not in r.reason for r in ws.audit())


# -- bad input: one clear error each, never a 5xx ---------------------------------------------------


@pytest.fixture(scope="module")
def http(ws):
    with httpx.Client(base_url=ws.url, headers={"Authorization": f"Bearer {ws.issue_token('alice')}"}, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def answered(ws):
    message = _client(ws, "alice").genie.start_conversation_and_wait(HR, "How many employees are there?")
    return message.conversation_id, message.message_id, message.attachments[0].attachment_id, message.attachments[1].attachment_id


def _bad_requests(answered) -> list[tuple[str, str, bytes | None, int, str, str]]:
    conversation, message, query, text = answered
    base = f"/api/2.0/genie/spaces/{HR}"
    start = f"{base}/start-conversation"
    too_long = json.dumps({"content": "x" * (MAX_QUESTION_CHARS + 1)}).encode()
    return [
        ("POST", start, b'{"content": ""}', 400, "INVALID_PARAMETER_VALUE", "Field 'content' is empty"),
        ("POST", start, b'{"content": "  \\n "}', 400, "INVALID_PARAMETER_VALUE", "Field 'content' is empty"),
        ("POST", start, too_long, 400, "INVALID_PARAMETER_VALUE", f"the local Genie takes questions of at most {MAX_QUESTION_CHARS}"),
        ("POST", start, b'{"content": 42}', 400, "INVALID_PARAMETER_VALUE", "Field 'content' must be a string, got an integer"),
        ("POST", start, b"{}", 400, "INVALID_PARAMETER_VALUE", "Missing required field 'content'"),
        ("POST", start, b'{"content": "hi", "enable_visualization": "yes"}', 400, "INVALID_PARAMETER_VALUE", "'enable_visualization' must be a boolean"),
        ("POST", start, b'{"content": ', 400, "MALFORMED_REQUEST", "The request body is not valid JSON"),
        ("POST", start, b"[1]", 400, "MALFORMED_REQUEST", "The request body must be a JSON object"),
        ("POST", start, None, 400, "MALFORMED_REQUEST", "The request body is empty"),
        ("POST", "/api/2.0/genie/spaces/nope/start-conversation", b'{"content": "hi"}', 404, "RESOURCE_DOES_NOT_EXIST", "Genie space 'nope' does not exist"),
        ("POST", f"{base}/conversations/nope/messages", b'{"content": "hi"}', 404, "RESOURCE_DOES_NOT_EXIST", "Conversation 'nope' does not exist"),
        ("GET", f"{base}/conversations/{conversation}/messages/nope", None, 404, "RESOURCE_DOES_NOT_EXIST", "Message 'nope' does not exist"),
        ("GET", f"{base}/conversations/{conversation}/messages/{message}/attachments/nope/query-result", None, 404, "RESOURCE_DOES_NOT_EXIST", "Attachment 'nope' does not exist"),
        ("GET", f"{base}/conversations/{conversation}/messages/{message}/attachments/{text}/query-result", None, 400, "INVALID_PARAMETER_VALUE", "is not a query attachment"),
        ("GET", f"{base}?include_serialized_space=maybe", None, 400, "INVALID_PARAMETER_VALUE", "'include_serialized_space' must be true or false"),
        ("GET", "/api/2.0/genie/spaces?page_token=abc", None, 400, "INVALID_PARAMETER_VALUE", "'page_token' 'abc' is not a token this API returned"),
        ("GET", "/api/2.0/genie/spaces?page_size=0", None, 400, "INVALID_PARAMETER_VALUE", "'page_size' must be between 1 and"),
        ("PUT", start, b'{"content": "hi"}', 404, "ENDPOINT_NOT_FOUND", "No API found for 'PUT"),
    ]


def test_bad_input_gets_one_clear_error_and_never_a_5xx(ws, http, answered):
    before = len(_client(ws, "alice").genie.list_conversations(HR).conversations)
    for method, path, body, status, code, words in _bad_requests(answered):
        records = len(ws.audit())
        response = http.request(method, path, content=body, headers={"Content-Type": "application/json"})
        assert (response.status_code, response.json()["error_code"]) == (status, code), (path, response.text)
        message = response.json()["message"]
        assert words in message and "\n" not in message and "Traceback" not in message, message
        assert len(ws.audit()) == records + 1
    # A rejected question left no conversation behind.
    assert len(_client(ws, "alice").genie.list_conversations(HR).conversations) == before


# -- the seed ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s["genie_spaces"][0].update(warehouse="nope"), "field 'genie_spaces[0].warehouse': 'nope' is not a declared SQL warehouse name"),
        (lambda s: s["genie_spaces"][0]["tables"].append("main.hr.nope"), "field 'genie_spaces[0].tables[1]': 'main.hr.nope' is not a declared table"),
        (lambda s: s["genie_spaces"][0]["tables"].append("employees"), "field 'genie_spaces[0].tables[1]': expected a three-level name"),
        (lambda s: s["genie_spaces"][0]["tables"].append(EMPLOYEES), "field 'genie_spaces[0].tables[1]': 'main.hr.employees' already names genie_spaces[0].tables[0]"),
        (lambda s: s["genie_spaces"][1].update(title="HR analytics"), "field 'genie_spaces[1].title': 'HR analytics' already names genie_spaces[0].title"),
        (lambda s: s["genie_spaces"][1].update(id=HR), f"field 'genie_spaces[1].id': '{HR}' already names genie_spaces[0].id"),
        (lambda s: s["genie_spaces"][0].update(id="XYZ"), "field 'genie_spaces[0].id': expected 32 lowercase hex digits"),
        (lambda s: s["genie_spaces"][0].update(tables=[]), "field 'genie_spaces[0].tables'"),
        (lambda s: s["genie_spaces"][0].pop("warehouse"), "field 'genie_spaces[0].warehouse': required field is missing"),
        (lambda s: s["grants"].append({"principal": "bob@example.com", "privilege": "CAN_RUN", "on": {"genie_space": HR}}), "is not a declared genie_space"),
        (lambda s: s["grants"].append({"principal": "bob@example.com", "privilege": "SELECT", "on": {"genie_space": "HR analytics"}}), "'SELECT' is not a privilege on a Genie space"),
    ],
)
def test_a_bad_genie_seed_says_what_is_wrong(change, problem):
    seed = _seed()
    change(seed)
    with pytest.raises(SeedError, match="invalid seed") as raised:
        LocalWorkspace(seed)
    assert problem in str(raised.value)


def test_a_space_id_is_derived_from_its_title_when_omitted():
    assert HR == derived_space_id("HR analytics") and len(HR) == 32 and int(HR, 16) >= 0


# -- the question patterns (questions.py), without HTTP --------------------------------------------

TABLES = {EMPLOYEES: {"id": "int", "name": "string", "email": "string", "team": "string", "salary": "int"}}


@pytest.mark.parametrize(
    ("question", "sql"),
    [
        ("How many employees are there?", "SELECT COUNT(*) AS `count` FROM `main`.`hr`.`employees`"),
        ("how many employees per team", "SELECT `team`, COUNT(*) AS `count` FROM `main`.`hr`.`employees` GROUP BY `team` ORDER BY `count` DESC, `team`"),
        ("Count the employees where team is Engineering", "SELECT COUNT(*) AS `count` FROM `main`.`hr`.`employees` WHERE LOWER(`team`) = 'engineering'"),
        ("list the names and teams of employees", "SELECT `name`, `team` FROM `main`.`hr`.`employees` ORDER BY `name`"),
        ("show the distinct teams", "SELECT DISTINCT `team` FROM `main`.`hr`.`employees` ORDER BY `team`"),
        ("Top 3 employees by salary", "SELECT `id`, `name`, `email`, `team`, `salary` FROM `main`.`hr`.`employees` ORDER BY `salary` DESC, `id` LIMIT 3"),
        ("which employee has the lowest salary?", "SELECT `id`, `name`, `email`, `team`, `salary` FROM `main`.`hr`.`employees` ORDER BY `salary` ASC NULLS LAST, `id` LIMIT 1"),
        ("What is the average salary by team?", "SELECT `team`, AVG(`salary`) AS `average_salary` FROM `main`.`hr`.`employees` GROUP BY `team` ORDER BY `team`"),
        ("total salaries where id = 3", "SELECT SUM(`salary`) AS `total_salary` FROM `main`.`hr`.`employees` WHERE `id` = 3"),
        ("chat history\nuser: how many employees?", "SELECT COUNT(*) AS `count` FROM `main`.`hr`.`employees`"),
        # A value is a literal, quoted and escaped by sqlglot: it cannot end the string.
        ("list employees whose name is \"x' OR 1=1; --\"", "SELECT `id`, `name`, `email`, `team`, `salary` FROM `main`.`hr`.`employees` WHERE LOWER(`name`) = 'x\\' or 1=1; --' ORDER BY `id`"),
    ],
)
def test_a_question_pattern_becomes_its_sql(question, sql):
    answer = plan(question, TABLES)
    assert isinstance(answer, Plan) and answer.sql == sql


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("What's the weather like?", "it names none of this space's tables (employees) or their columns"),
        ("average name of employees", "name is a string column: I can only take the average of a number"),
        ("top 5000 employees by salary", "I rank between 1 and 1000 rows, not 5000"),
        ("list employees where salary is high", "salary is a number, not 'high'"),
        ("list employees where shoe is 9", "main.hr.employees has no column 'shoe' to filter on"),
        ("list employees where team resembles sales", 'I read a filter only as "where <column> is <value>"'),
        ("employees salaries", "it fits none of the question patterns I know"),
    ],
)
def test_a_question_no_pattern_fits_says_why(question, reason):
    answer = plan(question, TABLES)
    assert isinstance(answer, Unanswerable) and answer.reason.startswith(reason)
