"""Local OBO serving of a logged model, in its own process, as Databricks Model Serving does it.

    with LocalWorkspace() as ws, serve(model_uri, ws) as endpoint:
        httpx.post(f"{endpoint.url}/invocations", json={...}, headers={"Authorization": f"Bearer {token}"})
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from obo_auth.local import LocalWorkspace
from obo_auth.serving.server import ADMIN_TOKEN_VARIABLE

_STARTUP_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class ServedEndpoint:
    url: str
    endpoint: str


@contextmanager
def serve(model_uri: str, workspace: LocalWorkspace, endpoint: str = "agent", *, port: int = 0, agent_principal: str = "obo-agent") -> Iterator[ServedEndpoint]:
    """Serves the logged model ``model_uri`` for ``workspace`` until the block ends."""
    with tempfile.TemporaryDirectory(prefix="obo-auth-serve-") as scratch:
        ready = Path(scratch) / "url"
        log = Path(scratch) / "server.log"
        environment = {**os.environ, ADMIN_TOKEN_VARIABLE: workspace.state.admin_token}
        command = [
            sys.executable, "-m", "obo_auth.serving", model_uri,
            "--workspace", workspace.url, "--port", str(port), "--endpoint", endpoint,
            "--agent-principal", agent_principal, "--ready-file", str(ready),
        ]  # fmt: skip
        with open(log, "wb") as output:
            process = subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT)
        try:
            url = _wait_until_ready(process, ready, log)
            yield ServedEndpoint(url, endpoint)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_ready(process: subprocess.Popen, ready: Path, log: Path) -> str:
    import httpx

    deadline = time.monotonic() + _STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"Local serving exited with code {process.returncode} before it was ready:\n{tail}")
        if ready.exists():
            url = ready.read_text()
            try:
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"Local serving did not become ready within {_STARTUP_TIMEOUT_SECONDS} s; see its log.")
