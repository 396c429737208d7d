"""The local serving process: load a logged model and serve it like Databricks Model Serving.

Started as ``python -m obo_auth.serving`` by :func:`obo_auth.serving.serve` (which
``obo-auth serve`` uses too), with only the environment a serving container would have
(environment.py). It is its own process, as a serving container is: it changes the
process environment (runtime.install) and reaches the workspace only over HTTP. The
workspace's admin credential arrives as the first line of its stdin, read once at start:
never on the command line, never in the environment (``/proc/<pid>/environ`` shows that).

It stops on SIGTERM or SIGINT and then revokes the agent's credential and removes its
directory: uvicorn re-raises the signal after its own shutdown, and the handler installed
here turns it into an exit that runs that clean-up (SIGTERM's default handler would kill
the process on the spot, and SIGINT's would print a traceback).

What it can tell about why it cannot start (no such model, a declared resource missing from
the workspace, the port taken, the workspace gone or refusing the admin credential) it writes
to the ready file as ``{"error": "..."}`` and exits with 1, printing nothing: the parent raises
it as ``ServingFailed`` and ``obo-auth serve`` prints it once, as ``Error: ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import NoReturn

import uvicorn

from obo_auth import model_store
from obo_auth.http_edge import KEEP_ALIVE_SECONDS, loopback_socket
from obo_auth.serving import model_checks, runtime
from obo_auth.serving.agent_credential import AgentCredential
from obo_auth.serving.app import ServedModel, build_app
from obo_auth.serving.errors import ServingFailed
from obo_auth.serving.revocation import LiveTokens
from obo_auth.serving.workspace_link import WorkspaceLink, WorkspaceRefused

# In-flight requests get this long to finish once serving is asked to stop; the parent
# (serving/__init__.py) waits longer than this plus the clean-up before it kills.
GRACEFUL_SHUTDOWN_SECONDS = 5
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def load(model_uri: str, endpoint: str, agent_principal: str):
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(model_uri)
    policy = model.metadata.auth_policy or {}
    user_policy = policy.get("user_auth_policy") or {}
    scopes = user_policy.get("api_scopes")
    python_model = _agent_of(model)
    decorated = all(
        getattr(getattr(type(python_model), name, None), "__obo_auth_on_behalf_of_user__", False)
        for name in ("predict", "predict_stream")
        if getattr(type(python_model), name, None) is not None
    )
    return ServedModel(
        model=model, endpoint=endpoint, user_scopes=scopes, agent_principal=agent_principal, serialize=not decorated,
        interface=_interface_of(python_model),
    )  # fmt: skip


def _interface_of(python_model) -> str:
    from mlflow.pyfunc import ChatAgent, ResponsesAgent

    if isinstance(python_model, ChatAgent):
        return "chat_agent"
    return "responses_agent" if isinstance(python_model, ResponsesAgent) else "pyfunc"


def _agent_of(model):
    """The user's agent object inside mlflow's pyfunc wrapper (ChatAgent, ResponsesAgent or PythonModel)."""
    wrapper = model._model_impl  # mlflow's loaders keep it under a name per flavour
    for attribute in ("chat_agent", "responses_agent", "python_model"):
        if hasattr(wrapper, attribute):
            return getattr(wrapper, attribute)
    return model.unwrap_python_model()


def main(argv: list[str] | None = None) -> None:
    for stop_signal in STOP_SIGNALS:  # first: a signal while loading cleans up too
        signal.signal(stop_signal, exit_on_signal)
    parser = argparse.ArgumentParser(prog="python -m obo_auth.serving")
    parser.add_argument("model_uri")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--endpoint", default="agent")
    parser.add_argument("--agent-principal", default="obo-agent")
    parser.add_argument("--ready-file", required=True, help="Where to write the URL and what is served once serving, or why it cannot start.")
    parser.add_argument("--minted-for", help="The tag every token this process mints is recorded with (serve() revokes them all should it be killed).")
    args = parser.parse_args(argv)
    admin_token = sys.stdin.readline().strip()
    if not admin_token:
        sys.exit("No admin credential on stdin: start local serving with `obo-auth serve` or obo_auth.serving.serve().")
    ready_file = Path(args.ready_file)
    try:
        run(
            args.model_uri, args.workspace, admin_token, port=args.port, endpoint=args.endpoint, agent_principal=args.agent_principal,
            ready_file=ready_file, minted_for=args.minted_for,
        )  # fmt: skip
    except ServingFailed as failed:
        report(ready_file, {"error": str(failed)})
        sys.exit(1)


def exit_on_signal(signum: int, frame) -> NoReturn:
    # Ctrl-C reaches this process and `obo-auth serve`, which then sends SIGTERM: neither
    # that nor a second Ctrl-C may cut the clean-up short.
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_IGN)
    raise SystemExit(128 + signum)  # the shell's exit status for "stopped by this signal"


def run(
    model_uri: str, workspace_url: str, admin_token: str, *, port: int, endpoint: str, agent_principal: str, ready_file: Path, minted_for: str | None = None
) -> None:
    sock = listen(port)
    link = WorkspaceLink(workspace_url, admin_token, minted_for)
    try:
        # The workspace first (quick, and its failures say the most), then the model's MLmodel,
        # before anything is minted or the model's code runs.
        existing = link.resource_names()
        model_checks.check_resources(model_checks.read_model(model_uri, model_store.tracking_uri()), existing, workspace_url)
        # The agent's own identity, as the platform mounts it: a short-lived OAuth token in a
        # file, rotated; revoked and its directory removed when this block ends.
        with AgentCredential(link, agent_principal) as credential:
            runtime.install(workspace_url, credential.current, credential.directory)
            served = load(model_uri, endpoint, agent_principal)
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            link.register_endpoint(endpoint, url=url, interface=served.interface)  # the workspace relays its /serving-endpoints/{endpoint}/invocations here
            live = LiveTokens()
            app = build_app(served, link, standing_secrets=lambda: [admin_token, *credential.tokens()], live=live)
            config = uvicorn.Config(
                app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
                timeout_keep_alive=KEEP_ALIVE_SECONDS,
            )  # fmt: skip
            server = uvicorn.Server(config)
            report(ready_file, {"url": url, "endpoint": served.endpoint, "user_scopes": served.user_scopes, "concurrent": not served.serialize, "interface": served.interface})
            try:
                server.run(sockets=[sock])
            finally:
                _unregister(link, endpoint)
                live.revoke_all()  # requests still running past the graceful shutdown never reach their own end
    except WorkspaceRefused as refused:  # only start-up calls the workspace from here: requests' calls are app.py's
        raise cannot_start(refused, workspace_url) from None
    finally:
        sock.close()
        link.close()


def _unregister(link: WorkspaceLink, endpoint: str) -> None:
    """Before the port is freed: whatever listens on it next must never be relayed callers' tokens."""
    try:
        link.register_endpoint(endpoint, url=None)
    except WorkspaceRefused:
        pass  # the workspace is gone or restarted: it relays nothing here any more


def listen(port: int) -> socket.socket:
    try:
        return loopback_socket(port)
    except OSError as exc:  # taken since the parent checked it; the message says which port and what to do
        raise ServingFailed(str(exc)) from None


def cannot_start(refused: WorkspaceRefused, workspace_url: str) -> ServingFailed:
    if refused.status == 503:  # nobody answered (workspace_link.py)
        return ServingFailed(f"no local workspace answers at {workspace_url}: start one with `obo-auth workspace`, or pass the URL of one that runs")
    if refused.status in (401, 403):  # start-up's calls carry no credential but the admin's
        return ServingFailed(
            f"the local workspace at {workspace_url} refused the admin credential serving was given: it is not the workspace "
            "that credential came from (was it restarted?); serve again against the workspace running there"
        )
    return ServingFailed(f"the local workspace at {workspace_url} refused to set up serving: {refused.message}")


def report(ready_file: Path, content: dict) -> None:
    """Tells the parent where serving listens and what it serves, or why it cannot; whole or not at all."""
    fresh = ready_file.with_name(f".{ready_file.name}.partial")
    fresh.write_text(json.dumps(content))
    os.replace(fresh, ready_file)
