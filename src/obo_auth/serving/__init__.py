"""Local OBO serving of a logged model, in its own process, as Databricks Model Serving does it.

    with LocalWorkspace() as ws, serve(model_uri, ws) as endpoint:
        httpx.post(f"{endpoint.url}/invocations", json={...}, headers={"Authorization": f"Bearer {token}"})
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from obo_auth.serving.environment import model_environment
from obo_auth.serving.workspace_link import WorkspaceAccess

if TYPE_CHECKING:
    from obo_auth.local import LocalWorkspace

_STARTUP_TIMEOUT_SECONDS = 120
# What the serving process may take to stop: in-flight requests (5 s, server.py), then revoking
# the agent's credential and removing its directory. Past this it is killed.
_STOP_TIMEOUT_SECONDS = 15


class ServingFailed(RuntimeError):
    """The serving process exited, or did not become ready, before it served anything."""


@dataclass(frozen=True)
class ServedEndpoint:
    url: str
    endpoint: str
    user_scopes: tuple[str, ...] | None  # what end-user tokens are downscoped to; None: no user auth policy
    concurrent: bool  # False: the agent reads the runtime's process-wide slot, so one request at a time


@contextmanager
def serve(
    model_uri: str,
    workspace: LocalWorkspace | WorkspaceAccess,
    endpoint: str = "agent",
    *,
    port: int = 0,
    agent_principal: str = "obo-agent",
    show_output: bool = False,
) -> Iterator[ServedEndpoint]:
    """Serves the logged model ``model_uri`` for ``workspace`` until the block ends.

    The model runs in its own process, started with a minimal environment (environment.py)
    and the workspace's admin credential on its stdin; the block's end stops it with SIGTERM.
    ``show_output``: the process writes to this one's stdout and stderr (as ``obo-auth serve``
    wants) instead of a log shown only if it fails to start.
    """
    if not isinstance(workspace, WorkspaceAccess):
        workspace = WorkspaceAccess(workspace.url, workspace.state.admin_token)
    with tempfile.TemporaryDirectory(prefix="obo-auth-serve-") as scratch:
        ready = Path(scratch) / "ready.json"
        log = Path(scratch) / "server.log"
        command = [
            sys.executable, "-m", "obo_auth.serving", model_uri,
            "--workspace", workspace.url, "--port", str(port), "--endpoint", endpoint,
            "--agent-principal", agent_principal, "--ready-file", str(ready),
        ]  # fmt: skip
        with open(log, "wb") as output:
            process = subprocess.Popen(
                command,
                env=model_environment(os.environ),
                stdin=subprocess.PIPE,
                stdout=None if show_output else output,
                stderr=None if show_output else subprocess.STDOUT,
            )
        try:
            _hand_over(process, workspace.admin_token)
            yield _wait_until_ready(process, ready, None if show_output else log)
        finally:
            _stop(process)


def _hand_over(process: subprocess.Popen, admin_token: str) -> None:
    """The admin credential, as the first line of the process's stdin (it reads it once)."""
    try:
        process.stdin.write(f"{admin_token}\n".encode())
        process.stdin.close()
    except BrokenPipeError:
        pass  # it exited already: _wait_until_ready says so, with its log


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=_STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until_ready(process: subprocess.Popen, ready: Path, log: Path | None) -> ServedEndpoint:
    import httpx

    deadline = time.monotonic() + _STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            why = log.read_text(errors="replace")[-2000:] if log else "see its output above."
            raise ServingFailed(f"Local serving exited with code {process.returncode} before it was ready:\n{why}")
        if ready.exists():
            served = _announced(ready)
            try:
                if httpx.get(f"{served.url}/ping", timeout=1).status_code == 200:
                    return served
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    raise ServingFailed(f"Local serving did not become ready within {_STARTUP_TIMEOUT_SECONDS} s; see its output.")


def _announced(ready: Path) -> ServedEndpoint:
    """What the serving process wrote once listening (server.py ``_announce``)."""
    announced = json.loads(ready.read_text())
    scopes = announced["user_scopes"]
    return ServedEndpoint(announced["url"], announced["endpoint"], None if scopes is None else tuple(scopes), announced["concurrent"])
