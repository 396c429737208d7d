"""`obo-auth serve` as a user runs it: real processes, real HTTP.

What it prints: the announcement alone on stdout (both URLs, a curl line through the
workspace), everything the model process and its libraries print on stderr; and when it
cannot serve, exactly one `Error: ...` line saying what to do, never a traceback. The model
comes from obo_auth's default store, logged from another directory than it is served from.
(`obo-auth workspace` itself is in test_cli.py.)
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import mlflow
import pytest

import obo_auth
from obo_auth import model_store
from obo_auth.admin_api import AUDIT_PATH
from obo_auth.serving.revocation import SERVING_KILLED
from obo_auth.local import LocalWorkspace

CLI = [sys.executable, "-c", "from obo_auth.cli.main import cli; cli()"]
QUESTION = {"messages": [{"role": "user", "content": "How does parental leave pay work?"}]}


def _start_workspace(environment: dict[str, str], *extra: str) -> tuple[subprocess.Popen, str]:
    """`obo-auth workspace` in the foreground of its own process; its URL once it runs."""
    process = subprocess.Popen([*CLI, "workspace", *extra], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lines.append(process.stdout.readline())
        if match := re.search(r"running at (http://127\.0\.0\.1:\d+)", lines[-1]):
            return process, match.group(1)
    process.kill()
    pytest.fail("obo-auth workspace did not start:\n" + "".join(lines))


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=60)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """$OBO_AUTH_HOME of these tests' commands: the workspace's runtime file, the default store."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def environment(home):
    """A user's shell: no MLFLOW_TRACKING_URI, so obo_auth's default store under $OBO_AUTH_HOME."""
    shell = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")}
    return {**shell, "OBO_AUTH_HOME": str(home), "COLUMNS": "200", "MLFLOW_RECORD_ENV_VARS_IN_MODEL_LOGGING": "false"}


@pytest.fixture(scope="module")
def running_workspace(environment):
    process, url = _start_workspace(environment)
    try:
        yield url
    finally:
        _stop(process)


def _token(environment: dict[str, str], user: str) -> str:
    printed = subprocess.run([*CLI, "workspace", "token", user], env=environment, capture_output=True, text=True, check=True)
    return printed.stdout.strip()


@pytest.fixture(scope="module")
def logged_example(running_workspace, environment, handbook_example):
    """The example agent, logged as its author would: into obo_auth's default store."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("OBO_AUTH_HOME", "MLFLOW_RECORD_ENV_VARS_IN_MODEL_LOGGING"):
            patch.setenv(name, environment[name])
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        # set_experiment exports MLFLOW_EXPERIMENT_ID and sets mlflow's active experiment: both
        # recorded through the patch first, so both are undone after logging.
        patch.setenv("MLFLOW_EXPERIMENT_ID", "0")
        patch.setattr("mlflow.tracking.fluent._active_experiment_id", None)
        patch.setenv("DATABRICKS_HOST", running_workspace)  # the agent's own identity, for mlflow's check run
        patch.setenv("DATABRICKS_TOKEN", _token(environment, "obo-agent"))
        mlflow.set_tracking_uri(None)
        try:
            model_store.use_default_unless_set()  # what log_model does; done first to choose the experiment in it:
            mlflow.set_experiment(experiment_id="0")  # its Default one (another module's active experiment is not there)
            with obo_auth.as_user(_token(environment, "alice"), host=running_workspace):
                info = handbook_example.log()
        finally:
            mlflow.set_tracking_uri(None)  # log_model chose the default store; the other tests' store is the environment's
    assert (Path(environment["OBO_AUTH_HOME"]) / "mlflow" / "mlflow.db").exists()
    return info


def serve_cli(environment: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`obo-auth serve ...` that is expected to fail before serving."""
    return subprocess.run([*CLI, "serve", *args], env=environment, cwd=cwd, capture_output=True, text=True, timeout=180)


def assert_one_error_line(result: subprocess.CompletedProcess) -> str:
    """Exit code not 0, nothing on stdout, and on stderr exactly one line: `Error: ...`."""
    assert result.returncode != 0
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_serve_prints_only_its_announcement_on_stdout_and_answers_through_the_workspace(
    running_workspace, environment, logged_example, tmp_path
):
    """Served from another directory than it was logged from, against the workspace started last
    (no --workspace), with the vector-search client printing its [NOTICE] lines in the agent."""
    stderr = tmp_path / "stderr.log"
    with open(stderr, "w") as errors:
        server = subprocess.Popen(
            [*CLI, "serve", logged_example.model_uri], env=environment, cwd=tmp_path, stdout=subprocess.PIPE, stderr=errors, text=True
        )
    try:
        announced = []
        while not announced or not announced[-1].startswith("Try: "):
            line = server.stdout.readline()
            assert line, f"obo-auth serve stopped:\n{stderr.read_text()}"
            announced.append(line)
        through_workspace = f"{running_workspace}/serving-endpoints/agent/invocations"
        assert announced[1].split() == ["through", "the", "workspace:", through_workspace]
        direct = announced[2].split()[-1]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/invocations", direct)
        assert announced[-1].startswith(f"Try: curl -s {through_workspace} ")
        alice = {"Authorization": f"Bearer {_token(environment, 'alice')}"}
        answer = httpx.post(through_workspace, json=QUESTION, headers=alice, timeout=120)
        assert answer.status_code == 200, answer.text
        assert answer.json()["custom_outputs"]["sources"]
        assert httpx.post(direct, json=QUESTION, headers=alice, timeout=120).status_code == 200
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        rest = server.communicate(timeout=60)[0]
    assert "[NOTICE]" in stderr.read_text()  # the vector-search client did print it: on stderr
    assert "[NOTICE]" not in "".join(announced) + rest
    assert rest == "" and len(announced) == 6


def _model_process(server: subprocess.Popen) -> int:
    """The pid of the serving process `obo-auth serve` started."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    found = [int(pid) for pid in children if b"obo_auth.serving" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(found) == 1, children
    return found[0]


def _audit(url: str, environment: dict[str, str]) -> list[dict]:
    runtime = json.loads(next(Path(environment["OBO_AUTH_HOME"]).glob(f"workspace-{_port(url)}*.json")).read_text())
    answer = httpx.get(f"{url}{AUDIT_PATH}", headers={"Authorization": f"Bearer {runtime['admin_token']}"}, timeout=30)
    answer.raise_for_status()
    return answer.json()["records"]


def test_serve_stops_when_its_model_process_is_killed_and_leaves_no_token_or_relay(running_workspace, environment, logged_example, tmp_path):
    """The model process killed under it (the OOM killer, a crash in native code): `obo-auth serve`
    says so in one `Error:` line and exits, having revoked every token the process minted (the
    agent's own credential among them) and cleared its relay registration, instead of announcing a
    dead endpoint while the workspace relays callers and their tokens to the freed port."""
    stderr = tmp_path / "stderr.log"
    with open(stderr, "w") as errors:
        server = subprocess.Popen(
            [*CLI, "serve", logged_example.model_uri, "--endpoint", "doomed"], env=environment, cwd=tmp_path,
            stdout=subprocess.PIPE, stderr=errors, text=True,
        )  # fmt: skip
    try:
        line = ""
        while not line.startswith("Try: "):
            line = server.stdout.readline()
            assert line, f"obo-auth serve stopped:\n{stderr.read_text()}"
        through_workspace = f"{running_workspace}/serving-endpoints/doomed/invocations"
        alice = {"Authorization": f"Bearer {_token(environment, 'alice')}"}
        assert httpx.post(through_workspace, json=QUESTION, headers=alice, timeout=120).status_code == 200
        os.kill(_model_process(server), signal.SIGKILL)
        server.wait(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 1 and server.stdout.read() == ""
    assert stderr.read_text().strip().splitlines()[-1] == (
        "Error: the model process was killed (SIGKILL), so obo-auth serve stopped; its output above may say why. "
        "Run obo-auth serve again to serve it."
    )
    relayed = httpx.post(through_workspace, json=QUESTION, headers=alice, timeout=30)
    # No longer registered: nothing is relayed to the freed port.
    assert relayed.status_code == 503 and "an agent that nothing serves" in relayed.json()["message"], relayed.text
    # (The module's other servings stopped cleanly: their revocations by tag say so, not this.)
    revoked = [r for r in _audit(running_workspace, environment) if SERVING_KILLED in (r.get("reason") or "")]
    assert len(revoked) == 1, revoked
    assert re.search(r"admin revoked [1-9]\d* token\(s\)", revoked[0]["reason"]) and "obo-agent" in revoked[0]["reason"], revoked


def test_serve_without_any_running_workspace_says_how_to_start_one(tmp_path):
    environment = {**os.environ, "OBO_AUTH_HOME": str(tmp_path)}
    error = assert_one_error_line(serve_cli(environment, "models:/m-anything"))
    assert error == "Error: No local workspace is running at all: start one with `obo-auth workspace`."


def test_serve_with_a_workspace_url_no_workspace_runs_at(running_workspace, environment):
    nowhere = f"http://127.0.0.1:{_free_port()}"
    error = assert_one_error_line(serve_cli(environment, "models:/m-anything", "--workspace", nowhere))
    assert nowhere in error and "obo-auth workspace" in error


@pytest.mark.parametrize("store", ["default", "missing-file"])
def test_serve_a_model_that_is_not_in_the_store_names_the_store(running_workspace, environment, logged_example, tmp_path, store):
    """The default store holds other models (the serving process looks); a sqlite store whose
    file does not exist is refused before any serving process starts."""
    uri = _default_store(environment)
    if store == "missing-file":
        uri = f"sqlite:///{tmp_path / 'nothing-here.db'}"
        environment = {**environment, "MLFLOW_TRACKING_URI": uri}
    missing = "models:/m-00000000000000000000000000000000"
    error = assert_one_error_line(serve_cli(environment, missing, cwd=tmp_path))
    assert error == f"Error: no model {missing} in the MLflow store {uri} (set MLFLOW_TRACKING_URI, or log it with obo_auth.log_model)"
    assert not (tmp_path / "nothing-here.db").exists()


def test_serve_on_a_port_in_use(running_workspace, environment, logged_example):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        error = assert_one_error_line(serve_cli(environment, logged_example.model_uri, "--port", str(port)))
    assert error == f"Error: port {port} is in use: choose another --port, or 0 for a free one"


def test_serve_a_model_whose_resources_the_workspace_does_not_have(environment, logged_example, tmp_path):
    """The example agent against a workspace seeded with neither its index nor its chat model."""
    seed = tmp_path / "seed.yaml"
    seed.write_text("users: [{user_name: alice@example.com}]\nservice_principals: [{name: obo-agent}]\n")
    own = {**environment, "OBO_AUTH_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": _default_store(environment)}
    process, url = _start_workspace(own, "--seed", str(seed))
    try:
        error = assert_one_error_line(serve_cli(own, logged_example.model_uri))
    finally:
        _stop(process)
    assert error == (
        f"Error: the model declares 2 resources that do not exist in the workspace at {url}: "
        "vector search index main.docs.handbook_index (it has none); serving endpoint chat-model (it has none); "
        "seed them, or fix the declarations and log the model again"
    )


def _default_store(environment: dict[str, str]) -> str:
    return f"sqlite:///{Path(environment['OBO_AUTH_HOME']) / 'mlflow' / 'mlflow.db'}"


def test_serve_against_a_workspace_that_crashed(environment, tmp_path):
    """A workspace killed on the spot leaves its runtime file behind, and nothing answers at its URL."""
    own = {**environment, "OBO_AUTH_HOME": str(tmp_path)}
    process, url = _start_workspace(own)
    process.kill()
    process.wait()
    error = assert_one_error_line(serve_cli(own, "models:/m-anything"))
    assert url in error and "start one with `obo-auth workspace`" in error


def test_serve_against_a_workspace_that_refuses_the_admin_credential(environment, logged_example, tmp_path):
    """A crashed workspace's runtime file, and another workspace since started on its port."""
    own = {**environment, "OBO_AUTH_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": _default_store(environment)}
    process, url = _start_workspace(own)
    process.kill()
    process.wait()
    with LocalWorkspace(port=_port(url)):
        error = assert_one_error_line(serve_cli(own, "models:/m-anything", "--workspace", url))
    assert error.startswith(f"Error: the local workspace at {url} refused the admin credential serving was given")


def test_the_serving_process_reports_a_port_taken_since_the_parent_checked_it(running_workspace, environment, tmp_path):
    """Its failure goes to the ready file, for the parent to say once; it prints nothing itself."""
    runtime = next(Path(environment["OBO_AUTH_HOME"]).glob("workspace-*.json"))
    admin_token = json.loads(runtime.read_text())["admin_token"]
    ready = tmp_path / "ready.json"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        child = subprocess.run(
            [sys.executable, "-m", "obo_auth.serving", "models:/m-anything", "--workspace", running_workspace,
             "--port", str(port), "--ready-file", str(ready)],
            input=f"{admin_token}\n", env=environment, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert child.returncode == 1 and child.stdout == "" and child.stderr == ""
    assert json.loads(ready.read_text()) == {
        "error": f"Cannot listen on 127.0.0.1:{port} (Address already in use); choose another port or 0 for a free one."
    }
