"""``obo-auth serve``: serve a logged model locally, on behalf of the users of a running workspace.

The model runs in its own process with a minimal environment, as with
:func:`obo_auth.serving.serve` (which this uses): never in this one, which carries the
developer's own login. Only the announcement (where it serves, how to call it) goes to stdout;
the model process's own output, and whatever its libraries print, goes to stderr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from obo_auth.cli.foreground import process_ended, stop_on_sigterm, wait_until_stopped
from obo_auth.cli.workspace import _find_runtime, console, runtime_for_url

if TYPE_CHECKING:  # obo_auth.serving is imported when the command runs: `obo-auth --help` stays quick
    from obo_auth.serving import ServedEndpoint


@click.command()
@click.argument("model_uri")
@click.option("--workspace", "workspace_url", help="URL of a running `obo-auth workspace` (default: the one started last).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default="a free port")
@click.option("--endpoint", default="agent", show_default=True, help="The serving endpoint name to register in the workspace.")
@click.option("--agent-principal", default="obo-agent", show_default=True, help="The service principal the agent runs as.")
def serve(model_uri: str, workspace_url: str | None, port: int, endpoint: str, agent_principal: str) -> None:
    """Serve MODEL_URI at POST /invocations, as Databricks Model Serving does, until Ctrl-C."""
    from obo_auth.serving import ServingFailed
    from obo_auth.serving import serve as serve_model
    from obo_auth.serving.workspace_link import WorkspaceAccess

    runtime = runtime_for_url(workspace_url) if workspace_url else _find_runtime(None)
    access = WorkspaceAccess(runtime["url"], runtime["admin_token"])
    stop_on_sigterm()
    try:
        with serve_model(model_uri, access, endpoint, port=port, agent_principal=agent_principal, show_output=True) as served:
            _announce(model_uri, served)
            code = wait_until_stopped(served.exit_code)
            raise click.ClickException(process_ended("the model process", code, "obo-auth serve"))  # leaving the block cleans up after it
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM is how it is meant to stop; leaving the block stopped the serving process
    except ServingFailed as failed:
        raise click.ClickException(str(failed)) from None


def _announce(model_uri: str, served: ServedEndpoint) -> None:
    through_workspace = f"{served.workspace_url}/serving-endpoints/{served.endpoint}/invocations"
    workspace_port = served.workspace_url.rsplit(":", 1)[1]
    scopes = ", ".join(served.user_scopes or []) or "none (no user auth policy: no end-user token is passed)"
    mode = "concurrently" if served.concurrent else "one request at a time (it reads the runtime's process-wide token slot)"
    for line in (
        f"Serving {model_uri} as endpoint {served.endpoint}",
        f"  through the workspace: {through_workspace}",
        f"  directly:              {served.url}/invocations",
        f"End-user tokens are downscoped to: {scopes}",
        f"Requests are served {mode}.",
        f"Try: curl -s {through_workspace} -H \"Authorization: Bearer $(obo-auth workspace token alice --port {workspace_port})\" "
        "-d '{\"messages\": [{\"role\": \"user\", \"content\": \"How many vacation days do I get?\"}]}'",
    ):
        # Plain and unwrapped: the URLs and the curl line are meant to be copied.
        console.print(line, markup=False, highlight=False, soft_wrap=True)
