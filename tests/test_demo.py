"""`obo-auth demo`, the README's main job, run as a user runs it: a subprocess, exit code 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def run_demo(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, Path, Path, Path]:
    """The demo in a fresh home, working directory and temporary directory (returned, to be checked after)."""
    home, cwd, temp = (tmp_path / name for name in ("home", "cwd", "tmp"))
    for directory in (cwd, temp):
        directory.mkdir()
    environment = {**os.environ, "OBO_AUTH_HOME": str(home), "TMPDIR": str(temp)}
    environment.pop("MLFLOW_TRACKING_URI", None)  # the demo logs to obo_auth's default store
    result = subprocess.run(
        [sys.executable, "-m", "obo_auth.cli.demo", *args], env=environment, cwd=cwd, capture_output=True, text=True, timeout=600
    )
    return result, home, cwd, temp


def assert_clean_run(result: subprocess.CompletedProcess, home: Path, cwd: Path, temp: Path) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "Traceback" not in out + result.stderr and "Warning" not in out + result.stderr
    assert list(cwd.iterdir()) == []  # no mlruns/ or mlflow.db left in the working directory
    assert list(temp.iterdir()) == []  # no temporary directories left behind
    model_uri = re.search(r"Logged (models:/\S+) to", out).group(1)
    assert f"obo-auth serve {model_uri}" in out  # the store `obo-auth serve` reads: the demo's model can be served again
    assert (home / "mlflow" / "mlflow.db").exists()


def answers_of(out: str) -> dict[str, str]:
    """Each user's rows of the answers table (users in the order asked: alice, bob, carol)."""
    table = out.split("Audit trail")[0]
    starts = [table.index(f"│ {user} ") for user in ("alice", "bob", "carol")]
    return {user: table[start:end] for user, start, end in zip(("alice", "bob", "carol"), starts, [*starts[1:], len(table)])}


def test_demo_shows_three_users_and_a_clean_audit(tmp_path):
    result, *places = run_demo(tmp_path)
    assert_clean_run(result, *places)
    out = result.stdout
    assert "“How does parental leave pay work?” asked as three users" in out
    assert "the company handbook: permission denied" in out  # bob
    assert "parental-leave#5" in out  # alice's hr-only source
    assert "✓ Every data call ran as the user who asked; the agent's own identity only called chat-model, as declared." in out


def test_the_people_example_shows_what_genie_gives_each_user(tmp_path):
    result, *places = run_demo(tmp_path, "--example", "people")
    assert_clean_run(result, *places)
    out = result.stdout
    assert "end-user scopes: dashboards.genie," in out
    assert "“List the employees with their names, teams and salaries.” asked as three users" in out
    answers = answers_of(out)
    assert "Here are 5 employees." in answers["alice"] and "| Evan Evans  | executive   |   310000 |" in answers["alice"]
    assert "Here are 4 employees." in answers["carol"] and "| Dana Diaz   | sales       | NULL     |" in answers["carol"]
    assert "Evan Evans" not in answers["carol"] and "98000" not in answers["carol"]  # no executive row, no salary
    assert "the HR analytics space: permission denied" in answers["bob"] and "employees" not in answers["bob"]
    for user in ("alice", "bob", "carol"):  # Genie asked as each user, through the agent
        assert re.search(rf"│ {user} +│ {user} via obo-agent +│ POST /genie/spaces/1eec1f60…/start-conversation", out), out
    assert "obo-agent (the agent itself)" not in out
    assert "✓ Every data call ran as the user who asked; the agent's own identity made no call." in out


def test_an_unknown_example_is_one_line_of_error(tmp_path):
    result, _, cwd, _ = run_demo(tmp_path, "--example", "payroll")
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.strip().splitlines() == ["Error: no example 'payroll': choose one of handbook, people."]
    assert list(cwd.iterdir()) == []


def test_the_app_demo_asks_the_app_by_name_as_three_users_and_shows_forging_changes_nothing(tmp_path):
    result, home, cwd, temp = run_demo(tmp_path, "--app")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "Traceback" not in out + result.stderr and "Warning" not in out + result.stderr
    assert list(cwd.iterdir()) == [] and list(temp.iterdir()) == []
    assert "user_api_scopes (databricks.yml): serving.serving-endpoints, vectorsearch.vector-search-endpoints, vectorsearch.vector-search-indexes" in out
    answers = answers_of(out)
    assert "parental-leave#5" in answers["alice"] and "parental-leave#5" not in answers["carol"]
    assert "the company handbook: permission denied" in answers["bob"]
    for user in ("alice", "bob", "carol"):  # DatabricksOpenAI looked the App up as the user, and the App acted as them
        assert re.search(rf"│ {user} +│ {user}@example.com +│ GET /apps/handbook-app", out), out
        assert re.search(rf"│ {user} +│ {user} via obo-agent +│ GET /vector-search/indexes/main.docs.handbook_index", out), out
    assert "✓ Every data call ran as the user who asked; the agent's own identity only called chat-model, as declared." in out
    assert "✓ bob sending alice's token in x-forwarded-access-token himself got his own answer" in out
    assert "✓ A call without a user token: 401 from the front door, before the App runs." in out
    assert not (Path(__file__).resolve().parents[1] / "examples" / "handbook_agent" / "mlruns").exists()


def test_only_an_example_with_an_app_runs_as_one(tmp_path):
    result, *_ = run_demo(tmp_path, "--app", "--example", "people")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == ["Error: the people example has no Databricks App; --app runs: handbook."]
