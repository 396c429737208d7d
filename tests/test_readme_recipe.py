"""The README's "Your own agent, from the shell", run as written: its files and its terminals.

Each `<!-- recipe: NAME -->` block is taken from README.md as it is (files are written out,
terminals run in bash with the checkout's .venv first on PATH), in a fresh OBO_AUTH_HOME,
with no MLFLOW_TRACKING_URI, so the default model store is what serve finds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- recipe: (?P<name>[^>]+?) -->\n```\w+\n(?P<body>.*?)```\n", re.S)


def recipe() -> dict[str, str]:
    return {m["name"]: m["body"] for m in BLOCK.finditer((ROOT / "README.md").read_text())}


@pytest.fixture
def shell(tmp_path):
    """``shell.start(name)`` runs a recipe terminal in the background; ``shell.run(name)`` to completion."""
    project, temp = tmp_path / "project", tmp_path / "tmp"
    project.mkdir()
    temp.mkdir()
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "OBO_AUTH_HOME": str(tmp_path / "home"),
        "TMPDIR": str(temp),
    }
    environment.pop("MLFLOW_TRACKING_URI", None)  # the recipe uses obo_auth's default store
    started: list[subprocess.Popen] = []

    class Shell:
        def __init__(self):
            self.project, self.temp, self.blocks, self.environment = project, temp, recipe(), environment

        def start(self, name: str) -> subprocess.Popen:
            process = subprocess.Popen(
                ["bash", "-euo", "pipefail", "-c", self.blocks[name]], cwd=project, env=environment,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
            )  # fmt: skip
            started.append(process)
            return process

        def run(self, name: str) -> subprocess.CompletedProcess:
            return subprocess.run(["bash", "-euo", "pipefail", "-c", self.blocks[name]], cwd=project, env=environment, capture_output=True, text=True, timeout=300)

        def stop(self, process: subprocess.Popen) -> tuple[str, str]:
            os.killpg(process.pid, signal.SIGTERM)
            return process.communicate(timeout=60)

    yield Shell()
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_for(check, what: str, processes, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for process in processes:
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(f"{what}: a terminal exited ({process.returncode}):\n{out[-2000:]}\n{err[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: timed out")
        time.sleep(0.2)


def test_the_readme_recipe_runs_start_to_finish(shell):
    for name in ("my_agent.py", "log_agent.py"):
        (shell.project / name).write_text(shell.blocks[name])

    workspace = shell.start("terminal 1")
    _wait_for(lambda: shell.run("terminal 4").returncode == 0, "the workspace starts", [workspace], timeout=60)
    as_agent = shell.run("terminal 4")
    assert as_agent.stdout.strip() == "obo-agent"  # acting as the agent's service principal, over OAuth M2M

    serving = shell.start("terminal 2")
    ready = lambda: '"messages"' in shell.run("terminal 3").stdout  # noqa: E731
    _wait_for(ready, "logging and serving the agent", [workspace, serving])

    asked = shell.run("terminal 3")
    assert asked.returncode == 0, asked.stderr
    lines = asked.stdout.splitlines()
    answers = [json.loads(line)["messages"][-1]["content"] for line in lines[:3]]
    alice, bob, carol = answers
    assert alice.startswith("HR only:")  # the HR-only passage her group may read
    assert "I could not use: the handbook (you do not have permission)" in bob
    assert "HR only" not in carol and carol  # her row filter hides the HR rows
    audit = "\n".join(lines[3:])
    for user, decision in (("alice", "allow 200"), ("bob", "deny 403"), ("carol", "allow 200")):
        assert re.search(rf"{user}@example\.com via obo-agent\s+GET /api/2\.0/vector-search/indexes/main\.docs\.handbook_index\s+{decision}", audit), audit

    serve_out, serve_err = shell.stop(serving)
    assert "Traceback" not in serve_err and "[NOTICE]" not in serve_out
    workspace_out, _ = shell.stop(workspace)
    assert re.search(r"carol@example\.com via obo-agent\s+GET /api/2\.0/vector-search/indexes/main\.docs\.handbook_index/query", workspace_out)
    assert sorted(p.name for p in shell.project.iterdir()) == ["log_agent.py", "my_agent.py"]  # no mlflow.db, no mlruns


def test_the_readme_plugin_example_passes_as_written(shell):
    for name in ("my_agent.py", "test_my_agent.py", "seeds/two_teams.yaml"):
        (shell.project / name).parent.mkdir(exist_ok=True)
        (shell.project / name).write_text(shell.blocks[name])

    # The plugin is found through its entry point: no conftest.py, no -p.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_agent.py"],
        cwd=shell.project, env=shell.environment, capture_output=True, text=True, timeout=600,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 passed" in done.stdout
    assert sorted(p.name for p in shell.project.iterdir() if p.name != "__pycache__") == ["my_agent.py", "seeds", "test_my_agent.py"]
