"""`obo-auth review`: what a logged agent can do, on whose behalf, read from the model alone,
and the scope drift of a real run through local serving.

The example agent is reviewed as it is logged (clean); the other models are the same model
with its MLmodel edited as the mistakes it stands for would leave it, or logged with a
declaration forgotten.
"""

from __future__ import annotations

import itertools
import json
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import markdown_it
import pytest
import yaml
from click.testing import CliRunner

import obo_auth
from obo_auth.cli.main import cli
from obo_auth.mlmodel import quiet_downloads
from obo_auth.review import SCHEMA, ReviewError, review
from obo_auth.review.drift import Drift, Questions, QuestionsError
from obo_auth.review.render import render

UNSAFE_AGENTS = Path(__file__).resolve().parent / "fixtures" / "check" / "unsafe_agents"
QUESTIONS = {
    "users": ["alice", "bob", "carol"],
    "questions": ["How many vacation days do I get?", {"ask": "How does parental leave pay work?", "as": "alice"}],
}
EXAMPLE_SUMMARY = (
    "This agent can, as you: query any model serving endpoint you can query, including other agents and external models, "
    "which may act with rights of their own (used for: vector search index main.docs.handbook_index); see vector search "
    "endpoint details (used for: vector search index main.docs.handbook_index); search any vector search index you can "
    "read (used for: vector search index main.docs.handbook_index). Like every agent acting for you, it can also read your "
    "user name, email and groups, and the users, groups and permissions visible to you. Whatever it does as you is limited "
    "to what your own Unity Catalog and workspace permissions allow. It also uses, as itself and the same for everyone: "
    "serving endpoint chat-model."
)
AGENTS = Path(__file__).resolve().parent / "agents"


@pytest.fixture(scope="module")
def models(tmp_path_factory, own_mlflow_store, handbook_example):
    """The example agent logged as written, and logged with its VectorSearchIndex declaration forgotten."""
    with own_mlflow_store(tmp_path_factory.mktemp("review-store"), "review") as store:
        example = handbook_example.log()
        forgot = obo_auth.log_model(
            str(handbook_example.CHAT_AGENT),
            resources=[obo_auth.ServingEndpoint("chat-model", on_behalf_of_user=False), obo_auth.ServingEndpoint("databricks-gte-large-en")],
            code_paths=[str(handbook_example.LOGIC)],
        )
        mlflow.register_model(example.model_uri, "handbook")
        yield {"example": "models:/handbook/1", "forgot_index": forgot.model_uri, "store": store}


@pytest.fixture
def edited(models, tmp_path):
    """``edited(change)``: a copy of the example model's directory with its MLmodel passed through ``change``."""

    made = itertools.count()

    def make(change) -> str:
        target = tmp_path / f"model{next(made)}"
        with quiet_downloads():
            mlflow.artifacts.download_artifacts(artifact_uri=models["example"], dst_path=str(target))
        mlmodel = yaml.safe_load((target / "MLmodel").read_text())
        change(mlmodel)
        (target / "MLmodel").write_text(yaml.safe_dump(mlmodel))
        return str(target)

    return make


def test_the_example_agent_reviews_clean_with_its_scopes_in_plain_words(models):
    result = review(models["example"]).to_dict()

    assert result["schema"] == SCHEMA == "obo-auth-review/1"
    assert result["user_auth_policy"] is True
    scopes = {use["scope"]: use for use in result["scopes"]}
    assert sorted(scopes) == ["serving.serving-endpoints", "vectorsearch.vector-search-endpoints", "vectorsearch.vector-search-indexes"]
    assert scopes["vectorsearch.vector-search-indexes"]["resources"] == ["vector search index main.docs.handbook_index"]
    assert "row filters apply" in scopes["vectorsearch.vector-search-indexes"]["allows"]
    assert [r["id"] for r in scopes["serving.serving-endpoints"]["risks"]] == ["endpoint-own-rights"]
    assert result["as_agent"] == [{"type": "serving_endpoint", "name": "chat-model", "source": "obo_auth"}]
    assert result["as_user"] == [{"type": "vector_search_index", "name": "main.docs.handbook_index", "source": "obo_auth"}]
    assert result["callouts"] == []
    assert result["code"] == {"checked": ["chat_agent.py", "code/handbook_logic.py"], "findings": []}
    assert result["end_user_summary"] == EXAMPLE_SUMMARY
    assert result["drift"] is None


def test_the_three_formats_show_the_same_review(models):
    reviewed = review(models["example"]).to_dict()

    terminal = render(reviewed, "terminal")
    markdown = render(reviewed, "markdown")
    assert json.loads(render(reviewed, "json")) == reviewed
    for text in (terminal, markdown):
        for scope in ("serving.serving-endpoints", "vectorsearch.vector-search-indexes"):
            assert scope in text
        assert "chat-model" in text and "endpoint-own-rights" not in text  # risks are explained, not named by id
        assert "search any vector search index you can read" in text
    assert "| vectorsearch.vector-search-indexes |" in markdown
    assert "### End-user summary" in markdown


def test_a_model_logged_with_resources_only_is_called_out(edited):
    def resources_only(mlmodel):
        mlmodel["resources"] = {"api_version": "1", "databricks": {"vector_search_index": [{"name": "main.docs.handbook_index"}]}}
        del mlmodel["auth_policy"]
        del mlmodel["metadata"]["obo_auth"]

    result = review(edited(resources_only)).to_dict()

    assert [c["id"] for c in result["callouts"]] == ["resources-only", "no-user-policy"]
    assert result["callouts"][0]["severity"] == "high"
    assert result["scopes"] == [] and result["user_auth_policy"] is False
    assert {"type": "vector_search_index", "name": "main.docs.handbook_index", "source": "resources"} in result["as_agent"]
    assert result["end_user_summary"].startswith("This agent does not act as you")


def test_scopes_no_declaration_explains_and_scopes_the_platform_refuses_are_called_out(edited):
    def extra(mlmodel):
        mlmodel["auth_policy"]["user_auth_policy"]["api_scopes"] += ["sql.statement-execution", "sql.warehouse"]

    result = review(edited(extra)).to_dict()

    callouts = {(c["id"], c["text"].split(" ")[0]) for c in result["callouts"]}
    assert callouts == {("unexplained-scope", "sql.statement-execution"), ("unknown-scope", "'sql.warehouse'")}
    risks = {r["id"] for use in result["scopes"] for r in use["risks"]}
    assert "write-capable" in risks  # SQL statements can change data
    assert "including statements that change or delete data" in result["end_user_summary"]
    assert "sql.warehouse" not in result["end_user_summary"]  # a scope the platform refuses grants nothing


def test_a_declared_resource_whose_scopes_the_policy_lacks_is_called_out(edited):
    def drop(mlmodel):
        mlmodel["auth_policy"]["user_auth_policy"]["api_scopes"].remove("vectorsearch.vector-search-indexes")

    (missing,) = [c for c in review(edited(drop)).to_dict()["callouts"] if c["id"] == "missing-scope"]

    assert missing["severity"] == "high"
    assert "vector search index main.docs.handbook_index" in missing["text"] and "vectorsearch.vector-search-indexes" in missing["text"]


def test_a_model_without_code_files_says_its_code_was_not_checked(edited):
    def pickled(mlmodel):
        del mlmodel["flavors"]["python_function"]["model_code_path"]

    def and_no_code_dir(path):
        shutil.rmtree(Path(path) / "code")
        return path

    without_code = review(and_no_code_dir(edited(pickled))).to_dict()
    with_code_paths = review(edited(pickled)).to_dict()

    assert without_code["code"] == {"checked": None, "findings": []}
    assert [c["id"] for c in without_code["callouts"]] == ["code-not-checked"]
    # A pickled agent's own class is in no file, whatever its code_paths hold: still called out.
    assert with_code_paths["code"]["checked"] == ["code/handbook_logic.py"]
    (callout,) = with_code_paths["callouts"]
    assert callout["id"] == "code-not-checked" and "only its 1 code_paths file(s) were checked" in callout["text"]


def test_an_unsafe_agents_code_findings_are_in_its_review_with_their_place_in_the_model(edited):
    # The example model with the agent file of a deliberately unsafe agent in its place: review
    # reads the code where the model keeps it, and never runs it.
    model = Path(edited(lambda mlmodel: None))
    shutil.copy(UNSAFE_AGENTS / "user_client_on_self.py", model / "chat_agent.py")

    reviewed = review(str(model)).to_dict()

    found = [(f["rule"], f["path"], f["line"]) for f in reviewed["code"]["findings"]]
    assert found == [("slot-read-in-request", "chat_agent.py", 23), ("user-client-on-self", "chat_agent.py", 26)]
    assert "chat_agent.py:26: user-client-on-self" in render(reviewed, "terminal")
    assert "user-client-on-self" in render(reviewed, "markdown")


def test_names_from_a_hostile_mlmodel_reach_no_terminal_as_control_sequences_and_break_no_markdown(edited):
    hostile_name = "chat\x1b[31m|model` [**Approved**](https://evil.example) ![](https://evil.example/px.png) <img src=x> www.evil.example"

    def hostile(mlmodel):
        mlmodel["metadata"]["obo_auth"]["resources"][1]["name"] = hostile_name

    reviewed = review(edited(hostile)).to_dict()

    terminal, markdown = render(reviewed, "terminal"), render(reviewed, "markdown")
    assert "\x1b" not in terminal and "\x1b" not in markdown
    assert "chat\\x1b[31m|model`" in terminal
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<a " not in rendered and "<img" not in rendered and "<strong>Approved" not in rendered
    assert "[**Approved**](https:/" in rendered  # shown as text
    assert "https://evil" not in markdown and "www.evil" not in markdown  # no bare URL for GitHub to link


def test_a_resource_reached_both_ways_is_listed_both_ways_and_the_system_policy_is_always_the_agents(edited):
    def both(mlmodel):
        mlmodel["metadata"]["obo_auth"]["resources"].append(
            {"type": "vector_search_index", "name": "main.docs.handbook_index", "on_behalf_of_user": False}
        )
        system = mlmodel["auth_policy"]["system_auth_policy"]["resources"]["databricks"]
        system["genie_space"] = [{"name": "space1", "on_behalf_of_user": True}]

    reviewed = review(edited(both)).to_dict()

    as_agent = {(r["type"], r["name"]) for r in reviewed["as_agent"]}
    assert ("vector_search_index", "main.docs.handbook_index") in as_agent
    assert ("genie_space", "space1") in as_agent
    assert ("vector_search_index", "main.docs.handbook_index") in {(r["type"], r["name"]) for r in reviewed["as_user"]}
    assert "itself and the same for everyone: serving endpoint chat-model; vector search index main.docs.handbook_index" in (
        reviewed["end_user_summary"]
    )


def test_a_declared_app_explains_the_apps_scope(edited):
    def app(mlmodel):
        mlmodel["auth_policy"]["user_auth_policy"]["api_scopes"].append("apps.apps")
        mlmodel["metadata"]["obo_auth"]["resources"].append({"type": "app", "name": "hr-app", "on_behalf_of_user": True})

    reviewed = review(edited(app)).to_dict()

    assert reviewed["callouts"] == []
    assert {u["scope"]: u["resources"] for u in reviewed["scopes"]}["apps.apps"] == ["Databricks App hr-app"]


def test_review_reads_no_file_the_mlmodel_points_outside_the_model(edited, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "resources.yaml").write_text("api_version: s3cr3t-value-from-outside\n")
    (outside / "their_project.py").write_text("from databricks.sdk.credentials_provider import ModelServingUserCredentials\nC = ModelServingUserCredentials()\n")

    def points_out(mlmodel):
        mlmodel["resources"] = str(outside / "resources.yaml")

    result = CliRunner().invoke(cli, ["review", edited(points_out)])
    assert result.exit_code == 2
    assert "its resources names another file" in result.stderr and "s3cr3t" not in result.stderr

    model = Path(edited(lambda mlmodel: None))
    (model / "code" / "linked.py").symlink_to(outside / "their_project.py")
    os.mkfifo(model / "code" / "pipe.py")  # read, it would block the review forever
    reviewed = review(str(model)).to_dict()
    assert reviewed["code"] == {"checked": ["chat_agent.py", "code/handbook_logic.py"], "findings": []}


def test_code_is_read_where_the_mlmodel_says_mlflow_loads_it_from(edited, tmp_path):
    def moved(mlmodel):
        mlmodel["flavors"]["python_function"]["code"] = "src"

    model = Path(edited(moved))
    (model / "code").rename(model / "src")

    assert review(str(model)).to_dict()["code"]["checked"] == ["chat_agent.py", "src/handbook_logic.py"]


def test_scope_drift_of_the_example_names_what_each_question_and_user_exercised(models):
    drift = review(models["example"], run=QUESTIONS).drift

    assert drift["declared"] == ["serving.serving-endpoints", "vectorsearch.vector-search-endpoints", "vectorsearch.vector-search-indexes"]
    assert set(drift["used"]) == {"serving.serving-endpoints", "vectorsearch.vector-search-indexes"}
    exercised = {(e["question"], e["user"]) for e in drift["used"]["vectorsearch.vector-search-indexes"]}
    assert exercised == {
        ("How many vacation days do I get?", "alice"),
        ("How many vacation days do I get?", "bob"),
        ("How many vacation days do I get?", "carol"),
        ("How does parental leave pay work?", "alice"),
    }
    assert all(e["call"].endswith(("allow 200", "deny 403")) for calls in drift["used"].values() for e in calls)
    # Declared for the index by obo_auth's table, but the released tools never call the endpoints API.
    assert drift["declared_but_never_used"] == ["vectorsearch.vector-search-endpoints"]
    assert drift["used_but_not_declared"] == {} and drift["unverified"] == []
    # Each question answered whole, then streamed (the example streams).
    assert [(a["user"], a["stream"], a["status"]) for a in drift["asked"]] == [
        (user, stream, 200) for user in ("alice", "bob", "carol", "alice") for stream in (False, True)
    ]
    assert drift["passed"] is True


def test_a_forgotten_declaration_is_used_but_not_declared_and_fails_the_cli(models, tmp_path):
    questions = tmp_path / "questions.yaml"
    questions.write_text(yaml.safe_dump({"questions": [{"ask": "How many vacation days do I get?", "as": ["alice", "carol"]}]}))

    result = CliRunner().invoke(cli, ["review", models["forgot_index"], "--run", str(questions), "--format", "json"])

    assert result.exit_code == 1, result.output
    drift = json.loads(result.stdout)["drift"]
    assert drift["declared"] == ["serving.serving-endpoints"]
    (needed,) = drift["used_but_not_declared"]
    assert needed == "vectorsearch.vector-search-indexes"
    assert {e["user"] for e in drift["used_but_not_declared"][needed]} == {"alice", "carol"}
    assert all(e["call"].endswith("deny 403") for e in drift["used_but_not_declared"][needed])
    assert drift["passed"] is False


@pytest.fixture(scope="module")
def test_agents(models):
    """Two small agents from tests/agents, logged: one calling an API the local workspace does not
    serve, one whose stream fails after its first chunk."""
    declared = [obo_auth.ServingEndpoint("chat-model")]
    return {
        name: obo_auth.log_model(str(AGENTS / f"{name}.py"), resources=declared, pip_requirements=["mlflow"]).model_uri
        for name in ("unknown_api_agent", "failing_stream_agent")
    }


def test_calls_to_apis_the_local_workspace_does_not_serve_are_unverified_and_fail_the_run(test_agents):
    drift = review(test_agents["unknown_api_agent"], run={"users": ["alice"], "questions": ["who am i?"]}).drift

    assert [e["call"] for e in drift["unverified"]] == ["GET /api/2.0/no-such-report-service -> deny 404"]
    assert drift["used_but_not_declared"] == {} and drift["passed"] is False
    assert "UNVERIFIED" in render({**review(test_agents["unknown_api_agent"]).to_dict(), "drift": drift}, "terminal")


def test_a_question_the_agent_cannot_answer_fails_the_run_and_a_failed_stream_is_reported(test_agents):
    answered = review(test_agents["failing_stream_agent"], run={"users": ["carol"], "questions": ["hi"]}).drift

    assert [(a["stream"], a["status"]) for a in answered["asked"]] == [(False, 200), (True, 500)]
    assert answered["passed"] is True  # answered whole; mlflow marks every ChatAgent streamable, streaming or not
    assert "carol asking 'hi' (streamed): HTTP 500" in render({**review(test_agents["failing_stream_agent"]).to_dict(), "drift": answered}, "terminal")


def test_a_question_not_answered_whole_fails_the_run():
    asked = {"question": "hi", "user": "alice", "stream": False, "status": 500, "calls": 0}
    assert Drift(["serving.serving-endpoints"], asked=[asked]).passed is False
    assert Drift(["serving.serving-endpoints"], asked=[{**asked, "status": 200}]).passed is True


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"questions": []}, "needs a non-empty list under questions"),
        ({"questions": ["hi"]}, "questions[0] names no user"),
        ({"users": "alice", "questions": [{"ask": ""}]}, "questions[0]: the question must be non-empty text"),
        ({"users": ["alice"], "questions": [{"ask": "hi", "as": [3]}]}, "questions[0].as must be a user name"),
        ({"users": ["alice"], "question": ["hi"]}, "unknown key(s) question"),
        ({"users": ["alice"], "questions": [{"text": "hi"}]}, "questions[0] must be a question string"),
    ],
)
def test_a_questions_file_that_cannot_be_used_is_refused_in_one_line(content, message):
    with pytest.raises(QuestionsError, match=None) as refused:
        Questions.load(content)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_questions_naming_an_unknown_user_are_refused_before_serving(models):
    with pytest.raises(ReviewError, match=r"'dave', who is not a user of the workspace; its users: .*alice"):
        review(models["example"], run={"users": ["alice", "dave"], "questions": ["hi"]})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["/no/such/model"], "Error: no model at /no/such/model (no MLmodel file there)"),
        # The home directory of a user this machine does not have: was a RuntimeError traceback.
        (["~no-such-user-here/model"], "Error: no model at ~no-such-user-here/model (no MLmodel file there)"),
        (["models:/nothing/1"], "Error: no model models:/nothing/1 in the MLflow store"),
        (["MODEL", "--run", "/no/such/questions.yaml"], "Error: no questions file at /no/such/questions.yaml"),
        (["MODEL", "--seed", "seed.yaml"], "Error: --seed is for --run"),
    ],
)
def test_bad_input_gets_one_error_line_and_exit_status_2(models, arguments, message):
    arguments = [models["example"] if a == "MODEL" else a for a in arguments]

    result = CliRunner().invoke(cli, ["review", *arguments])

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr


def test_a_directory_that_is_not_an_agent_is_refused(edited):
    def sklearn(mlmodel):
        mlmodel["flavors"] = {"python_function": {"loader_module": "mlflow.sklearn"}, "sklearn": {}}

    result = CliRunner().invoke(cli, ["review", edited(sklearn)])

    assert result.exit_code == 2
    assert "is not an agent: its MLmodel has no python_function flavour that serves a Python model" in result.stderr


def test_a_malformed_mlmodel_is_refused_in_one_line(edited):
    def malformed(mlmodel):
        mlmodel["metadata"]["obo_auth"]["resources"] = "everything"

    result = CliRunner().invoke(cli, ["review", edited(malformed)])

    assert result.exit_code == 2
    assert "metadata.obo_auth.resources is the string 'everything', not a list" in result.stderr


def test_the_command_prints_the_report_alone_on_stdout(models):
    environment = {**os.environ, "MLFLOW_TRACKING_URI": models["store"]}
    command = [sys.executable, "-c", "from obo_auth.cli.main import cli; cli()", "review", models["example"], "--format", "markdown"]

    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("## Security review: models:/handbook/1")
    assert "Downloading artifacts" not in done.stdout + done.stderr


def test_the_readme_documents_every_field_of_the_json_schema(models):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = re.split(r"The JSON schema is\s+`obo-auth-review/1`", readme, maxsplit=1)[1].split("In Python:", 1)[0]
    documented = {name for row in table.splitlines() if row.startswith("| `") for name in re.findall(r"`(\w+)(?:\[\])?`", row.split("|")[1])}

    assert documented == set(review(models["example"]).to_dict())


@pytest.mark.parametrize(
    ("mlmodel", "message"),
    [
        ("a: " + "[" * 3000 + "]" * 3000, "is nested too deeply"),
        ("flavors: [1]\n", "is not an agent"),
        ("- just\n- a list\n", "it is a list, not a mapping"),
        ("flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\nresources: 7\n", "resources is a number, not a mapping"),
        (b"\xff\xfe not text", "it is not UTF-8 text"),
    ],
)
def test_an_mlmodel_that_is_not_one_is_refused_in_one_line(tmp_path, mlmodel, message):
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_bytes(mlmodel if isinstance(mlmodel, bytes) else mlmodel.encode())

    result = CliRunner().invoke(cli, ["review", str(model)])

    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_an_error_line_shows_control_characters_escaped(tmp_path):
    model = tmp_path / "x\x1b[2J\u202e"

    result = CliRunner().invoke(cli, ["review", str(model)])

    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr and "x\\x1b[2J\\u202e" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [("questions:\n- " + "[" * 3000 + "]" * 3000 + "\n", "cannot be read: RecursionError"), ("users: " + "9" * 5000, "cannot be read: ValueError")],
)
def test_a_questions_file_that_cannot_be_read_is_one_line(tmp_path, content, message):
    questions = tmp_path / "questions.yaml"
    questions.write_text(content)
    with pytest.raises(QuestionsError, match=message):
        Questions.load(questions)


def test_a_questions_path_that_is_not_a_file_is_refused_without_reading_it():
    with pytest.raises(QuestionsError, match="no questions file at /dev/zero"):
        Questions.load("/dev/zero")
