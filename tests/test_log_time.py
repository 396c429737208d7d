"""Logging an obo_auth agent: no user needed, no traceback, explicit about whose identity mlflow's run has.

mlflow calls a ChatAgent's predict while logging it (to check its output, and again to check
the serving input). obo_auth.log_model runs those calls as the user of an enclosing as_user,
or answers them with a stand-in, saying so in one line; never as the developer's own login.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from pathlib import Path

import mlflow
import pytest

from mlflow.types.agent import ChatAgentMessage

import obo_auth
from obo_auth import log_time
from obo_auth.errors import NoInvokerError

AGENT = Path(__file__).parent / "agents" / "whoami_chat_agent.py"
RESOURCES = [obo_auth.ServingEndpoint("chat-model"), obo_auth.VectorSearchIndex("main.docs.handbook_index")]


def _log(**kwargs):
    return obo_auth.log_model(str(AGENT), resources=RESOURCES, name="whoami", **kwargs)


def _requirements(info) -> list[str]:
    return Path(mlflow.pyfunc.get_model_dependencies(info.model_uri)).read_text().split()


def _obo_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "obo_auth"]


def test_logging_needs_no_user_and_says_in_one_line_that_predict_was_not_run(workspace, caplog, capfd, monkeypatch):
    # The developer's own login is in the environment: it must not stand in for the user.
    monkeypatch.setenv("DATABRICKS_HOST", workspace.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", workspace.issue_token("alice"))
    before = len(workspace.audit())
    with caplog.at_level(logging.WARNING, logger="obo_auth"):
        info = _log()
    lines = _obo_lines(caplog)
    assert len(lines) == 1, lines  # mlflow ran predict twice; one line says so
    assert "WhoAmIChatAgent.predict got a stand-in answer" in lines[0] and "as_user" in lines[0]
    assert workspace.audit()[before:] == []  # nothing ran as anyone: not alice, not the agent
    assert "Traceback" not in capfd.readouterr().err
    assert info.model_uri.startswith("models:/")


def test_logging_inside_as_user_runs_predict_as_that_user(workspace, caplog):
    before = len(workspace.audit())
    with caplog.at_level(logging.WARNING, logger="obo_auth"), obo_auth.as_user(workspace.issue_token("carol"), host=workspace.url):
        _log()
    assert _obo_lines(caplog) == [f"obo_auth: mlflow runs the agent's predict while logging it, as the user given to obo_auth.as_user at {workspace.url}."]
    callers = {r.principal for r in workspace.audit()[before:] if r.path.endswith("/Me")}
    assert callers == {"carol@example.com"}


def test_the_stand_in_ends_with_log_model(workspace):
    info = _log()
    agent = mlflow.pyfunc.load_model(info.model_uri)
    with pytest.raises(NoInvokerError, match="as_user"):  # a real call after logging: no user, no answer
        agent.predict({"messages": [{"role": "user", "content": "who am I?"}]})
    assert log_time.stand_in(lambda: None, ()) is None


def test_a_decorated_call_other_than_an_agents_predict_fails_at_log_time():
    @obo_auth.on_behalf_of_user
    def lookup(question):
        raise AssertionError("must not run without a user")

    with log_time.validation_run(), pytest.raises(NoInvokerError, match="being logged"):
        lookup("who am I?")


def test_what_the_agent_prints_while_logged_goes_to_stderr_not_the_callers_stdout(workspace, capfd):
    with obo_auth.as_user(workspace.issue_token("alice"), host=workspace.url):
        _log()
    out, err = capfd.readouterr()
    assert "[NOTICE]" not in out and "[NOTICE]" in err


def test_requirements_are_read_from_the_agents_imports_not_inferred_by_running_it(mocker):
    infer = mocker.spy(mlflow.models, "infer_pip_requirements")
    info = _log()
    assert infer.call_count == 0  # mlflow's inference loads the model in a subprocess and runs predict
    requirements = _requirements(info)
    names = {line.split("==")[0] for line in requirements}
    assert {"mlflow", "databricks-sdk"} <= names
    assert not names & {"pandas", "databricks-openai", "pytest"}  # the agent imports none of these


def test_extra_pip_requirements_are_kept_beside_the_read_ones():
    info = _log(extra_pip_requirements=["httpx>=0.27"])
    requirements = _requirements(info)
    assert "httpx>=0.27" in requirements and any(r.startswith("mlflow==") for r in requirements)


def test_every_declaration_is_recorded_in_the_mlmodel_metadata():
    info = _log()
    assert mlflow.models.Model.load(info.model_uri).metadata["obo_auth"] == {
        "version": 1,
        "resources": [
            {"type": "serving_endpoint", "name": "chat-model", "on_behalf_of_user": True},
            {"type": "vector_search_index", "name": "main.docs.handbook_index", "on_behalf_of_user": True},
        ],
    }


def _whoami_agent():
    spec = importlib.util.spec_from_file_location("whoami_for_task_test", AGENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WhoAmIChatAgent()


def test_a_task_created_while_logging_runs_real_requests_once_logging_is_over(workspace):
    """An asyncio task copies the context, skip mode included: what it copies goes inert with log_model."""
    agent = _whoami_agent()
    question = [ChatAgentMessage(role="user", content="who am I?")]

    async def later(started: asyncio.Event, release: asyncio.Event) -> str:
        started.set()
        await release.wait()
        with obo_auth.as_user(workspace.issue_token("alice"), host=workspace.url):
            return agent.predict(question).messages[0].content

    async def main() -> str:
        started, release = asyncio.Event(), asyncio.Event()
        with log_time.validation_run():
            task = asyncio.get_running_loop().create_task(later(started, release))
            await started.wait()
        release.set()
        return await task

    assert asyncio.run(main()) == "alice@example.com"


def test_as_user_inside_a_skipped_run_runs_for_real(workspace):
    agent = _whoami_agent()
    with log_time.validation_run(), obo_auth.as_user(workspace.issue_token("bob"), host=workspace.url):
        answer = agent.predict([ChatAgentMessage(role="user", content="who am I?")])
    assert answer.messages[0].content == "bob@example.com"


def test_code_paths_must_be_a_list():
    with pytest.raises(obo_auth.ArgumentTypeError, match=r"code_paths= takes a list of paths"):
        _log(code_paths="helpers.py")
