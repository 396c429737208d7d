"""Canary tokens (issue 14): every token the local workspace issues is recognisable (``dapi`` + 32
hex digits; a service principal's OAuth client secret ``dose`` + 32 hex), so after running the
representative flows, everything they left is scanned for anything of that shape:

- every log record, at DEBUG for every logger (databricks-sdk, urllib3, httpx, openai, mlflow,
  obo_auth), its message, its arguments and its traceback; and the processes' stdout and stderr.
  The serving and App processes, ``obo-auth demo`` and the demo's own children log at DEBUG
  too, each into a file of its own that is scanned: a ``sitecustomize`` on their PYTHONPATH
  configures it, and keeps the demo from quieting its libraries;
- the messages and reprs of every exception raised, the workspace's audit records;
- every file written under the temporary directories, the MLflow store (traces included) and
  obo_auth's home.

Flows: the example agent served (whole, streamed, relayed by the workspace, a revoked token),
the example App (whole and streamed), a SQL statement, a Genie conversation and two UC
connection calls through obo_auth's user client (traced with MLflow), calls with expired,
revoked and unknown tokens, and ``obo-auth demo``.

The one place a credential is kept on disk by design is obo_auth's runtime file of a running
``obo-auth workspace`` (its admin credential, owner-only): the demo runs its workspace in
process and writes none; the test says so if that changes.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import mlflow
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.serving import ExternalFunctionRequestHttpMethod
from databricks_openai import DatabricksOpenAI

import obo_auth
from obo_auth.local import LocalWorkspace
from obo_auth.local.genie.seed import derived_space_id
from obo_auth.local.sql.seed import derived_warehouse_id
from obo_auth.serving import serve, serve_app
from obo_auth.testing.oauth import oauth_user_client

from canary_scan import files_holding_a_token, files_under, token_shaped

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "handbook_agent"
QUESTION = "How does parental leave pay work?"
USERS = ("alice", "bob", "carol")
# Makes every Python process started with it on PYTHONPATH (the serving and App processes, the
# demo and its own children) log every logger at DEBUG into a file of its own in LOGS, and keeps
# anything from turning a logger down (the demo quiets its libraries' loggers).
SITECUSTOMIZE = """
import logging, os
_handler = logging.FileHandler(os.path.join({logs!r}, f"{{os.getpid()}}.log"))
_handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
logging.getLogger().addHandler(_handler)
logging.getLogger().setLevel(logging.DEBUG)
logging.Logger.setLevel = lambda self, level: None
"""


class Clock:
    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.time() + self.skipped


def scan(places: dict[str, list[tuple[str, bytes | str]]], secrets: list[str]) -> dict[str, list[str]]:
    """``place: [(where, text), ...]`` -> where each token-shaped string or secret was found."""
    found: dict[str, list[str]] = {}
    for place, items in places.items():
        for where, text in items:
            raw = text.encode("utf-8", "backslashreplace") if isinstance(text, str) else text
            hits = token_shaped(raw) + [f"secret {s[:8]}..." for s in secrets if s.encode() in raw]
            if hits:
                found.setdefault(place, []).append(f"{where}: {[h[:12] + '...' for h in hits]}")
    return found


@pytest.fixture
def everything_at_debug(caplog):
    """Every logger of this process at DEBUG into caplog, whatever it was configured with."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_no_token_or_client_secret_is_left_anywhere_by_the_flows_or_the_demo(
    request, tmp_path, own_mlflow_store, handbook_example, logging_as_alice, everything_at_debug, capfd, monkeypatch
):
    started = time.time() - 1
    for name in ("site", "logs", "home", "demo-home", "demo-cwd", "demo-tmp"):
        (tmp_path / name).mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE.format(logs=str(tmp_path / "logs")))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path / "site"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setenv("OBO_AUTH_HOME", str(tmp_path / "home"))
    clock = Clock()
    errors: list[BaseException] = []
    # obo-auth demo, as a user runs it, while the flows below run: read at the end.
    environment = {**os.environ, "OBO_AUTH_HOME": str(tmp_path / "demo-home"), "TMPDIR": str(tmp_path / "demo-tmp")}
    environment.pop("MLFLOW_TRACKING_URI", None)
    demo = subprocess.Popen([sys.executable, "-m", "obo_auth.cli.demo"], env=environment, cwd=tmp_path / "demo-cwd", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    request.addfinalizer(lambda: demo.poll() is None and demo.kill())  # a test failing half-way leaves no demo running

    def expect_failure(call) -> None:
        try:
            call()
        except Exception as error:  # noqa: BLE001 - every error is kept and scanned
            errors.append(error)
        else:
            raise AssertionError("the call was meant to fail")

    with own_mlflow_store(tmp_path / "store", "canary") as store, LocalWorkspace(clock=clock) as ws:
        secrets = [ws.client_credentials(sp.name)[1] for sp in ws.state.identity.service_principals]
        with logging_as_alice(ws):
            logged = handbook_example.log(handbook_example.CHAT_AGENT)

        # -- local serving: whole, streamed, relayed, refused --------------------------------
        with serve(logged.model_uri, ws, "canary-agent", show_output=True) as endpoint:
            for user in USERS:
                token = ws.issue_token(user)
                for body in ({"messages": [{"role": "user", "content": QUESTION}]}, {"messages": [{"role": "user", "content": QUESTION}], "stream": True}):
                    answer = httpx.post(f"{endpoint.url}/invocations", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=120)
                    assert answer.status_code == 200, answer.text
            relayed = WorkspaceClient(host=ws.url, token=ws.issue_token("carol")).api_client.do(
                "POST", "/serving-endpoints/canary-agent/invocations", body={"messages": [{"role": "user", "content": QUESTION}]}
            )
            assert relayed["messages"]
            revoked = ws.issue_token("alice")
            ws.revoke(revoked)
            refused = httpx.post(f"{endpoint.url}/invocations", json={"messages": []}, headers={"Authorization": f"Bearer {revoked}"}, timeout=60)
            assert refused.status_code == 401
            expect_failure(lambda: WorkspaceClient(host=ws.url, token=revoked).api_client.do("POST", "/serving-endpoints/canary-agent/invocations", body={}))

        # -- the example App: whole and streamed ------------------------------------------------
        with serve_app("app:app", ws, "canary-app", app_dir=EXAMPLE, show_output=True):
            for user, stream in (("alice", False), ("carol", True)):
                llm = DatabricksOpenAI(workspace_client=oauth_user_client(ws.url, ws.issue_token(user)))
                answer = llm.responses.create(model="apps/canary-app", input=[{"role": "user", "content": QUESTION}], stream=stream)
                assert list(answer) if stream else answer.output

        # -- SQL, Genie and UC connections through obo_auth's user client, traced -----------------
        @mlflow.trace
        @obo_auth.on_behalf_of_user
        def as_the_user() -> dict:
            w = obo_auth.current_request().user_client
            rows = w.statement_execution.execute_statement("SELECT name, salary FROM main.hr.employees", derived_warehouse_id("local-warehouse")).result
            genie = w.genie.start_conversation_and_wait(derived_space_id("HR analytics"), "How many employees are there?")
            echoed = [w.serving_endpoints.http_request(conn=c, method=ExternalFunctionRequestHttpMethod.GET, path="/canary").json() for c in ("echo", "echo_per_user")]
            return {"rows": rows.as_dict(), "genie": genie.as_dict(), "echoed": echoed, "user_client": repr(w), "config": repr(w.config)}

        with obo_auth.as_user(ws.issue_token("alice", scopes=["sql", "dashboards.genie", "catalog.connections", "serving.serving-endpoints"], actor="obo-agent"), host=ws.url):
            outcome = as_the_user()
        assert outcome["rows"]["data_array"] and len(outcome["echoed"]) == 2

        # -- refused: expired, revoked and unknown tokens, through the SDK and through obo_auth -------
        expired = ws.issue_token("bob", ttl=60)
        clock.skipped += 61
        for token in (expired, revoked, "dapi" + "0123456789abcdef" * 2):
            expect_failure(lambda: WorkspaceClient(host=ws.url, token=token).current_user.me())
            with obo_auth.as_user(token, host=ws.url):
                expect_failure(as_the_user)
        assert {type(e).__name__ for e in errors} >= {"Unauthenticated"}
        mlflow.flush_trace_async_logging()
        traces = [t.to_json() for t in mlflow.search_traces(return_type="list", max_results=1000)]
        audit = [text for record in ws.audit() for text in (str(record), repr(record), json.dumps(record.to_dict()))]
        reprs = [repr(ws), repr(ws.state.identity), repr(endpoint)]

    demo_out, demo_err = demo.communicate(timeout=600)
    assert demo.returncode == 0, demo_err[-3000:]
    assert "✓ Every data call ran as the user who asked".encode() in demo_out

    out, err = capfd.readouterr()
    logs = {path: path.read_text(errors="replace") for path in (tmp_path / "logs").iterdir()}
    # The processes' own DEBUG logs were written: this one's children and the demo's (4 and more).
    assert len(logs) >= 4 and sum("databricks.sdk DEBUG" in text for text in logs.values()) >= 3, sorted(map(str, logs))
    assert any(r.name.startswith("databricks.sdk") and r.levelno == logging.DEBUG for r in everything_at_debug.records)
    assert traces and len(errors) >= 7
    runtime_files = [p for p in files_under(tmp_path / "home", tmp_path / "demo-home") if p.name.endswith(".json") and "runtime" in p.name]
    assert runtime_files == [], f"a workspace runtime file (it holds the admin credential) was written: {runtime_files}"
    records = everything_at_debug.records
    found = scan(
        {
            "log records": [
                (f"{r.name}:{r.lineno}", text)
                for r in records
                for text in (r.getMessage(), str(r.msg), repr(r.args), r.exc_text or "", everything_at_debug.handler.format(r))
            ],
            "stdout and stderr": [("this process and its children: stdout", out), ("stderr", err), ("demo stdout", demo_out), ("demo stderr", demo_err)],
            "exceptions": [(type(e).__name__, text) for e in errors for text in (str(e), repr(e), repr(e.__cause__), repr(e.__context__))],
            "audit records": [("audit", text) for text in audit],
            "reprs and results": [("repr", text) for text in reprs] + [("as_the_user", json.dumps(outcome, default=repr))],
            "MLflow traces": [("trace", text) for text in traces],
            "files": [
                (str(path), path.read_bytes())
                for path in sorted(set(files_under(tmp_path, Path(store.removeprefix("sqlite:///")).parent, Path(tempfile.gettempdir()), since=started)))
            ],
        },
        secrets,
    )
    assert not found, "token-shaped strings or client secrets were found:\n" + "\n".join(f"{place}: {hits[:20]}" for place, hits in found.items())


def test_the_whole_suites_scan_finds_a_token_left_in_any_file_but_those_holding_one_on_purpose():
    """tests/conftest.py fails the session with files_holding_a_token: proof that it can fail.
    (In a directory removed afterwards: the session's own scan would find these too.)"""
    token, secret = "dapi" + "0123456789abcdef" * 2, "dose" + "fedcba9876543210" * 2
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "deep" / "er").mkdir(parents=True)
        (root / "deep" / "er" / "trace.json").write_text(json.dumps({"headers": {"Authorization": f"Bearer {token}"}}))
        (root / "mlflow.db").write_bytes(b"\x00SQLite" + secret.encode() + b"\x00")
        (root / "smuggled.json").write_text(json.dumps({"token": token}))
        (root / "workspace-8080.json").write_text(json.dumps({"admin_token": token}))
        (root / "clean.log").write_text("dapi and dose, and fp:0123456789ab, but no token")
        found = files_holding_a_token(root, since=0)
        assert [line.split(":")[0] for line in found] == [str(root / "deep" / "er" / "trace.json"), str(root / "mlflow.db")]
        assert token not in "".join(found) and secret not in "".join(found)
        assert files_holding_a_token(root, since=time.time() + 60) == []  # only what was written during the session


FAILING = """
import logging


def test_fails_holding_a_token():
    token = "dapi" + "0123456789abcdef" * 2
    print("printed", token)
    logging.getLogger("agent").warning("logged %s", token)
    assert {"token": token, "short": token} == {"token": "x"}
"""


def test_a_failing_tests_report_shows_no_token(tmp_path):
    """The report pytest prints for a failing test (the assertion's introspection, shortened
    reprs included, its captured output and logs), with tests/conftest.py's hook."""
    (tmp_path / "conftest.py").write_text("from canary_scan import pytest_runtest_makereport  # noqa: F401\n")
    (tmp_path / "test_failing.py").write_text(FAILING)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-vv", str(tmp_path)], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 1 and "test_fails_holding_a_token FAILED" in run.stdout, run.stdout[-2000:]
    assert token_shaped(run.stdout + run.stderr) == [] and "0123456789abcdef0123" not in run.stdout, run.stdout[-2000:]
    assert "fp:033a26074566" in run.stdout  # what it shows instead: the token's fingerprint
