"""Seeds (``local/seed.py``): the default loads; every bad seed, as a YAML file or as a dict,
fails before anything listens with a SeedError naming the file, the field and what is
expected; ``obo-auth workspace --seed`` says the same without a traceback.

Sibling: tests/test_two_workspaces.py starts workspaces from seed dicts.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from obo_auth.cli.main import cli
from obo_auth.local import LocalWorkspace, SeedError
from obo_auth.local.identity.models import default_application_id, service_principal_id, user_id
from obo_auth.local.seed import load_seed
from seeds import default_seed

DEFAULT = default_seed()


def _set(path: str, value):
    """A change to the default seed: set the value at a dotted path ('indexes.0.rows.2.id')."""

    def change(seed: dict) -> None:
        *parents, last = path.split(".")
        target = seed
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return change


def _delete(path: str):
    def change(seed: dict) -> None:
        *parents, last = path.split(".")
        target = seed
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        del target[last]

    return change


def _append(key: str, entry: dict):
    return lambda seed: seed[key].append(entry)


# name: (change to the default seed, the field the message must name, what it must say is expected)
BAD_SEEDS = {
    "unknown top-level key": (_set("indexs", []), "field 'indexs'", "expected one of: users, groups"),
    "unknown nested key": (_set("indexes.0.colums", {}), "field 'indexes[0].colums'", "expected one of: name, endpoint"),
    "wrong type": (_set("users.0.user_name", 5), "field 'users[0].user_name'", "valid string"),
    "wrong type of a list": (_set("grants", {"principal": "alice"}), "field 'grants'", "valid list"),
    "pattern": (_set("indexes.0.name", "handbook"), "field 'indexes[0].name'", "expected a three-level name catalog.schema.name, got 'handbook'"),
    "missing required field": (_delete("indexes.0.primary_key"), "field 'indexes[0].primary_key'", "required field is missing"),
    "primary key not a column": (_set("indexes.0.primary_key", "uid"), "field 'indexes[0].primary_key'", "not a column of main.docs.handbook; columns: audience, chunk"),
    "index of an unknown table": (_set("indexes.0.source_table", "main.docs.nope"), "field 'indexes[0].source_table'", "not a declared table; declared: main.docs.handbook, main.hr.employees"),
    "grant to an unknown principal": (_set("grants.1.principal", "dave"), "field 'grants[1].principal'", "not a declared user, group or service principal"),
    "grant on an unknown index": (_set("grants.3.on", {"index": "main.docs.nope"}), "field 'grants[3].on.index'", "declared: main.docs.handbook_index"),
    "grant on an unknown schema": (_set("grants.3.on", {"schema": "main.nope"}), "field 'grants[3].on.schema'", "declared: main.docs, main.hr, main.tools"),
    "grant on an unknown securable type": (_set("grants.3.on", {"volume": "main.docs.v"}), "field 'grants[3].on'", "'volume' is not a securable type; expected one of: app, catalog"),
    "privilege invalid for the securable": (_set("grants.3.privilege", "CAN_QUERY"), "field 'grants[3].privilege'", "expected one of: SELECT"),
    "privilege a catalog has not": (_set("grants.5.privilege", "MODIFY"), "field 'grants[5].privilege'", "expected one of: EXECUTE, SELECT, USE CATALOG, USE SCHEMA"),
    "row filter on an unknown column": (_set("tables.0.row_filter", "team = 'hr'"), "field 'tables[0].row_filter'", "names team, which is not a column here"),
    "row filter that is not SQL": (_set("tables.0.row_filter", "audience = = 'hr'"), "field 'tables[0].row_filter'", "not a SQL expression"),
    "row filter with a subquery": (_set("tables.0.row_filter", "audience IN (SELECT 'hr')"), "field 'tables[0].row_filter'", "a subquery is not supported here"),
    "row filter that is two expressions": (_set("tables.0.row_filter", "audience, 1"), "field 'tables[0].row_filter'", "not a SQL expression"),
    "group test of a column": (_set("tables.0.row_filter", "is_account_group_member(audience)"), "field 'tables[0].row_filter'", "takes one group name as a string literal"),
    "mask of an unknown column": (_set("tables.1.column_masks", {"bonus": "NULL"}), "field 'tables[1].column_masks.bonus'", "not a column of the table"),
    "mask of the wrong type": (_set("tables.1.column_masks", {"salary": "'hidden'"}), "field 'tables[1].column_masks.salary'", "the SQL engine cannot evaluate it"),
    "function body that is not SQL": (_set("functions.0.body", "SELECT FROM"), "field 'functions[0].body'", "not a SQL expression"),
    "function body of an unknown parameter": (_set("functions.0.body", "upper(who)"), "field 'functions[0].body'", "names who"),
    "table row with a wrong column type": (_set("tables.0.rows.2.id", "three"), "field 'tables[0].rows[2].id'", "expected a value of type int"),
    "boolean is not an int": (_set("tables.0.rows.2.id", True), "field 'tables[0].rows[2].id'", "expected a value of type int"),
    "table row with an unknown column": (_set("tables.0.rows.2.team", "x"), "field 'tables[0].rows[2].team'", "not a column of the table"),
    "duplicate primary keys": (_set("tables.0.rows.1.id", 1), "field 'indexes[0].primary_key'", "main.docs.handbook rows[1] repeats the primary key 1 of rows[0]"),
    "row without a primary key": (_delete("tables.0.rows.4.id"), "field 'indexes[0].primary_key'", "main.docs.handbook rows[4] has no id"),
    "duplicate table": (lambda seed: seed["tables"].append(copy.deepcopy(seed["tables"][0])), "field 'tables[2].name'", "already names tables[0].name"),
    "reserved principal": (_append("service_principals", {"name": "workspace-admin"}), "field 'service_principals[1].name'", "reserved"),
    "reserved principal as a user": (_append("users", {"user_name": "workspace-admin@example.com"}), "field 'users[3].user_name'", "reserved"),
    "reserved application id": (_set("service_principals.0.application_id", "workspace-admin"), "field 'service_principals[0].application_id'", "reserved"),
    "reserved group users": (_append("groups", {"name": "users"}), "field 'groups[1].name'", "reserved"),
    "reserved group admins": (_append("groups", {"name": "admins"}), "field 'groups[1].name'", "reserved"),
    "ambiguous short name": (_append("users", {"user_name": "alice@other.example"}), "field 'users[3].user_name'", "'alice' already names users[0].user_name"),
    "duplicate index": (lambda seed: seed["indexes"].append(copy.deepcopy(seed["indexes"][0])), "field 'indexes[1].name'", "already names indexes[0].name"),
    # An application id is how OAuth M2M finds its client, and the workspace finds principals by id and name too.
    "application id of a user's name": (_set("service_principals.0.application_id", "alice@example.com"), "field 'service_principals[0].application_id'", "'alice@example.com' already names users[0].user_name"),
    "application id of a user's id": (_set("service_principals.0.application_id", user_id("alice@example.com")), "field 'service_principals[0].application_id'", "already names the id of users[0]"),
    "application id of the admin's id": (_set("service_principals.0.application_id", service_principal_id("workspace-admin")), "field 'service_principals[0].application_id'", "already names the id of the workspace's admin"),
    "application id of another's application id": (
        _append("service_principals", {"name": "copycat", "application_id": default_application_id("obo-agent")}),
        "field 'service_principals[1].application_id'",
        "already names the application_id of service_principals[0]",
    ),
    "user named after an application id": (
        _append("users", {"user_name": f"{default_application_id('obo-agent')}@example.com"}),
        "field 'users[3].user_name'",
        "already names the application_id of service_principals[0]",
    ),
}


def bad_seed(name: str) -> dict:
    seed = copy.deepcopy(DEFAULT)
    BAD_SEEDS[name][0](seed)
    return seed


def test_the_default_seed_loads_and_serves():
    seed = load_seed()
    assert [u.user_name for u in seed.users] == ["alice@example.com", "bob@example.com", "carol@example.com"]
    assert len(seed.tables[0].rows) == 30
    assert load_seed(copy.deepcopy(DEFAULT)) == seed
    with LocalWorkspace() as ws:
        assert ws.users() == ["alice@example.com", "bob@example.com", "carol@example.com"]


@pytest.mark.parametrize("name", list(BAD_SEEDS))
def test_a_bad_seed_dict_names_the_field_and_what_is_expected(name):
    _, field, expected = BAD_SEEDS[name]
    with pytest.raises(SeedError) as error:
        LocalWorkspace(bad_seed(name))
    message = str(error.value)
    assert message.startswith("seed dict: invalid seed:")
    assert field in message
    assert expected in message


@pytest.mark.parametrize("name", list(BAD_SEEDS))
def test_a_bad_seed_file_names_the_file_the_field_and_what_is_expected(tmp_path, name):
    _, field, expected = BAD_SEEDS[name]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad_seed(name)), encoding="utf-8")
    with pytest.raises(SeedError) as error:
        LocalWorkspace(path)
    message = str(error.value)
    assert message.startswith(f"{path}: invalid seed:")
    assert field in message
    assert expected in message


def test_every_problem_is_reported_at_once():
    seed = copy.deepcopy(DEFAULT)
    for name in ("grant to an unknown principal", "duplicate primary keys", "reserved group users"):
        BAD_SEEDS[name][0](seed)
    message = str(pytest.raises(SeedError, load_seed, seed).value)
    assert all(BAD_SEEDS[name][1] in message for name in ("grant to an unknown principal", "duplicate primary keys", "reserved group users"))


# What cannot be said as a dict: the file itself is wrong.
BAD_FILES = {
    "invalid YAML": ("users: [alice\n  - bob", "not valid YAML", "line 2"),
    "empty file": ("", "a seed must be a YAML mapping with keys such as users, groups", "an empty file"),
    "a list, not a mapping": ("- alice\n", "a seed must be a YAML mapping", "got a list"),
    "not UTF-8": (b"users: [\xff\xfe]", "cannot read the seed file", "UnicodeDecodeError"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_a_bad_file_names_the_file_and_what_is_wrong(tmp_path, name):
    content, *says = BAD_FILES[name]
    path = tmp_path / "bad.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    message = str(pytest.raises(SeedError, load_seed, path).value)
    assert message.startswith(f"{path}: ")
    assert all(phrase in message for phrase in says)


def test_a_missing_file_or_a_directory_names_the_path(tmp_path):
    assert str(pytest.raises(SeedError, load_seed, tmp_path / "nope.yaml").value) == f"{tmp_path / 'nope.yaml'}: no such seed file."
    assert str(pytest.raises(SeedError, load_seed, tmp_path).value).startswith(f"{tmp_path}: cannot read the seed file")


def test_a_bare_on_key_is_the_string_on_not_true(tmp_path):
    # YAML 1.1 reads `on:` as the boolean true; seeds read it as YAML 1.2 does.
    path = tmp_path / "seed.yaml"
    path.write_text(
        "users: [{user_name: dave@example.com}]\n"
        "serving_endpoints: [{name: chat, kind: chat}]\n"
        "grants:\n- principal: dave\n  privilege: CAN_QUERY\n  on: {serving_endpoint: chat}\n",
        encoding="utf-8",
    )
    assert load_seed(path).grants[0].on == {"serving_endpoint": "chat"}


@pytest.mark.parametrize("name", ["grant to an unknown principal", "duplicate primary keys", "reserved principal"])
def test_the_cli_exits_nonzero_with_the_message_and_no_traceback(tmp_path, name):
    _, field, expected = BAD_SEEDS[name]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad_seed(name)), encoding="utf-8")
    # A seed that loaded would make the command serve until Ctrl-C: make sure it cannot.
    pytest.raises(SeedError, load_seed, path)

    result = CliRunner().invoke(cli, ["workspace", "--seed", str(path)])

    assert result.exit_code != 0
    assert str(path) in result.output and field in result.output and expected in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), "the command must exit, not raise"


def test_the_cli_says_so_for_a_missing_file(tmp_path):
    result = CliRunner().invoke(cli, ["workspace", "--seed", str(tmp_path / "nope.yaml")])
    assert result.exit_code != 0
    assert "no such seed file" in result.output and "Traceback" not in result.output


def test_the_readme_seed_format_example_is_a_working_seed(tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", readme[readme.index("### Seed format") :], re.S).group(1)
    (tmp_path / "seed.yaml").write_text(example)
    with LocalWorkspace(tmp_path / "seed.yaml") as ws:
        names = ws.state.resource_names()
    assert names["vector_search_index"] == ["main.docs.handbook_index", "main.docs.notes_index"]
    assert names["function"] == ["main.tools.greet", "main.tools.whoami"]
