"""The `obo-auth` commands as a user runs them: real processes, real HTTP.

`obo-auth demo` is in test_demo.py; `obo_auth.serving.serve` in test_local_serving.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from databricks.sdk import WorkspaceClient

from obo_auth.cli import workspace_audit
from obo_auth.cli.main import cli
from obo_auth.cli.workspace_audit import record_line
from obo_auth.terminal import printable
from obo_auth.serving.workspace_link import WorkspaceLink

CLI = [sys.executable, "-c", "from obo_auth.cli.main import cli; cli()"]
ME = "/api/2.0/preview/scim/v2/Me"
INDEX_QUERY = "/api/2.0/vector-search/indexes/main.docs.handbook_index/query"


class Output:
    """A process's output lines as they come (a reader thread), for tests that wait for one."""

    def __init__(self, stream):
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)  # the process closed its output

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if match := re.search(pattern, line):
                return match
        pytest.fail(f"no line matching {pattern!r} in:\n" + "\n".join(self.seen))

    def rest(self) -> list[str]:
        """Every line until the process closes its output."""
        lines = []
        while (line := self.lines.get(timeout=60)) is not None:
            lines.append(line)
        return lines


@dataclass
class Running:
    url: str
    environment: dict[str, str]
    process: subprocess.Popen
    output: Output

    def run(self, *args: str, **extra) -> subprocess.CompletedProcess:
        """``obo-auth ARGS`` in its own process, against this workspace."""
        return subprocess.run([*CLI, *args], env={**self.environment, **extra}, capture_output=True, text=True, timeout=120)

    def admin(self) -> WorkspaceLink:
        runtime = json.loads(next(Path(self.environment["OBO_AUTH_HOME"]).glob("workspace-*.json")).read_text())
        return WorkspaceLink(runtime["url"], runtime["admin_token"])


def start_workspace(home: Path, *options: str) -> Running:
    """`obo-auth workspace` in the foreground of its own process, as a user starts it."""
    environment = {**os.environ, "OBO_AUTH_HOME": str(home), "COLUMNS": "200"}
    process = subprocess.Popen([*CLI, "workspace", *options], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = Output(process.stdout)
    try:
        url = output.wait_for(r"running at (http://127\.0\.0\.1:\d+)").group(1)
    except BaseException:
        process.kill()
        raise
    return Running(url, environment, process, output)


@pytest.fixture
def running_workspace(tmp_path):
    running = start_workspace(tmp_path)
    try:
        yield running
    finally:
        running.process.terminate()
        running.process.wait(timeout=30)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The stderr of a failed command, which must be one ``Error:`` line and nothing else."""
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), result.stderr
    return result.stderr


def test_workspace_prints_its_url_and_token_prints_a_working_token(running_workspace):
    url = running_workspace.url
    printed = running_workspace.run("workspace", "token", "alice")
    assert printed.returncode == 0, printed.stderr
    token = printed.stdout.strip()
    assert WorkspaceClient(host=url, token=token).current_user.me().user_name == "alice@example.com"
    scoped = running_workspace.run("workspace", "token", "carol", "--scopes", "serving.serving-endpoints")
    assert httpx.get(f"{url}/api/2.0/vector-search/endpoints", headers={"Authorization": f"Bearer {scoped.stdout.strip()}"}).status_code == 403


def test_token_for_an_unknown_user_says_who_is_known(running_workspace):
    assert "known: alice, bob, carol" in one_error_line(running_workspace.run("workspace", "token", "zed"))


@pytest.mark.parametrize("command", [["token", "--scopes", "vectorsearch.vector-search-index", "alice"], ["env", "alice", "--scopes", "sql,vectorsearch.vector-search-index"]])
def test_a_mistyped_scope_is_one_error_naming_the_nearest_valid_one(running_workspace, command):
    error = one_error_line(running_workspace.run("workspace", *command))
    assert "'vectorsearch.vector-search-index' (did you mean 'vectorsearch.vector-search-indexes'?)" in error


def test_token_without_a_running_workspace_says_how_to_start_one(tmp_path):
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["workspace", "token", "alice"], env={"OBO_AUTH_HOME": str(tmp_path)})
    assert result.exit_code != 0 and "obo-auth workspace" in result.output


@pytest.mark.parametrize("command", [["token", "alice"], ["env", "obo-agent"], ["url"], ["audit"]])
def test_a_workspace_that_crashed_is_one_error_and_its_runtime_file_goes(tmp_path, command):
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stale = tmp_path / f"workspace-{port}.json"
    stale.write_text(json.dumps({"url": f"http://127.0.0.1:{port}", "admin_token": "dapi" + "0" * 32}))
    result = subprocess.run([*CLI, "workspace", *command], env={**os.environ, "OBO_AUTH_HOME": str(tmp_path)}, capture_output=True, text=True, timeout=120)
    error = one_error_line(result)
    assert f"No workspace answers at http://127.0.0.1:{port}" in error and "start one with `obo-auth workspace`" in error
    assert "dapi" not in error and not stale.exists()


def test_the_workspace_stops_and_removes_its_runtime_file_on_ctrl_c(running_workspace, tmp_path):
    assert list(tmp_path.glob("workspace-*.json"))
    running_workspace.process.send_signal(signal.SIGINT)  # as Ctrl-C
    running_workspace.process.wait(timeout=30)
    assert not list(tmp_path.glob("workspace-*.json"))


# -- acting as someone from a shell: `workspace env` and `workspace url` ------------------------------
def exported(printed: subprocess.CompletedProcess) -> dict[str, str]:
    assert printed.returncode == 0, printed.stderr
    return {name: value for line in printed.stdout.splitlines() if line.startswith("export ") for name, _, value in [line[len("export ") :].partition("=")]}


def test_env_for_a_service_principal_is_its_oauth_client_credentials(running_workspace):
    variables = exported(running_workspace.run("workspace", "env", "obo-agent"))
    assert set(variables) == {"DATABRICKS_HOST", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"}
    agent = WorkspaceClient(host=variables["DATABRICKS_HOST"], client_id=variables["DATABRICKS_CLIENT_ID"], client_secret=variables["DATABRICKS_CLIENT_SECRET"])
    assert agent.current_user.me().display_name == "obo-agent"


def test_env_for_a_user_is_a_token_downscoped_on_request(running_workspace):
    variables = exported(running_workspace.run("workspace", "env", "carol"))
    assert set(variables) == {"DATABRICKS_HOST", "DATABRICKS_TOKEN"}
    assert WorkspaceClient(host=variables["DATABRICKS_HOST"], token=variables["DATABRICKS_TOKEN"]).current_user.me().user_name == "carol@example.com"
    scoped = exported(running_workspace.run("workspace", "env", "obo-agent", "--scopes", "serving.serving-endpoints"))
    assert set(scoped) == {"DATABRICKS_HOST", "DATABRICKS_TOKEN"}  # a downscoped token, even for a service principal
    refused = httpx.get(f"{running_workspace.url}/api/2.0/vector-search/endpoints", headers={"Authorization": f"Bearer {scoped['DATABRICKS_TOKEN']}"})
    assert refused.status_code == 403 and "Invalid scope" in refused.json()["message"]


def test_eval_of_env_makes_workspace_client_act_as_the_principal_in_that_shell(running_workspace):
    """In a shell still holding another login (alice's token, a profile), as a developer's would."""
    me = "from databricks.sdk import WorkspaceClient; m = WorkspaceClient().current_user.me(); print(m.user_name if '@' in m.user_name else m.display_name)"
    leftover = {"DATABRICKS_TOKEN": running_workspace.run("workspace", "token", "alice").stdout.strip(), "DATABRICKS_CONFIG_PROFILE": "developer"}
    for principal, expected in (("obo-agent", "obo-agent"), ("bob", "bob@example.com")):
        script = f'eval "$({shlex.join([*CLI, "workspace", "env", principal])})" && {shlex.join([sys.executable, "-c", me])}'
        shell = subprocess.run(["bash", "-c", script], env={**running_workspace.environment, **leftover}, capture_output=True, text=True, timeout=120)
        assert shell.returncode == 0, shell.stderr
        assert shell.stdout.strip() == expected


def test_url_prints_the_url(running_workspace):
    printed = running_workspace.run("workspace", "url")
    assert printed.returncode == 0 and printed.stdout == f"{running_workspace.url}\n"


def test_the_welcome_says_how_to_act_as_the_agent_and_as_a_user(running_workspace):
    running_workspace.output.wait_for(r'eval "\$\(obo-auth workspace env obo-agent --port \d+\)"\s+the agent\'s own identity')
    running_workspace.output.wait_for(r'eval "\$\(obo-auth workspace env alice --port \d+\)"\s+a user')


# -- what happened: the foreground log and `workspace audit` ----------------------------------------
def test_the_workspace_prints_a_line_per_request(running_workspace):
    alice = running_workspace.run("workspace", "token", "alice").stdout.strip()
    WorkspaceClient(host=running_workspace.url, token=alice).current_user.me()
    running_workspace.output.wait_for(rf"^\d\d:\d\d:\d\d  alice@example\.com  GET {ME}  allow 200$")
    link = running_workspace.admin()
    try:
        agent_token = link.mint("carol", scopes=["vector-search"], ttl=None, actor="obo-agent")
    finally:
        link.close()
    httpx.post(f"{running_workspace.url}{INDEX_QUERY}", json={"columns": ["id"], "query_text": "vacation"}, headers={"Authorization": f"Bearer {agent_token}"})
    running_workspace.output.wait_for(rf"^\d\d:\d\d:\d\d  carol@example\.com via obo-agent  POST {INDEX_QUERY}  allow 200$")
    httpx.get(f"{running_workspace.url}{ME}")
    running_workspace.output.wait_for(rf"  anonymous  GET {ME}  deny 401$")


def test_a_quiet_workspace_prints_no_requests(tmp_path):
    running = start_workspace(tmp_path, "--quiet")
    httpx.get(f"{running.url}{ME}", headers={"Authorization": f"Bearer {running.run('workspace', 'token', 'bob').stdout.strip()}"})
    running.process.send_signal(signal.SIGINT)
    rest = running.output.rest()
    running.process.wait(timeout=30)
    assert rest[-1] == "Local workspace stopped." and not [line for line in rest if ME in line or "/admin/" in line]


# A path any caller may send, without a token: ESC [2J clears a terminal; U+2028 breaks lines in some.
HOSTILE_PATH = "/api/2.0/x%1b[2J%e2%80%a8y"
HOSTILE_SHOWN = r"/api/2.0/x\x1b[2J\u2028y"  # how the workspace's output shows it
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def test_a_hostile_path_reaches_no_terminal_raw(running_workspace):
    """The foreground workspace's line and the audit table show the path's control characters
    escaped, in the path and in the reason that quotes it; --json escapes them as JSON. (Every
    field, and --follow's lines: test_every_printed_field_is_escaped.)"""
    assert httpx.get(f"{running_workspace.url}{HOSTILE_PATH}").status_code == 404
    running_workspace.output.wait_for(rf"  anonymous  GET {re.escape(HOSTILE_SHOWN)}  deny 404$")
    table = running_workspace.run("workspace", "audit", "--path", "/x")
    lines = running_workspace.run("workspace", "audit", "--path", "/x", "--json")
    assert table.returncode == 0 and lines.returncode == 0, table.stderr + lines.stderr
    assert re.search(rf"anonymous +GET {re.escape(HOSTILE_SHOWN)} +deny 404 +No API found for 'GET {re.escape(HOSTILE_SHOWN)}'\.", table.stdout), table.stdout
    (record,) = [json.loads(line) for line in lines.stdout.splitlines()]
    assert record["path"] == "/api/2.0/x\x1b[2J\u2028y" and "\x1b" in record["reason"]  # JSON-escaped on the wire, exact once parsed
    for printed in (table.stdout, lines.stdout, "\n".join(running_workspace.output.seen)):
        assert not UNPRINTABLE.search(printed.replace("\n", "")), repr(printed)


@given(st.dictionaries(st.sampled_from(["principal", "actor", "method", "path", "decision", "reason"]), st.text()))
def test_every_printed_field_is_escaped(fields):
    """record_line (the foreground workspace, `audit --follow`) and the audit table print no
    control character of any field, whatever it holds."""
    record = {"time": 0, "principal": None, "actor": None, "method": "GET", "path": "/", "decision": "deny", "status": 401, "reason": "r", **fields}
    printed = [record_line(record), record_line(record, reason=True)]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        workspace_audit._print_table([record, record])
    printed += stdout.getvalue().splitlines()
    for line in printed:
        assert line.isprintable(), repr(line)
    for name in ("path", "reason", "principal", "actor"):
        if record[name] and record[name].isprintable():
            assert record[name] in printed[1]  # printable text is shown as it is


def test_escapes_read_as_python_escapes():
    shown = printable("a\x1b[2J\x00\x7f\x9b\u2028\u2029\u202e\U000e0041 é")
    assert shown == r"a\x1b[2J\x00\x7f\x9b\u2028\u2029\u202e\U000e0041 é"


def make_calls(running: Running) -> None:
    """alice reads her user (allowed), bob queries the index he has no grant on (denied)."""
    for user, method, path, body in (("alice", "GET", ME, None), ("bob", "POST", INDEX_QUERY, {"columns": ["id"], "query_text": "leave"})):
        token = running.run("workspace", "token", user).stdout.strip()
        httpx.request(method, f"{running.url}{path}", json=body, headers={"Authorization": f"Bearer {token}"})


def test_audit_prints_every_call_in_full_and_filters(running_workspace):
    make_calls(running_workspace)
    link = running_workspace.admin()
    try:
        agent_token = link.mint("carol", scopes=["vector-search"], ttl=None, actor="obo-agent")
    finally:
        link.close()
    httpx.get(f"{running_workspace.url}{ME}", headers={"Authorization": f"Bearer {agent_token}"})
    table = running_workspace.run("workspace", "audit")
    assert table.returncode == 0, table.stderr
    assert re.search(rf"carol@example\.com via obo-agent +GET {ME} +allow 200", table.stdout)
    assert re.search(rf"alice@example\.com +GET {ME} +allow 200 +allowed", table.stdout)
    assert re.search(rf"bob@example\.com +POST {INDEX_QUERY} +deny 403 +User bob@example\.com does not have SELECT on vector search index 'main\.docs\.handbook_index'\. Ask", table.stdout)
    denied = running_workspace.run("workspace", "audit", "--user", "bob", "--decision", "deny")
    assert INDEX_QUERY in denied.stdout and ME not in denied.stdout and "workspace-admin" not in denied.stdout
    by_full_name = running_workspace.run("workspace", "audit", "--user", "alice@example.com", "--path", "scim")
    assert ME in by_full_name.stdout and "bob" not in by_full_name.stdout


def test_audit_json_is_one_record_per_line_without_its_own_reads(running_workspace):
    make_calls(running_workspace)
    running_workspace.run("workspace", "audit")  # an earlier read of the log: not shown again
    printed = running_workspace.run("workspace", "audit", "--json")
    records = [json.loads(line) for line in printed.stdout.splitlines()]
    assert set(records[0]) == {"time", "principal", "actor", "method", "path", "resource", "scopes", "needed_scope", "decision", "reason", "status", "token_fingerprint"}
    assert [(r["principal"], r["path"], r["status"]) for r in records if not r["path"].startswith("/api/2.0/obo-auth/")] == [
        ("alice@example.com", ME, 200),
        ("bob@example.com", INDEX_QUERY, 403),
    ]
    assert not [r for r in records if r["path"].endswith("/admin/audit")]


def test_audit_follow_prints_new_calls_until_ctrl_c_and_says_once_when_the_workspace_goes(running_workspace):
    follow = subprocess.Popen([*CLI, "workspace", "audit", "--follow", "--user", "carol"], env=running_workspace.environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    output = Output(follow.stdout)
    try:
        carol = running_workspace.run("workspace", "token", "carol").stdout.strip()
        for _ in range(2):
            httpx.get(f"{running_workspace.url}{ME}", headers={"Authorization": f"Bearer {carol}"})
            output.wait_for(rf"carol@example\.com  GET {ME}  allow 200")
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=30) == 0 and follow.stderr.read() == ""
    finally:
        follow.kill()
    # Following a workspace that stops: one line saying so.
    follow = subprocess.Popen([*CLI, "workspace", "audit", "--follow"], env=running_workspace.environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    Output(follow.stdout).wait_for(r"workspace-admin  POST /api/2.0/obo-auth/admin/tokens")  # it is following
    running_workspace.process.terminate()
    assert follow.wait(timeout=30) == 1
    error = follow.stderr.read()
    assert error.count("\n") == 1 and error.startswith(f"Error: Nothing answers at {running_workspace.url}")


def test_serve_answers_as_the_caller_against_a_running_workspace(running_workspace, tmp_path):
    """`obo-auth serve MODEL_URI --workspace URL`, both commands in their own processes, the serve
    command run from a shell holding the developer's own Databricks login."""
    import mlflow

    import obo_auth

    url, environment = running_workspace.url, running_workspace.environment
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    environment = {**environment, "MLFLOW_TRACKING_URI": store, "MLFLOW_RECORD_ENV_VARS_IN_MODEL_LOGGING": "false"}

    def token(user: str) -> str:
        return subprocess.run([*CLI, "workspace", "token", user], env=environment, capture_output=True, text=True, check=True).stdout.strip()

    agent = Path(__file__).resolve().parent / "agents" / "escaping_agent.py"
    previous = mlflow.get_tracking_uri()
    try:
        with pytest.MonkeyPatch.context() as patch, obo_auth.as_user(token("alice"), host=url):
            mlflow.set_tracking_uri(store)
            # Not set_experiment: it would leave this experiment active for later tests, with another store.
            patch.setenv("MLFLOW_EXPERIMENT_ID", mlflow.create_experiment("cli", artifact_location=str(tmp_path / "artifacts")))
            patch.setenv("DATABRICKS_HOST", url)
            patch.setenv("DATABRICKS_TOKEN", token("obo-agent"))  # the agent's own identity while logging
            info = obo_auth.log_model(str(agent), resources=[obo_auth.ServingEndpoint("chat-model")], pip_requirements=["mlflow"])
    finally:
        mlflow.set_tracking_uri(previous)  # not None: mlflow 3.17 would unset MLFLOW_TRACKING_URI too
    port = _free_port()
    developer_login = {"DATABRICKS_HOST": url, "DATABRICKS_TOKEN": token("alice")}
    server = subprocess.Popen(
        [*CLI, "serve", info.model_uri, "--workspace", url, "--port", str(port)],
        env={**environment, **developer_login},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    report = tmp_path / "smuggled.json"
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
