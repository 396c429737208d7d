"""Local OBO serving of a logged model, in its own process, as Databricks Model Serving does it.

    with LocalWorkspace() as ws, serve(model_uri, ws) as endpoint:
        httpx.post(f"{endpoint.url}/invocations", json={...}, headers={"Authorization": f"Bearer {token}"})
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from obo_auth import model_store
from obo_auth.serving.environment import model_environment
from obo_auth.serving.errors import ServingFailed
from obo_auth.serving.model_checks import model_not_found, store_cannot_hold
from obo_auth.serving.workspace_link import WorkspaceAccess

if TYPE_CHECKING:
    from obo_auth.local import LocalWorkspace

__all__ = ["ServedEndpoint", "ServingFailed", "serve"]

_STARTUP_TIMEOUT_SECONDS = 120
# What the serving process may take to stop: in-flight requests (5 s, server.py), then revoking
# the agent's credential and removing its directory. Past this it is killed.
_STOP_TIMEOUT_SECONDS = 15
# With show_output, the serving process's stdout goes where this one's stderr goes: whatever the
# agent's libraries print (the vector-search client's "[NOTICE] ..." lines) is not the command's result.
_STDERR = 2


@dataclass(frozen=True)
class ServedEndpoint:
    url: str
    endpoint: str
    user_scopes: tuple[str, ...] | None  # what end-user tokens are downscoped to; None: no user auth policy
    concurrent: bool  # False: the agent reads the runtime's process-wide slot, so one request at a time
    workspace_url: str  # the workspace also answers {workspace_url}/serving-endpoints/{endpoint}/invocations
    interface: str = "pyfunc"  # "chat_agent" ({"messages": ...}), "responses_agent" ({"input": ...}) or "pyfunc"


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

    The model runs in its own process, started with a minimal environment (environment.py),
    the MLflow store of this process (obo_auth.model_store) and the workspace's admin
    credential on its stdin; the block's end stops it with SIGTERM. ``ServingFailed`` (one
    line saying what to do) if it cannot start: no such model, a declared resource missing
    from the workspace, the port taken, the workspace gone or refusing the admin credential.
    ``show_output``: the process writes to this one's stderr (as ``obo-auth serve`` wants)
    instead of a log shown only if it fails to start.
    """
    if not isinstance(workspace, WorkspaceAccess):
        workspace = WorkspaceAccess(workspace.url, workspace.state.admin_token)
    store = model_store.tracking_uri()
    if store_cannot_hold(model_uri, store):
        raise model_not_found(model_uri, store)
    _refuse_taken_port(port)
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
                # The store is passed explicitly: one set in this process with mlflow.set_tracking_uri
                # (or obo_auth's default) is not in the environment the model process inherits.
                env={**model_environment(os.environ), "MLFLOW_TRACKING_URI": store},
                stdin=subprocess.PIPE,
                stdout=_STDERR if show_output else output,
                stderr=None if show_output else subprocess.STDOUT,
            )
        try:
            _hand_over(process, workspace.admin_token)
            yield _wait_until_ready(process, ready, None if show_output else log, workspace.url)
        finally:
            _stop(process)


def _refuse_taken_port(port: int) -> None:
    """Says at once that a chosen port is taken, rather than after the model process started.

    (The model process still reports a port taken in between, with the socket's own message.)
    """
    if not port:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as serving binds it: a port in TIME_WAIT is free
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServingFailed(f"port {port} is in use: choose another --port, or 0 for a free one") from None
            raise ServingFailed(f"cannot listen on port {port} ({exc.strerror}): choose another --port, or 0 for a free one") from None


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


def _wait_until_ready(process: subprocess.Popen, ready: Path, log: Path | None, workspace_url: str) -> ServedEndpoint:
    import httpx

    deadline = time.monotonic() + _STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        # Polled before the ready file is read: a process that wrote its failure there, then
        # exited, is judged by what it wrote.
        exited = process.poll() is not None
        if ready.exists():
            served = _announced(ready, workspace_url)
            try:
                if httpx.get(f"{served.url}/ping", timeout=1, trust_env=False).status_code == 200:
                    return served
            except httpx.HTTPError:
                pass
        if exited:
            exited_early = f"local serving exited with code {process.returncode} before it was ready"
            if log is None:
                raise ServingFailed(f"{exited_early}; its output above says why")
            raise ServingFailed(f"{exited_early}:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)
    raise ServingFailed(f"local serving did not become ready within {_STARTUP_TIMEOUT_SECONDS} s; its output says why")


def _announced(ready: Path, workspace_url: str) -> ServedEndpoint:
    """What the serving process wrote once listening, or why it could not start (server.py ``_report``)."""
    announced = json.loads(ready.read_text())
    if "error" in announced:
        raise ServingFailed(announced["error"])
    scopes = announced["user_scopes"]
    return ServedEndpoint(
        announced["url"], announced["endpoint"], None if scopes is None else tuple(scopes), announced["concurrent"], workspace_url,
        announced["interface"],
    )
