"""The local serving process: load a logged model and serve it like Databricks Model Serving.

Run as ``python -m obo_auth.serving`` by :func:`obo_auth.serving.serve` and by
``obo-auth serve``. It is its own process, as a serving container is: it changes the
process environment (runtime.install) and reaches the workspace only over HTTP. The
workspace's admin credential arrives in the environment variable ``OBO_AUTH_ADMIN_TOKEN``,
never on the command line.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import uvicorn

from obo_auth.local.server import loopback_socket
from obo_auth.serving import runtime
from obo_auth.serving.app import ServedModel, build_app
from obo_auth.serving.workspace_link import WorkspaceLink

ADMIN_TOKEN_VARIABLE = "OBO_AUTH_ADMIN_TOKEN"


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
    return ServedModel(model=model, endpoint=endpoint, user_scopes=scopes, agent_principal=agent_principal, serialize=not decorated)


def _agent_of(model):
    """The user's agent object inside mlflow's pyfunc wrapper (ChatAgent, ResponsesAgent or PythonModel)."""
    wrapper = model._model_impl  # mlflow's loaders keep it under a name per flavour
    for attribute in ("chat_agent", "responses_agent", "python_model"):
        if hasattr(wrapper, attribute):
            return getattr(wrapper, attribute)
    return model.unwrap_python_model()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m obo_auth.serving")
    parser.add_argument("model_uri")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--endpoint", default="agent")
    parser.add_argument("--agent-principal", default="obo-agent")
    parser.add_argument("--ready-file", help="Where to write the URL once serving (for the parent process).")
    args = parser.parse_args(argv)
    admin_token = os.environ.pop(ADMIN_TOKEN_VARIABLE, None)
    if not admin_token:
        sys.exit(f"{ADMIN_TOKEN_VARIABLE} is not set: start local serving with `obo-auth serve` or obo_auth.serving.serve().")
    run(args.model_uri, args.workspace, admin_token, port=args.port, endpoint=args.endpoint, agent_principal=args.agent_principal, ready_file=args.ready_file)


def run(model_uri: str, workspace_url: str, admin_token: str, *, port: int, endpoint: str, agent_principal: str, ready_file: str | None, announce=None) -> None:
    link = WorkspaceLink(workspace_url, admin_token)
    sock = loopback_socket(port)
    try:
        with tempfile.TemporaryDirectory(prefix="obo-auth-serving-") as credentials_dir:
            # The agent's own identity, as the platform mounts it: an OAuth token in a file. The
            # platform rotates it; locally it lives as long as the serving process.
            runtime.install(workspace_url, link.mint(agent_principal, scopes=None, ttl=None), Path(credentials_dir))
            served = load(model_uri, endpoint, agent_principal)
            link.register_endpoint(endpoint)
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            server = uvicorn.Server(uvicorn.Config(build_app(served, link), log_level="warning", access_log=False, lifespan="off"))
            if ready_file:
                Path(ready_file).write_text(url)
            if announce:
                announce(url, served)
            server.run(sockets=[sock])
    finally:
        sock.close()
        link.close()
