"""``obo-auth serve``: serve a logged model locally, on behalf of the users of a running workspace.

The model runs in its own process with a minimal environment, as with
:func:`obo_auth.serving.serve` (which this uses): never in this one, which carries the
developer's own login.
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING

import click

from obo_auth.cli.workspace import console, runtime_for_url

if TYPE_CHECKING:  # obo_auth.serving is imported when the command runs: `obo-auth --help` stays quick
    from obo_auth.serving import ServedEndpoint


@click.command()
@click.argument("model_uri")
@click.option("--workspace", "workspace_url", required=True, help="URL of a running `obo-auth workspace`.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default="a free port")
@click.option("--endpoint", default="agent", show_default=True, help="The serving endpoint name to register in the workspace.")
@click.option("--agent-principal", default="obo-agent", show_default=True, help="The service principal the agent runs as.")
def serve(model_uri: str, workspace_url: str, port: int, endpoint: str, agent_principal: str) -> None:
    """Serve MODEL_URI at POST /invocations, as Databricks Model Serving does, until Ctrl-C."""
    from obo_auth.serving import ServingFailed
    from obo_auth.serving import serve as serve_model
    from obo_auth.serving.workspace_link import WorkspaceAccess

    runtime = runtime_for_url(workspace_url)
    access = WorkspaceAccess(runtime["url"], runtime["admin_token"])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with serve_model(model_uri, access, endpoint, port=port, agent_principal=agent_principal, show_output=True) as served:
            _announce(model_uri, served)
            stop.wait()
    except KeyboardInterrupt:
        pass  # Ctrl-C is how it is meant to stop; the serving process got it too and stopped
    except ServingFailed as failed:  # its own output, above, says why
        raise click.ClickException(str(failed)) from None


def _announce(model_uri: str, served: ServedEndpoint) -> None:
    scopes = ", ".join(served.user_scopes or []) or "none (no user auth policy: no end-user token is passed)"
    console.print(f"[bold]Serving[/bold] {model_uri} as endpoint [cyan]{served.endpoint}[/cyan] at [cyan]{served.url}/invocations[/cyan]")
    console.print(f"End-user tokens are downscoped to: {scopes}")
    mode = "concurrently" if served.concurrent else "one request at a time (it reads the runtime's process-wide token slot)"
    console.print(f"Requests are served {mode}.")
    console.print(
        f"Try: curl -s {served.url}/invocations -H \"Authorization: Bearer $(obo-auth workspace token alice)\" "
        "-d '{\"messages\": [{\"role\": \"user\", \"content\": \"How many vacation days do I get?\"}]}'"
    )
