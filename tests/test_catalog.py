"""Unity Catalog in the local workspace (``local/catalog/``), driven by databricks-sdk over real HTTP.

Who reads what comes from the default seed: ``users`` hold USE CATALOG on ``main`` and USE
SCHEMA on its schemas; alice (group hr) and carol hold SELECT on ``main.hr.employees``, whose
row filter hides the executive row from all but hr and whose mask hides salaries; bob holds
nothing. Seeds of their own show inheritance and the USE privileges. The row filters as
vector search and SQL apply them: tests/test_vectorsearch.py, tests/test_sql_warehouses.py.
"""

from __future__ import annotations

import copy

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, PermissionDenied

from obo_auth.local import LocalWorkspace, SeedError
from seeds import default_seed

EMPLOYEES = "main.hr.employees"
DEFAULT = default_seed()


@pytest.fixture(scope="module")
def ws():
    with LocalWorkspace() as workspace:
        yield workspace


def sdk(ws: LocalWorkspace, who: str) -> WorkspaceClient:
    return WorkspaceClient(host=ws.url, token=ws.issue_token(who))


def _seed(*grants: dict, drop=lambda grant: False) -> dict:
    seed = copy.deepcopy(DEFAULT)
    seed["grants"] = [g for g in seed["grants"] if not drop(g)] + list(grants)
    return seed


def test_a_table_describes_its_columns_row_filter_and_masks(ws):
    table = sdk(ws, "carol").tables.get(EMPLOYEES)
    assert (table.full_name, table.catalog_name, table.schema_name, table.name) == (EMPLOYEES, "main", "hr", "employees")
    assert [(c.name, c.type_name.value, c.position) for c in table.columns] == [
        ("id", "LONG", 0), ("name", "STRING", 1), ("email", "STRING", 2), ("team", "STRING", 3), ("salary", "LONG", 4),
    ]  # fmt: skip
    assert table.row_filter is not None
    assert [c.name for c in table.columns if c.mask is not None] == ["salary"]
    record = ws.audit()[-1]
    assert (record.resource, record.decision) == (f"table:{EMPLOYEES}", "allow")
    assert record.reason == f"carol@example.com has SELECT on table {EMPLOYEES}"


def test_without_select_a_table_is_denied_naming_the_privilege(ws):
    with pytest.raises(PermissionDenied, match=f"does not have SELECT on table '{EMPLOYEES}'"):
        sdk(ws, "bob").tables.get(EMPLOYEES)
    assert ws.audit()[-1].decision == "deny"


def test_an_index_is_described_as_a_table_to_whoever_may_read_it(ws):
    columns = [c.name for c in sdk(ws, "alice").tables.get("main.docs.handbook_index").columns]
    assert columns == ["id", "chunk", "doc_uri", "title", "audience"]
    with pytest.raises(PermissionDenied, match="SELECT on vector search index"):
        sdk(ws, "bob").tables.get("main.docs.handbook_index")


def test_a_missing_table_is_not_found(ws):
    with pytest.raises(NotFound, match="Table 'main.hr.nope' does not exist"):
        sdk(ws, "alice").tables.get("main.hr.nope")


def test_a_function_describes_its_body_and_needs_execute():
    seed = _seed(drop=lambda g: g["privilege"] == "EXECUTE")
    seed["grants"].append({"principal": "alice@example.com", "privilege": "EXECUTE", "on": {"function": "main.tools.whoami"}})
    with LocalWorkspace(seed) as ws:
        function = sdk(ws, "alice").functions.get("main.tools.whoami")
        assert (function.full_name, function.routine_definition, function.data_type.value) == ("main.tools.whoami", "current_user()", "STRING")
        assert function.input_params.parameters == []
        with pytest.raises(PermissionDenied, match="does not have EXECUTE on function 'main.tools.whoami'"):
            sdk(ws, "bob").functions.get("main.tools.whoami")


def test_reading_needs_use_catalog_and_use_schema_as_in_unity_catalog():
    no_use_schema = _seed(drop=lambda g: g["privilege"] == "USE SCHEMA" and g["on"] == {"schema": "main.hr"})
    with LocalWorkspace(no_use_schema) as ws:
        with pytest.raises(PermissionDenied, match="does not have USE SCHEMA on schema 'main.hr'"):
            sdk(ws, "alice").tables.get(EMPLOYEES)
    no_use_catalog = _seed(drop=lambda g: g["privilege"] == "USE CATALOG")
    with LocalWorkspace(no_use_catalog) as ws:
        with pytest.raises(PermissionDenied, match="does not have USE CATALOG on catalog 'main'"):
            sdk(ws, "alice").tables.get(EMPLOYEES)


def test_a_privilege_on_a_schema_or_catalog_holds_on_what_it_contains():
    seed = _seed(
        {"principal": "bob@example.com", "privilege": "SELECT", "on": {"schema": "main.hr"}},
        {"principal": "bob@example.com", "privilege": "EXECUTE", "on": {"catalog": "main"}},
        drop=lambda g: g["privilege"] == "EXECUTE",
    )
    with LocalWorkspace(seed) as ws:
        assert sdk(ws, "bob").tables.get(EMPLOYEES).name == "employees"
        assert ws.audit()[-1].reason == f"bob@example.com has SELECT on schema main.hr (inherited by table {EMPLOYEES})"
        assert sdk(ws, "bob").functions.get("main.tools.whoami").name == "whoami"
        with pytest.raises(PermissionDenied):  # SELECT on main.hr says nothing of main.docs
            sdk(ws, "bob").tables.get("main.docs.handbook_index")


def _view(ws: LocalWorkspace, table: str, who: str):
    catalog = ws.state.services["catalog"]
    return catalog.view(table, ws.state.identity.find(who))


def test_one_row_filter_and_mask_give_each_caller_their_view(ws):
    alice, carol = _view(ws, EMPLOYEES, "alice"), _view(ws, EMPLOYEES, "carol")
    assert [r["name"] for r in alice.rows()] == ["Alice Adams", "Bob Brown", "Carol Chen", "Dana Diaz", "Evan Evans"]
    assert all(r["salary"] for r in alice.rows()) and alice.hidden == 0
    assert "Evan Evans" not in [r["name"] for r in carol.rows()] and carol.hidden == 1
    assert {r["salary"] for r in carol.rows()} == {None}


def test_current_user_in_a_mask_is_a_users_name_or_a_service_principals_application_id():
    seed = copy.deepcopy(DEFAULT)
    seed["tables"].append({"name": "main.hr.seen", "columns": {"id": "int", "seen_by": "string"}, "column_masks": {"seen_by": "current_user()"}, "rows": [{"id": 1, "seen_by": "x"}]})
    with LocalWorkspace(seed) as ws:
        assert _view(ws, "main.hr.seen", "carol").rows() == [{"id": 1, "seen_by": "carol@example.com"}]
        application_id = ws.client_credentials("obo-agent")[0]
        assert _view(ws, "main.hr.seen", "obo-agent").rows() == [{"id": 1, "seen_by": application_id}]


@pytest.mark.parametrize(
    ("row_filter", "says"),
    [
        ("length(read_text('/etc/passwd')) > 0", "read_text\\(\\) is not a Databricks SQL function"),
        ("audience = 'all'; DROP TABLE x", "not a SQL expression"),
        ("EXISTS (SELECT 1)", "a subquery is not supported here"),
        ("audience IN (SELECT audience FROM main.docs.handbook)", "a subquery is not supported here"),
        ("sleep_ms(2000) IS NULL", "sleep_ms\\(\\) is not a Databricks SQL function"),  # the engine's own, not Databricks SQL
        ("current_setting('temp_directory') = audience", "current_setting\\(\\) is not a Databricks SQL function"),
        ("audience = 'hr", "not a SQL expression"),  # an unclosed quote
        ("(" * 3000 + "audience = 'hr'" + ")" * 3000, "nested too deeply"),
        # Fails for alice only (in hr): every seeded caller is tried.
        ("CASE WHEN is_account_group_member('hr') THEN CAST(audience AS INT) = 1 ELSE true END", "for alice@example.com: Conversion Error"),
    ],
)
def test_a_hostile_row_filter_fails_the_seed_before_anything_starts(row_filter, says):
    seed = copy.deepcopy(DEFAULT)
    seed["tables"][0]["row_filter"] = row_filter
    with pytest.raises(SeedError, match=says):
        LocalWorkspace(seed)


def test_a_seed_problem_is_one_line_per_field():
    seed = copy.deepcopy(DEFAULT)
    seed["tables"][0]["row_filter"] = "audience = 'hr"
    with pytest.raises(SeedError) as error:
        LocalWorkspace(seed)
    assert str(error.value).splitlines()[1].startswith("  field 'tables[0].row_filter': not a SQL expression")
    assert len(str(error.value).splitlines()) == 2
