"""The `obo-auth` commands as a user runs them: real processes, real HTTP.

`obo-auth demo` is in test_demo.py; `obo_auth.serving.serve` in test_local_serving.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from databricks.sdk import WorkspaceClient

from obo_auth.cli.main import cli

CLI = [sys.executable, "-c", "from obo_auth.cli.main import cli; cli()"]


@pytest.fixture
def running_workspace(tmp_path):
    """`obo-auth workspace` in the foreground of its own process, as a user starts it."""
    environment = {**os.environ, "OBO_AUTH_HOME": str(tmp_path), "COLUMNS": "200"}
    process = subprocess.Popen([*CLI, "workspace"], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if match := re.search(r"running at (http://127\.0\.0\.1:\d+)", line):
            break
    else:
        process.kill()
        pytest.fail("obo-auth workspace did not start:\n" + "".join(lines))
    try:
        yield match.group(1), environment, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_workspace_prints_its_url_and_token_prints_a_working_token(running_workspace):
    url, environment, _ = running_workspace
    printed = subprocess.run([*CLI, "workspace", "token", "alice"], env=environment, capture_output=True, text=True, timeout=120)
    assert printed.returncode == 0, printed.stderr
    token = printed.stdout.strip()
    assert WorkspaceClient(host=url, token=token).current_user.me().user_name == "alice@example.com"
    scoped = subprocess.run(
        [*CLI, "workspace", "token", "carol", "--scopes", "serving.serving-endpoints"], env=environment, capture_output=True, text=True, timeout=120
    )
    assert httpx.get(f"{url}/api/2.0/vector-search/endpoints", headers={"Authorization": f"Bearer {scoped.stdout.strip()}"}).status_code == 403


def test_token_for_an_unknown_user_says_who_is_known(running_workspace):
    _, environment, _ = running_workspace
    printed = subprocess.run([*CLI, "workspace", "token", "zed"], env=environment, capture_output=True, text=True, timeout=120)
    assert printed.returncode != 0
    assert "known: alice, bob, carol" in printed.stderr and "Traceback" not in printed.stderr


def test_token_without_a_running_workspace_says_how_to_start_one(tmp_path):
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["workspace", "token", "alice"], env={"OBO_AUTH_HOME": str(tmp_path)})
    assert result.exit_code != 0 and "obo-auth workspace" in result.output


def test_the_workspace_stops_and_removes_its_runtime_file_on_ctrl_c(running_workspace, tmp_path):
    _, _, process = running_workspace
    assert list(tmp_path.glob("workspace-*.json"))
    process.send_signal(2)  # SIGINT, as Ctrl-C
    process.wait(timeout=30)
    assert not list(tmp_path.glob("workspace-*.json"))


def test_serve_answers_as_the_caller_against_a_running_workspace(running_workspace, tmp_path):
    """`obo-auth serve MODEL_URI --workspace URL`, both commands in their own processes, the serve
    command run from a shell holding the developer's own Databricks login."""
    import mlflow

    import obo_auth

    url, environment, _ = running_workspace
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    environment = {**environment, "MLFLOW_TRACKING_URI": store, "MLFLOW_RECORD_ENV_VARS_IN_MODEL_LOGGING": "false"}

    def token(user: str) -> str:
        return subprocess.run([*CLI, "workspace", "token", user], env=environment, capture_output=True, text=True, check=True).stdout.strip()

    mlflow.set_tracking_uri(store)
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("cli", artifact_location=str(tmp_path / "artifacts")))
    agent = Path(__file__).resolve().parent / "agents" / "escaping_agent.py"
    try:
        with pytest.MonkeyPatch.context() as patch, obo_auth.as_user(token("alice"), host=url):
            patch.setenv("DATABRICKS_HOST", url)
            patch.setenv("DATABRICKS_TOKEN", token("obo-agent"))  # the agent's own identity while logging
            info = obo_auth.log_model(str(agent), resources=[obo_auth.ServingEndpoint("chat-model")], pip_requirements=["mlflow"])
    finally:
        mlflow.set_tracking_uri(None)
    port = _free_port()
    developer_login = {"DATABRICKS_HOST": url, "DATABRICKS_TOKEN": token("alice")}
    server = subprocess.Popen(
        [*CLI, "serve", info.model_uri, "--workspace", url, "--port", str(port)],
        env={**environment, **developer_login},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    report = tmp_path / "report.json"
    try:
        answer = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and answer is None:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/invocations",
                    json={"input": [{"role": "user", "content": "who am i"}], "custom_inputs": {"report_to": str(report)}},
                    headers={"Authorization": f"Bearer {token('carol')}"},
                    timeout=30,
                )
                answer = response.json()
            except httpx.TransportError:
                time.sleep(0.5)
        assert answer is not None, "obo-auth serve did not answer"
        assert answer["output"][0]["content"][0]["text"] == "carol@example.com"
    finally:
        server.terminate()  # SIGTERM, to the command; it stops the model's process the same way
        printed = server.communicate(timeout=60)[0]
    assert f"127.0.0.1:{port}/invocations" in printed and "concurrently" in printed
    escaped = json.loads(report.read_text())
    # The model ran in its own process, without the developer's login the command had.
    assert not [entry for entry in escaped["environ"] if entry.startswith("DATABRICKS_") or developer_login["DATABRICKS_TOKEN"] in entry]
    assert not Path(escaped["credentials_dir"]).exists()
    refused = httpx.get(f"{url}/api/2.0/preview/scim/v2/Me", headers={"Authorization": f"Bearer {escaped['agent_token']}"})
    assert refused.status_code == 401 and "revoked" in refused.json()["message"]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
