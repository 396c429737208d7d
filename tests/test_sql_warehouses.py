"""The local workspace's SQL warehouses, driven by databricks-sdk's WorkspaceClient over real HTTP.

Who sees what comes from the default seed: alice (group hr) reads every row and salary of
main.hr.employees, carol reads it through a row filter that hides the executive row and a mask
that hides salaries, bob may not read it; everyone may use the warehouse and call
main.tools.whoami(). A second workspace (the ``custom`` fixture) adds a warehouse only some may
use and functions some may not execute. Nothing is mocked; two tests shorten a module constant
(the statement time limit, how long a poll waits). Siblings: tests/test_vectorsearch.py.
"""

from __future__ import annotations

import json

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, InvalidState, NotFound, PermissionDenied
from databricks.sdk.service.sql import ExecuteStatementRequestOnWaitTimeout, StatementParameterListItem, StatementState
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obo_auth.local import LocalWorkspace
from obo_auth.local.seed_parts import SeedError
from obo_auth.local.sql import execution
from obo_auth.local.sql.compile import VIEW_PREFIX
from obo_auth.local.sql.request import MAX_STATEMENT_CHARS
from obo_auth.local.sql.seed import derived_warehouse_id
from seeds import default_seed

EMPLOYEES = "main.hr.employees"
STATEMENTS = "/api/2.0/sql/statements"
WAREHOUSE_ID = derived_warehouse_id("local-warehouse")
# The second warehouse of the custom seed: alice may use it, carol may manage it (which includes use), bob neither.
PRIVATE_WAREHOUSE_ID = "0123456789abcdef"
# 5**20 rows to count: hours of work, far longer than any test waits for it.
HEAVY_JOIN = ", ".join(f"{EMPLOYEES} e{i}" for i in range(20))
HTTP_PROPERTIES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _custom_seed() -> dict:
    seed = default_seed()
    seed["functions"] += [
        {"name": "main.tools.secret_number", "returns": "int", "body": "42"},
        {"name": "main.tools.greet", "parameters": {"who": "string"}, "returns": "string", "body": "concat('hello ', who, ' from ', current_user())"},
        {"name": "main.tools.twice", "parameters": {"n": "int"}, "returns": "int", "body": "n * 2"},
    ]
    seed["sql_warehouses"].append({"name": "private warehouse", "id": PRIVATE_WAREHOUSE_ID})
    seed["grants"] += [
        {"principal": "alice@example.com", "privilege": "EXECUTE", "on": {"function": "main.tools.secret_number"}},
        {"principal": "users", "privilege": "EXECUTE", "on": {"function": "main.tools.greet"}},
        {"principal": "users", "privilege": "EXECUTE", "on": {"function": "main.tools.twice"}},
        {"principal": "alice@example.com", "privilege": "CAN_USE", "on": {"sql_warehouse": "private warehouse"}},
        {"principal": "carol@example.com", "privilege": "CAN_MANAGE", "on": {"sql_warehouse": "private warehouse"}},
    ]
    return seed


@pytest.fixture(scope="module")
def custom():
    with LocalWorkspace(_custom_seed()) as ws:
        yield ws


def _client(ws: LocalWorkspace, who: str, scopes: list[str] | None = None, actor: str | None = None) -> WorkspaceClient:
    return WorkspaceClient(host=ws.url, token=ws.issue_token(who, scopes=scopes, actor=actor))


def _run(client: WorkspaceClient, statement: str, warehouse_id: str = WAREHOUSE_ID, **kwargs):
    return client.statement_execution.execute_statement(statement, warehouse_id, **kwargs)


def _rows(response) -> list[list[str | None]]:
    assert response.status.state == StatementState.SUCCEEDED, response.status
    return response.result.data_array or []


def _failure(response) -> str:
    assert response.status.state == StatementState.FAILED, response.status
    assert response.status.error.error_code.value == "BAD_REQUEST"  # the SDK's ServiceErrorCode for a statement the engine refused
    return response.status.error.message


def _sql_records(ws: LocalWorkspace) -> list:
    return [r for r in ws.audit() if r.path.startswith("/api/2.0/sql/")]


# -- warehouses --------------------------------------------------------------------------


def test_the_warehouse_is_listed_and_read_by_its_id(workspace):
    w = _client(workspace, "alice")
    (warehouse,) = w.warehouses.list()
    assert (warehouse.id, warehouse.name, warehouse.state.value) == (WAREHOUSE_ID, "local-warehouse", "RUNNING")
    got = w.warehouses.get(WAREHOUSE_ID)
    assert (got.name, got.odbc_params.path) == ("local-warehouse", f"/sql/1.0/warehouses/{WAREHOUSE_ID}")
    # A model declares a warehouse by id: that is what serving checks declarations against.
    assert workspace.state.resource_names()["sql_warehouse"] == [WAREHOUSE_ID]
    with pytest.raises(NotFound, match="does not exist"):
        w.warehouses.get("ffffffffffffffff")


@pytest.mark.parametrize(("who", "usable"), [("alice", True), ("carol", True), ("bob", False)])
def test_a_warehouse_is_listed_and_usable_only_with_can_use_or_can_manage(custom, who, usable):
    w = _client(custom, who)
    assert (PRIVATE_WAREHOUSE_ID in {x.id for x in w.warehouses.list()}) == usable
    if usable:
        assert w.warehouses.get(PRIVATE_WAREHOUSE_ID).name == "private warehouse"
        assert _rows(_run(w, "SELECT 1", PRIVATE_WAREHOUSE_ID)) == [["1"]]
        return
    with pytest.raises(PermissionDenied, match="does not have CAN_USE on SQL warehouse 'private warehouse'"):
        w.warehouses.get(PRIVATE_WAREHOUSE_ID)
    with pytest.raises(PermissionDenied, match="CAN_USE"):
        _run(w, "SELECT 1", PRIVATE_WAREHOUSE_ID)


def test_a_statement_on_an_unknown_warehouse_is_a_404(workspace):
    with pytest.raises(NotFound, match="SQL warehouse 'nope' does not exist"):
        _run(_client(workspace, "alice"), "SELECT 1", "nope")


# -- who the statement runs as -------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice", "carol", "bob"])
def test_current_user_and_whoami_are_the_user(workspace, who):
    user = f"{who}@example.com"
    response = _run(_client(workspace, who), "SELECT current_user(), main.tools.whoami(), user, is_account_group_member('hr')")
    assert _rows(response) == [[user, user, user, "true" if who == "alice" else "false"]]
    assert [c.name for c in response.manifest.schema.columns] == ["current_user()", "main.tools.whoami()", "user", "is_account_group_member('hr')"]


def test_a_service_principal_is_its_application_id(workspace, monkeypatch):
    for name, value in workspace.environment_for("obo-agent").items():
        monkeypatch.setenv(name, value)
    agent = WorkspaceClient()  # OAuth M2M from the environment, as an agent outside serving
    assert agent.config.auth_type == "oauth-m2m"
    application_id, _ = workspace.client_credentials("obo-agent")
    assert _rows(_run(agent, "SELECT current_user(), main.tools.whoami()")) == [[application_id, application_id]]
    # It reads the table as itself: no grant, no rows.
    assert "INSUFFICIENT_PERMISSIONS" in _failure(_run(agent, f"SELECT * FROM {EMPLOYEES}"))


def test_a_downscoped_token_runs_as_the_user_it_was_minted_for(workspace):
    w = _client(workspace, "alice", scopes=["sql"], actor="obo-agent")
    assert _rows(_run(w, "SELECT current_user()")) == [["alice@example.com"]]
    record = _sql_records(workspace)[-1]
    assert (record.principal, record.actor) == ("alice@example.com", "obo-agent")


# -- row filters, masks, grants --------------------------------------------------------------


def test_alice_sees_every_employee_and_salary(workspace):
    response = _run(_client(workspace, "alice"), f"SELECT id, name, salary FROM {EMPLOYEES} ORDER BY id")
    assert [row[0] for row in _rows(response)] == ["1", "2", "3", "4", "5"]
    assert all(row[2] is not None for row in _rows(response))
    assert [(c.name, c.type_name.value, c.type_text, c.position) for c in response.manifest.schema.columns] == [
        ("id", "LONG", "bigint", 0),
        ("name", "STRING", "string", 1),
        ("salary", "LONG", "bigint", 2),
    ]


def test_carol_sees_no_executive_and_no_salary_whatever_the_sql(workspace):
    carol = _client(workspace, "carol")
    rows = _rows(_run(carol, f"SELECT id, team, salary FROM {EMPLOYEES} ORDER BY id"))
    assert [row[0] for row in rows] == ["1", "2", "3", "4"]
    assert {row[2] for row in rows} == {None}
    # Nothing the SQL does reaches the hidden row or the masked values: the engine never had them.
    for statement in (
        f"SELECT count(*) FROM {EMPLOYEES} WHERE team = 'executive'",
        f"SELECT count(*) FROM {EMPLOYEES} WHERE salary IS NOT NULL OR salary > 0",
        f"SELECT count(*) FROM (SELECT * FROM {EMPLOYEES} UNION ALL SELECT * FROM hr.employees) WHERE name LIKE 'Evan%'",
    ):
        assert _rows(_run(carol, statement, catalog="main")) == [["0"]]
    record = _sql_records(workspace)[-1]
    assert record.resource == "sql_warehouse:local-warehouse"
    assert f"read {EMPLOYEES} (row filter hid 1 rows)" in record.reason


def test_bob_may_not_select_the_table(workspace):
    message = _failure(response := _run(_client(workspace, "bob"), f"SELECT name FROM {EMPLOYEES}"))
    assert message.startswith("[INSUFFICIENT_PERMISSIONS] Insufficient privileges:")
    assert f"bob@example.com does not have SELECT on table '{EMPLOYEES}'" in message
    assert response.status.sql_state == "42501"
    assert response.manifest is None and response.result is None
    assert "statement failed: [INSUFFICIENT_PERMISSIONS]" in _sql_records(workspace)[-1].reason


def test_a_table_is_named_with_the_requests_catalog_and_schema(workspace):
    alice = _client(workspace, "alice")
    assert _rows(_run(alice, "SELECT count(*) FROM employees", catalog="main", schema="hr")) == [["5"]]
    assert _rows(_run(alice, "SELECT count(*) FROM hr.employees")) == [["5"]]  # the default catalog is main
    assert _rows(_run(alice, "SELECT Name FROM MAIN.HR.Employees WHERE id = 1")) == [["Alice Adams"]]  # names are case-insensitive
    message = _failure(_run(alice, "SELECT * FROM employees"))  # the default schema is `default`
    assert message.startswith("[TABLE_OR_VIEW_NOT_FOUND] The table or view `employees` cannot be found.")


def test_an_unknown_table_is_table_or_view_not_found(workspace):
    response = _run(_client(workspace, "alice"), "SELECT * FROM main.hr.salaries")
    assert _failure(response).startswith("[TABLE_OR_VIEW_NOT_FOUND] The table or view `main`.`hr`.`salaries` cannot be found.")
    assert response.status.sql_state == "42P01"


def test_a_missing_table_is_reported_before_a_missing_privilege(workspace):
    message = _failure(_run(_client(workspace, "bob"), f"SELECT * FROM {EMPLOYEES} JOIN main.hr.nope USING (id)"))
    assert "TABLE_OR_VIEW_NOT_FOUND" in message


def test_ctes_subqueries_joins_and_qualified_columns(workspace):
    statement = f"""
        WITH engineers AS (SELECT id, name FROM {EMPLOYEES} WHERE team = 'engineering')
        SELECT e.name, main.hr.employees.team
        FROM engineers e JOIN {EMPLOYEES} USING (id)
        WHERE e.id IN (SELECT id FROM hr.employees)
        ORDER BY e.id"""
    assert _rows(_run(_client(workspace, "alice"), statement)) == [["Bob Brown", "engineering"], ["Carol Chen", "engineering"]]


# -- functions ---------------------------------------------------------------------------------


def test_a_function_without_execute_fails_the_statement(custom):
    assert _rows(_run(_client(custom, "alice"), "SELECT main.tools.secret_number()")) == [["42"]]
    message = _failure(_run(_client(custom, "carol"), "SELECT main.tools.secret_number() + 1"))
    assert "[INSUFFICIENT_PERMISSIONS]" in message
    assert "carol@example.com does not have EXECUTE on function 'main.tools.secret_number'" in message


def test_a_function_gets_its_arguments_and_the_caller(custom):
    carol = _client(custom, "carol")
    rows = _rows(_run(carol, f"SELECT main.tools.greet(name), tools.twice(id) FROM {EMPLOYEES} WHERE id = 3"))
    assert rows == [["hello Carol Chen from carol@example.com", "6"]]
    # The function's own default schema: unqualified, with the request's schema.
    assert _rows(_run(carol, "SELECT twice(twice(5))", schema="tools")) == [["20"]]
    record = _sql_records(custom)[-1]
    assert "executed main.tools.twice" in record.reason


def test_a_function_call_must_match_the_function(custom):
    alice = _client(custom, "alice")
    assert "[WRONG_NUM_ARGS]" in _failure(_run(alice, "SELECT main.tools.twice()"))
    assert "[UNRESOLVED_ROUTINE]" in _failure(_run(alice, "SELECT main.tools.nope()"))
    assert "[UNRESOLVED_ROUTINE]" in _failure(_run(alice, "SELECT no_such_function(1)"))


# -- parameters --------------------------------------------------------------------------------


def test_named_parameters_are_typed_values(workspace):
    alice = _client(workspace, "alice")
    parameters = [
        StatementParameterListItem(name="id", value="4", type="INT"),
        StatementParameterListItem(name="day", value="2024-02-29", type="DATE"),
        StatementParameterListItem(name="amount", value="12.50", type="DECIMAL(10,2)"),
        StatementParameterListItem(name="nothing", type="STRING"),
    ]
    statement = f"SELECT name, :day + 1, :amount * 2, :nothing IS NULL FROM {EMPLOYEES} WHERE id = :id"
    assert _rows(_run(alice, statement, parameters=parameters)) == [["Dana Diaz", "2024-03-01", "25.00", "true"]]
    assert "[UNBOUND_SQL_PARAMETER]" in _failure(_run(alice, "SELECT :missing"))
    assert "[UNSUPPORTED_FEATURE]" in _failure(_run(alice, "SELECT ?"))
    cast_failure = _failure(_run(alice, "SELECT :n", parameters=[StatementParameterListItem(name="n", value="four", type="INT")]))
    assert "could not run the statement" in cast_failure and "four" in cast_failure


@HTTP_PROPERTIES
@given(value=st.text(max_size=200))
def test_a_parameter_value_is_never_sql(workspace, value):
    # Quotes, comments, semicolons, backslashes: the value comes back as it was sent, as one row.
    response = _run(_client(workspace, "bob"), "SELECT :v, length(:v)", parameters=[StatementParameterListItem(name="v", value=value)])
    assert _rows(response) == [[value, str(len(value))]]


# -- results: types, chunks, limits ---------------------------------------------------------------


def test_values_are_sent_as_strings_with_their_types(workspace):
    statement = "SELECT 1, 1.5, 2.5D, true, NULL, DATE '2024-01-02', array(1, 2), named_struct('a', 1, 'b', 'x'), 'it\\'s'"  # Databricks SQL escapes a quote with a backslash
    response = _run(_client(workspace, "bob"), statement)
    assert _rows(response) == [["1", "1.5", "2.5", "true", None, "2024-01-02", "[1,2]", '{"a":1,"b":"x"}', "it's"]]
    types = [(c.type_name.value, c.type_text) for c in response.manifest.schema.columns]
    assert types[:6] == [("INT", "int"), ("DECIMAL", "decimal(2,1)"), ("DOUBLE", "double"), ("BOOLEAN", "boolean"), ("NULL", "void"), ("DATE", "date")]
    assert types[6:] == [("ARRAY", "array<int>"), ("STRUCT", "struct<a:int,b:string>"), ("STRING", "string")]
    assert _rows(_run(_client(workspace, "bob"), "VALUES (1, 'a'), (2, 'b')")) == [["1", "a"], ["2", "b"]]


def test_a_large_result_comes_in_chunks(workspace):
    alice = _client(workspace, "alice")
    response = _run(alice, f"SELECT id, repeat('x', 400000) AS padding FROM {EMPLOYEES} ORDER BY id")
    manifest = response.manifest
    assert (manifest.total_row_count, manifest.total_chunk_count, manifest.truncated) == (5, 2, False)
    chunk, ids = response.result, []
    while True:
        ids += [row[0] for row in chunk.data_array]
        assert chunk.row_offset == manifest.chunks[chunk.chunk_index].row_offset
        if chunk.next_chunk_index is None:
            assert chunk.next_chunk_internal_link is None
            break
        assert chunk.next_chunk_internal_link == f"{STATEMENTS}/{response.statement_id}/result/chunks/{chunk.next_chunk_index}"
        chunk = alice.statement_execution.get_statement_result_chunk_n(response.statement_id, chunk.next_chunk_index)
    assert ids == ["1", "2", "3", "4", "5"]
    with pytest.raises(BadRequest, match="not one of this result's chunks"):
        alice.statement_execution.get_statement_result_chunk_n(response.statement_id, 2)


def test_row_limit_and_byte_limit_truncate(workspace):
    alice = _client(workspace, "alice")
    limited = _run(alice, f"SELECT id FROM {EMPLOYEES} ORDER BY id", row_limit=2)
    assert (_rows(limited), limited.manifest.truncated, limited.manifest.total_row_count) == ([["1"], ["2"]], True, 2)
    whole = _run(alice, f"SELECT id FROM {EMPLOYEES} ORDER BY id", row_limit=5)
    assert (len(_rows(whole)), whole.manifest.truncated) == (5, False)
    sized = _run(alice, f"SELECT id, repeat('x', 100) FROM {EMPLOYEES} ORDER BY id", byte_limit=250)
    assert ([row[0] for row in _rows(sized)], sized.manifest.truncated) == (["1", "2"], True)


def test_an_empty_result_has_one_empty_chunk(workspace):
    response = _run(_client(workspace, "alice"), f"SELECT id FROM {EMPLOYEES} WHERE id < 0")
    assert (response.manifest.total_row_count, response.manifest.total_chunk_count) == (0, 1)
    assert (response.result.row_count, response.result.data_array) == (0, None)


def test_a_statement_past_the_time_limit_is_stopped(workspace, mocker):
    mocker.patch.object(execution, "STATEMENT_TIME_LIMIT_SECONDS", 0.01)
    message = _failure(_run(_client(workspace, "alice"), f"SELECT count(*) FROM {HEAVY_JOIN}"))
    assert "ran longer than the local SQL warehouse's limit" in message


# -- the statement's life: async, polling, cancel, owner ------------------------------------------


def test_wait_timeout_zero_answers_pending_and_a_poll_runs_it(workspace):
    alice = _client(workspace, "alice")
    submitted = _run(alice, f"SELECT count(*) FROM {EMPLOYEES}", wait_timeout="0s")
    assert (submitted.status.state, submitted.result) == (StatementState.PENDING, None)
    polled = alice.statement_execution.get_statement(submitted.statement_id)
    assert _rows(polled) == [["5"]]
    # The poll that ran it read the table: its audit record says so.
    assert f"read {EMPLOYEES}" in _sql_records(workspace)[-1].reason
    assert _rows(alice.statement_execution.get_statement(submitted.statement_id)) == [["5"]]


def test_cancel_stops_a_statement_that_has_not_finished(workspace):
    alice = _client(workspace, "alice")
    pending = _run(alice, f"SELECT count(*) FROM {EMPLOYEES}", wait_timeout="0s")
    alice.statement_execution.cancel_execution(pending.statement_id)
    polled = alice.statement_execution.get_statement(pending.statement_id)
    assert (polled.status.state, polled.result) == (StatementState.CANCELED, None)
    with pytest.raises(InvalidState, match="is CANCELED"):
        alice.statement_execution.get_statement_result_chunk_n(pending.statement_id, 0)


def test_cancel_stops_a_running_statement(workspace, mocker):
    mocker.patch("obo_auth.local.sql.routes.POLL_WAIT_SECONDS", 0)  # a poll answers at once, while the statement still runs
    alice = _client(workspace, "alice")
    pending = _run(alice, f"SELECT count(*) FROM {HEAVY_JOIN}", wait_timeout="0s")
    assert alice.statement_execution.get_statement(pending.statement_id).status.state == StatementState.RUNNING
    alice.statement_execution.cancel_execution(pending.statement_id)
    canceled = alice.statement_execution.get_statement(pending.statement_id)
    assert (canceled.status.state, canceled.result) == (StatementState.CANCELED, None)


def test_on_wait_timeout_cancel_cancels_what_runs_past_the_wait(workspace):
    # The one test that waits: the shortest wait_timeout the platform takes is 5s.
    response = _run(_client(workspace, "alice"), f"SELECT count(*) FROM {HEAVY_JOIN}", wait_timeout="5s", on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CANCEL)
    assert (response.status.state, response.result) == (StatementState.CANCELED, None)


def test_cancel_leaves_a_finished_statement_as_it_is(workspace):
    alice = _client(workspace, "alice")
    done = _run(alice, "SELECT 1")
    alice.statement_execution.cancel_execution(done.statement_id)
    assert _rows(alice.statement_execution.get_statement(done.statement_id)) == [["1"]]


def test_another_principal_cannot_see_or_cancel_your_statement(workspace):
    alice, bob = _client(workspace, "alice"), _client(workspace, "bob")
    pending = _run(alice, f"SELECT name FROM {EMPLOYEES} WHERE id = 5", wait_timeout="0s")
    for attempt in (
        lambda: bob.statement_execution.get_statement(pending.statement_id),
        lambda: bob.statement_execution.cancel_execution(pending.statement_id),
        lambda: bob.statement_execution.get_statement_result_chunk_n(pending.statement_id, 0),
    ):
        with pytest.raises(NotFound, match="does not exist"):
            attempt()
    # Bob's attempts neither ran it (as bob) nor canceled it.
    assert _rows(alice.statement_execution.get_statement(pending.statement_id)) == [["Evan Evans"]]


def test_a_result_is_closed_after_an_hour():
    now = [1_000_000.0]
    with LocalWorkspace(clock=lambda: now[0]) as ws:
        alice = _client(ws, "alice")
        done = _run(alice, "SELECT 1")
        now[0] += 3600
        closed = alice.statement_execution.get_statement(done.statement_id)
        assert (closed.status.state, closed.result) == (StatementState.CLOSED, None)
        with pytest.raises(InvalidState, match="is CLOSED"):
            alice.statement_execution.get_statement_result_chunk_n(done.statement_id, 0)


# -- what the local warehouse refuses -----------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        (f"INSERT INTO {EMPLOYEES} VALUES (6, 'x', 'x', 'x', 1)", "read-only: it runs queries (SELECT, VALUES, WITH ... SELECT), not INSERT"),
        (f"DELETE FROM {EMPLOYEES}", "not DELETE"),
        ("CREATE TABLE main.hr.t AS SELECT 1", "not CREATE"),
        (f"DROP TABLE {EMPLOYEES}", "not DROP"),
        ("SET enable_external_access = true", "not SET"),
        (f"COPY {EMPLOYEES} TO '/tmp/out.csv'", "not COPY"),
        ("PRAGMA version", "not PRAGMA"),
        (f"SELECT * INTO main.hr.copy FROM {EMPLOYEES}", "not SELECT ... INTO"),
        ("WITH x AS (INSERT INTO main.hr.t VALUES (1)) SELECT 1", "not INSERT"),
        ("SELECT 1; SELECT 2", "one statement per request"),
        (f"SELECT 1; DROP TABLE {EMPLOYEES}", "one statement per request"),
        ("SELECT * FROM read_csv('/etc/passwd')", "the table-valued function read_csv() is not supported"),
        ("SELECT * FROM range(10)", "the table-valued function range() is not supported"),
        ("SELECT * FROM query('SELECT 42')", "the table-valued function query() is not supported"),
        ("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT * FROM t", "WITH RECURSIVE"),
        (f"SELECT * FROM {EMPLOYEES} VERSION AS OF 1", "time travel"),
    ],
)
def test_what_is_not_a_read_query_fails(workspace, statement, refusal):
    message = _failure(_run(_client(workspace, "alice"), statement))
    assert message.startswith("[UNSUPPORTED_FEATURE]") and refusal in message


# Found by an adversarial review: sqlglot writes a date part out raw, so a "unit" could smuggle
# DuckDB SQL past the checks (several statements, files in DuckDB's temporary directory).
@pytest.mark.parametrize(
    "statement",
    [
        "SELECT DATEADD(`DAY AS A, NAME, VALUE FROM DUCKDB_SETTINGS() --`, 1, DATE '2020-01-01')",
        "SELECT date_add('DAY AS A; SELECT 7 AS SEVEN --', 1, DATE '2020-01-01')",
        "SELECT TIMESTAMPADD(`DAY AS A; CREATE TABLE T AS SELECT 1 AS X; SELECT * FROM T --`, 1, DATE '2020-01-01')",
    ],
)
def test_a_date_part_cannot_carry_sql(workspace, statement):
    assert "is not a date or time unit" in _failure(_run(_client(workspace, "carol"), statement))


def test_a_name_cannot_shadow_the_view_a_table_is_read_through(workspace):
    statement = f"WITH {VIEW_PREFIX}0 AS (SELECT 1) SELECT * FROM {EMPLOYEES}, {VIEW_PREFIX}0"
    assert "are reserved by the local SQL warehouse" in _failure(_run(_client(workspace, "carol"), statement))


def test_a_date_part_still_works(workspace):
    [[day_after]] = _rows(_run(_client(workspace, "carol"), "SELECT date_add(DAY, 1, DATE '2020-01-01')"))
    assert day_after.startswith("2020-01-02")


@pytest.mark.parametrize("statement", ["ATTACH '/tmp/x.db' AS x", "SELEC 1", "SELECT (1"])
def test_what_does_not_parse_is_a_syntax_error(workspace, statement):
    assert _failure(_run(_client(workspace, "alice"), statement)).startswith("[PARSE_SYNTAX_ERROR]")


def test_an_engine_error_names_the_table_never_its_view(workspace):
    message = _failure(_run(_client(workspace, "alice"), f"SELECT no_such_column FROM {EMPLOYEES}"))
    assert "no_such_column" in message and VIEW_PREFIX not in message and "LINE 1" not in message


@HTTP_PROPERTIES
@given(statement=st.text(min_size=1, max_size=300).filter(str.strip))
def test_any_statement_text_succeeds_or_fails_cleanly(workspace, statement):
    response = _run(_client(workspace, "carol"), statement)
    assert response.status.state in (StatementState.SUCCEEDED, StatementState.FAILED)
    if response.status.state == StatementState.FAILED:
        message = response.status.error.message
        assert VIEW_PREFIX not in message and "Traceback" not in message and "unexpectedly" not in message


# -- hostile requests: one clear 4xx each, never a 5xx ----------------------------------------------


def _post(ws: LocalWorkspace, content: bytes | str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {ws.issue_token('alice')}", "Content-Type": "application/json"}
    before = len(ws.audit())
    response = httpx.post(f"{ws.url}{STATEMENTS}", content=content, headers=headers)
    assert len(ws.audit()) == before + 1
    return response


def _body(**fields) -> str:
    return json.dumps({"statement": "SELECT 1", "warehouse_id": WAREHOUSE_ID, **fields})


@pytest.mark.parametrize(
    ("content", "error_code", "message"),
    [
        ("{not json", "MALFORMED_REQUEST", "not valid JSON"),
        ("[1, 2]", "MALFORMED_REQUEST", "must be a JSON object"),
        ('{"warehouse_id": "x"}', "INVALID_PARAMETER_VALUE", "Missing required field 'statement'"),
        (_body(statement="   "), "INVALID_PARAMETER_VALUE", "Field 'statement' is empty"),
        (_body(statement="SELECT " + "1 + " * MAX_STATEMENT_CHARS + "1"), "INVALID_PARAMETER_VALUE", f"takes at most {MAX_STATEMENT_CHARS}"),
        (_body(statement=42), "INVALID_PARAMETER_VALUE", "Field 'statement' must be a string"),
        (_body(wait_timeout="3s"), "INVALID_PARAMETER_VALUE", "'0s' or between '5s' and '50s'"),
        (_body(wait_timeout="10"), "INVALID_PARAMETER_VALUE", "'0s' or between '5s' and '50s'"),
        (_body(wait_timeout="999999999999s"), "INVALID_PARAMETER_VALUE", "'0s' or between '5s' and '50s'"),
        (_body(on_wait_timeout="WAIT"), "INVALID_PARAMETER_VALUE", "must be one of CANCEL, CONTINUE"),
        (_body(disposition="EXTERNAL_LINKS"), "INVALID_PARAMETER_VALUE", "returns results INLINE only"),
        (_body(format="CSV"), "INVALID_PARAMETER_VALUE", "INLINE results are JSON_ARRAY only"),
        (_body(row_limit=-1), "INVALID_PARAMETER_VALUE", "Field 'row_limit' must be a positive integer"),
        (_body(byte_limit="10"), "INVALID_PARAMETER_VALUE", "Field 'byte_limit' must be an integer"),
        (_body(catalog="main; DROP"), "INVALID_PARAMETER_VALUE", "Field 'catalog' must be a catalog name"),
        (_body(parameters={"a": 1}), "INVALID_PARAMETER_VALUE", "Field 'parameters' must be an array"),
        (_body(parameters=["x"]), "INVALID_PARAMETER_VALUE", "Field 'parameters[0]' must be an object"),
        (_body(parameters=[{"name": "a b", "value": "1"}]), "INVALID_PARAMETER_VALUE", "parameters[0].name"),
        (_body(parameters=[{"name": "a", "type": "INT); DROP TABLE x; --"}]), "INVALID_PARAMETER_VALUE", "parameters[0].type"),
        (_body(parameters=[{"name": "a"}, {"name": "a"}]), "INVALID_PARAMETER_VALUE", "given twice"),
        (_body(warehouse_id="no-such-warehouse"), "RESOURCE_DOES_NOT_EXIST", "does not exist"),
    ],
)
def test_a_bad_request_is_one_clear_error(workspace, content, error_code, message):
    response = _post(workspace, content)
    assert 400 <= response.status_code < 500
    body = response.json()
    assert body["error_code"] == error_code and message in body["message"]
    assert "Traceback" not in body["message"]


def test_bad_statement_and_chunk_addresses_are_4xx(workspace):
    token = workspace.issue_token("alice")
    done = _run(_client(workspace, "alice"), "SELECT 1")
    headers = {"Authorization": f"Bearer {token}"}
    for method, path, status in [
        ("GET", f"{STATEMENTS}/not-a-statement", 404),
        ("POST", f"{STATEMENTS}/{'x' * 5000}/cancel", 404),
        ("GET", f"{STATEMENTS}/{done.statement_id}/result/chunks/-1", 400),
        ("GET", f"{STATEMENTS}/{done.statement_id}/result/chunks/abc", 400),
        ("GET", f"{STATEMENTS}/{done.statement_id}/result/chunks/{'9' * 5000}", 400),
        ("GET", f"{STATEMENTS}/{done.statement_id}/result/chunks/%C2%B2", 400),
    ]:
        response = httpx.request(method, f"{workspace.url}{path}", headers=headers)
        assert response.status_code == status, (path, response.text)
        assert set(response.json()) == {"error_code", "message"} and len(response.json()["message"]) < 400


def test_a_token_without_the_sql_scopes_gets_invalid_scope(workspace):
    wrong = _client(workspace, "alice", scopes=["serving.serving-endpoints"])
    with pytest.raises(PermissionDenied, match="needs the API scope 'sql.statement-execution'"):
        _run(wrong, "SELECT 1")
    statements_only = _client(workspace, "alice", scopes=["sql.statement-execution"])
    assert _rows(_run(statements_only, "SELECT 1")) == [["1"]]
    with pytest.raises(PermissionDenied, match="needs the API scope 'sql.warehouses'"):
        list(statements_only.warehouses.list())
    umbrella = _client(workspace, "alice", scopes=["sql"])
    assert [w.id for w in umbrella.warehouses.list()] == [WAREHOUSE_ID]
    assert _rows(_run(umbrella, "SELECT 1")) == [["1"]]


# -- the seed ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("warehouses", "grants", "problem"),
    [
        ([{"name": "a"}, {"name": "a"}], [], "'a' already names sql_warehouses[0].name"),
        ([{"name": "a", "id": "0000000000000001"}, {"name": "b", "id": "0000000000000001"}], [], "sql_warehouses[1].id"),
        ([{"name": "a", "id": "XYZ"}], [], "field 'sql_warehouses[0].id'"),
        ([{"name": "a"}], [{"principal": "users", "privilege": "CAN_USE", "on": {"sql_warehouse": "b"}}], "'b' is not a declared sql_warehouse"),
        ([{"name": "a"}], [{"principal": "users", "privilege": "SELECT", "on": {"sql_warehouse": "a"}}], "not a privilege on a SQL warehouse"),
    ],
)
def test_a_bad_warehouse_seed_is_refused_before_anything_starts(warehouses, grants, problem):
    seed = default_seed()
    seed["sql_warehouses"] = warehouses
    seed["grants"] = [g for g in seed["grants"] if "sql_warehouse" not in g["on"]] + grants
    with pytest.raises(SeedError, match="invalid seed") as refused:
        LocalWorkspace(seed)
    assert problem in str(refused.value)
