"""Local OBO serving, in its own process: a logged model as Databricks Model Serving serves it,
or an ASGI app behind a front door that plays the Databricks Apps proxy.

    with LocalWorkspace() as ws, serve(model_uri, ws) as endpoint:
        httpx.post(f"{endpoint.url}/invocations", json={...}, headers={"Authorization": f"Bearer {token}"})

    with LocalWorkspace() as ws, serve_app("app:app", ws, "my-app", app_dir="path/to/app") as app:
        httpx.get(f"{app.url}/", headers={"Authorization": f"Bearer {token}"})
"""

from __future__ import annotations

import errno
import json
import os
import socket
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from obo_auth import model_store
from obo_auth.serving.environment import model_environment
from obo_auth.serving.errors import ServingFailed
from obo_auth.serving.model_checks import model_not_found, store_cannot_hold
from obo_auth.serving.revocation import LEFT_AT_STOP, SERVING_KILLED
from obo_auth.serving.workspace_link import WorkspaceAccess, WorkspaceLink, WorkspaceRefused

if TYPE_CHECKING:
    from obo_auth.local import LocalWorkspace

__all__ = ["ServedApp", "ServedEndpoint", "ServingFailed", "serve", "serve_app"]

T = TypeVar("T")

_STARTUP_TIMEOUT_SECONDS = 120
# What the serving process may take to stop: in-flight requests (5 s, server.py), then revoking
# the agent's credential and removing its directory. Past this it is killed.
_STOP_TIMEOUT_SECONDS = 15
# The exit codes of a serving process that ran its own clean-up: stopped by the SIGTERM it is
# stopped with, or a Ctrl-C (server.exit_on_signal exits 128 + the signal, after it). It never
# ends by itself while serving: any other code (os._exit(0) included) is an end without it.
_CLEANED_UP_ITSELF = (128 + signal.SIGTERM, 128 + signal.SIGINT)
# With show_output, the serving process's stdout goes where this one's stderr goes: whatever the
# agent's libraries print (the vector-search client's "[NOTICE] ..." lines) is not the command's result.
_STDERR = 2


def _still_running() -> int | None:
    return None


@dataclass(frozen=True)
class _ServedProcess:
    # The serving process's Popen.poll: its exit code once it has exited (negative: killed by
    # that signal), None while it runs.
    _poll: Callable[[], int | None] = field(default=_still_running, kw_only=True, repr=False, compare=False)

    def exit_code(self) -> int | None:
        """None while the process serving this runs; its exit code once it has exited (killed:
        minus the signal), e.g. so that ``obo-auth serve`` stops, and cleans up, when it dies."""
        return self._poll()


@dataclass(frozen=True)
class ServedEndpoint(_ServedProcess):
    url: str
    endpoint: str
    user_scopes: tuple[str, ...] | None  # what end-user tokens are downscoped to; None: no user auth policy
    concurrent: bool  # False: the agent reads the runtime's process-wide slot, so one request at a time
    workspace_url: str  # the workspace also answers {workspace_url}/serving-endpoints/{endpoint}/invocations
    interface: str = "pyfunc"  # "chat_agent" ({"messages": ...}), "responses_agent" ({"input": ...}) or "pyfunc"


@dataclass(frozen=True)
class ServedApp(_ServedProcess):
    url: str  # the front door: every request needs 'Authorization: Bearer <token>' of a workspace identity
    name: str  # the App's name in the workspace (WorkspaceClient().apps.get(name).url is ``url``)
    app_ref: str  # what is served, "module:attribute"
    user_api_scopes: tuple[str, ...] | None  # what each user's forwarded token is downscoped to; None: no user authorization
    service_principal: str  # the App's own identity (DATABRICKS_CLIENT_ID / _SECRET in its process)
    workspace_url: str
    bundle: str | None = None  # the databricks.yml the App's settings were read from, if any


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
    workspace = _access(workspace)
    store = model_store.tracking_uri()
    if store_cannot_hold(model_uri, store):
        raise model_not_found(model_uri, store)
    _refuse_taken_port(port)
    arguments = [
        "obo_auth.serving", model_uri,
        "--workspace", workspace.url, "--port", str(port), "--endpoint", endpoint, "--agent-principal", agent_principal,
    ]  # fmt: skip
    # The store is passed explicitly: one set in this process with mlflow.set_tracking_uri
    # (or obo_auth's default) is not in the environment the model process inherits.
    environment = {**model_environment(os.environ), "MLFLOW_TRACKING_URI": store}

    def unregister(link: WorkspaceLink) -> None:
        link.register_endpoint(endpoint, url=None)

    with _serving_process(arguments, environment, workspace, unregister, show_output=show_output) as (process, ready, log):
        served = _wait_until_ready(process, ready, log, lambda announced: _endpoint_when_pinged(announced, workspace.url))
        yield replace(served, _poll=process.poll)


@contextmanager
def serve_app(
    app_ref: str,
    workspace: LocalWorkspace | WorkspaceAccess,
    name: str,
    *,
    bundle: str | Path | None = None,
    port: int = 0,
    app_principal: str = "obo-agent",
    app_dir: str | Path | None = None,
    show_output: bool = False,
) -> Iterator[ServedApp]:
    """Serves the ASGI app ``app_ref`` ("module:attribute", or "path/to/file.py:attribute") as
    the Databricks App ``name`` of ``workspace`` until the block ends, behind a front door that
    plays the Apps proxy (app_front_door.py): it authenticates each caller, requires CAN_USE on
    the App, and forwards the caller's token downscoped to the App's ``user_api_scopes`` in
    ``x-forwarded-access-token``, with the other x-forwarded-* headers the platform sets.

    The App runs in its own process (app_server.py) from its source directory (``app_dir``;
    default: the file's directory for a path, else the current directory), with the
    environment a Databricks App gets: the minimal one (environment.py), ``DATABRICKS_HOST``,
    ``DATABRICKS_WORKSPACE_ID``, its service principal ``app_principal``'s ``DATABRICKS_CLIENT_ID`` / ``_SECRET``,
    ``DATABRICKS_APP_NAME`` / ``_PORT`` / ``_URL`` and ``MLFLOW_TRACKING_URI``. Its
    ``user_api_scopes`` are read from ``bundle`` (default: a ``databricks.yml`` beside the
    module, if there is one), ``resources.apps.<key>`` named ``name`` (or the only App there);
    without any, it runs without user authorization: no token is forwarded.

    ``ServingFailed`` (one line) if it cannot start: a bad ``app_ref``, a module that cannot be
    imported or an attribute that is no ASGI app, a bundle it cannot read, the port taken, an
    unknown service principal, the workspace gone or refusing the admin credential.
    """
    from obo_auth.serving import app_server  # here: `import obo_auth.serving` stays light for serve()

    workspace = _access(workspace)
    target = app_server.app_target(app_ref, app_dir)
    bundle_path = Path(bundle) if bundle is not None else target.default_bundle()
    scopes = app_server.bundle_scopes(bundle_path, name, explicit=bundle is not None) if bundle_path else None
    _refuse_taken_port(port)
    arguments = [
        "obo_auth.serving.app_server", target.app_ref, "--app-dir", str(target.directory),
        "--workspace", workspace.url, "--name", name, "--port", str(port), "--app-principal", app_principal,
        *(["--user-api-scopes", json.dumps(scopes)] if scopes else []),
    ]  # fmt: skip
    # As for a model: the store this process uses, where the App's traces go (mlflow's agent server traces
    # every request). Created here if it is obo_auth's default and new: mlflow would otherwise put a new
    # store's artifacts under ./mlruns of the App's source directory.
    environment = {**model_environment(os.environ), "MLFLOW_TRACKING_URI": model_store.use_default_unless_set()}

    def unregister(link: WorkspaceLink) -> None:
        link.register_app(name, None, list(scopes or []), app_principal)

    with _serving_process(arguments, environment, workspace, unregister, show_output=show_output, cwd=target.directory) as (process, ready, log):

        def served(announced: dict[str, Any]) -> ServedApp:
            found = announced["user_api_scopes"]
            return ServedApp(
                announced["url"], announced["name"], target.app_ref, None if found is None else tuple(found),
                announced["service_principal"], workspace.url, None if bundle_path is None else str(bundle_path),
            )  # fmt: skip

        # The App process announces itself once it is registered in the workspace, so it is ready then.
        yield replace(_wait_until_ready(process, ready, log, served, what="the local App"), _poll=process.poll)


def _access(workspace: LocalWorkspace | WorkspaceAccess) -> WorkspaceAccess:
    if isinstance(workspace, WorkspaceAccess):
        return workspace
    return WorkspaceAccess(workspace.url, workspace.state.admin_token)


@contextmanager
def _serving_process(
    arguments: list[str],
    environment: dict[str, str],
    workspace: WorkspaceAccess,
    unregister: Callable[[WorkspaceLink], None],
    *,
    show_output: bool,
    cwd: Path | None = None,
) -> Iterator[tuple[subprocess.Popen, Path, Path | None]]:
    """``python -m <arguments> --ready-file F`` with ``environment`` and the admin credential on
    its stdin; stopped with SIGTERM (killed past _STOP_TIMEOUT_SECONDS) when the block ends.
    Yields the process, its ready file, and its log (None with ``show_output``: it writes to
    this process's stderr).

    Its temporary files (the agent's credentials directory among them) go in this block's own
    temporary directory, and every token it mints is tagged (``--minted-for``): a process killed
    before its own clean-up (SIGKILL, the OOM killer, a crash in native code) leaves no credential
    on disk, no live token and no registration pointing at its freed port, once the block ends.
    """
    with tempfile.TemporaryDirectory(prefix="obo-auth-serve-") as scratch:
        ready = Path(scratch) / "ready.json"
        log = Path(scratch) / "server.log"
        temporary = Path(scratch) / "tmp"
        temporary.mkdir()
        minted_for = f"local-serving-{uuid.uuid4().hex}"
        with open(log, "wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", *arguments, "--ready-file", str(ready), "--minted-for", minted_for],
                env={**environment, "TMPDIR": str(temporary)},
                cwd=cwd,
                stdin=subprocess.PIPE,
                stdout=_STDERR if show_output else output,
                stderr=None if show_output else subprocess.STDOUT,
            )
        try:
            _hand_over(process, workspace.admin_token)
            yield process, ready, None if show_output else log
        finally:
            _stop(process)
            # Killed by a signal, gone with os._exit() or a crash in native code, it ran none of
            # its own clean-up: every token it minted is revoked by its tag, and its registration
            # cleared. Stopped cleanly, it may still have left a revocation the workspace refused
            # to its retry thread, which died with it: revoked by tag too (idempotent). One that
            # reported why it could not start did so after its clean-up, having minted nothing,
            # and the name it was given may be another serving's: left alone.
            if _reported_failure(ready):
                pass
            elif process.returncode in _CLEANED_UP_ITSELF:
                _clean_up_after(workspace, minted_for, LEFT_AT_STOP, None)
            else:
                _clean_up_after(workspace, minted_for, SERVING_KILLED, unregister)


def _reported_failure(ready: Path) -> bool:
    try:
        return "error" in json.loads(ready.read_text())
    except (OSError, ValueError):
        return False


def _clean_up_after(workspace: WorkspaceAccess, minted_for: str, reason: str, unregister: Callable[[WorkspaceLink], None] | None) -> None:
    """What a serving process that is gone may not have done: revoke the tokens it minted (its
    requests', its agent's) and, with ``unregister``, stop the workspace relaying callers to its
    freed port. (Its temporary files are in the block's directory, removed with it.) A workspace
    that is gone needs neither."""
    link = WorkspaceLink(workspace.url, workspace.admin_token)
    try:
        link.revoke_minted_for(minted_for, reason)
        if unregister is not None:
            unregister(link)
    except WorkspaceRefused:
        pass
    finally:
        link.close()


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


def _wait_until_ready(
    process: subprocess.Popen, ready: Path, log: Path | None, accept: Callable[[dict[str, Any]], T | None], *, what: str = "local serving"
) -> T:
    """What ``accept`` makes of the ready file once the process wrote it (None: not ready yet, ask
    again), or ServingFailed with why it could not start: what it wrote there, or its output."""
    deadline = time.monotonic() + _STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        # Polled before the ready file is read: a process that wrote its failure there, then
        # exited, is judged by what it wrote.
        exited = process.poll() is not None
        if ready.exists():
            announced = json.loads(ready.read_text())
            if "error" in announced:  # server.py / app_server.py ``report``
                raise ServingFailed(announced["error"])
            accepted = accept(announced)
            if accepted is not None:
                return accepted
        if exited:
            exited_early = f"{what} exited with code {process.returncode} before it was ready"
            if log is None:
                raise ServingFailed(f"{exited_early}; its output above says why")
            raise ServingFailed(f"{exited_early}:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)
    raise ServingFailed(f"{what} did not become ready within {_STARTUP_TIMEOUT_SECONDS} s; its output says why")


def _endpoint_when_pinged(announced: dict[str, Any], workspace_url: str) -> ServedEndpoint | None:
    """The endpoint the serving process announced (server.py ``report``), once it answers /ping."""
    import httpx

    scopes = announced["user_scopes"]
    served = ServedEndpoint(
        announced["url"], announced["endpoint"], None if scopes is None else tuple(scopes), announced["concurrent"], workspace_url,
        announced["interface"],
    )
    try:
        if httpx.get(f"{served.url}/ping", timeout=1, trust_env=False).status_code == 200:
            return served
    except httpx.HTTPError:
        pass
    return None
