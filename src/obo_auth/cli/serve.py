"""``obo-auth serve``: serve a logged model locally, on behalf of the users of a running workspace."""

from __future__ import annotations

import click

from obo_auth.cli.workspace import console, runtime_for_url


@click.command()
@click.argument("model_uri")
@click.option("--workspace", "workspace_url", required=True, help="URL of a running `obo-auth workspace`.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default="a free port")
@click.option("--endpoint", default="agent", show_default=True, help="The serving endpoint name to register in the workspace.")
@click.option("--agent-principal", default="obo-agent", show_default=True, help="The service principal the agent runs as.")
def serve(model_uri: str, workspace_url: str, port: int, endpoint: str, agent_principal: str) -> None:
    """Serve MODEL_URI at POST /invocations, as Databricks Model Serving does, until Ctrl-C."""
    from obo_auth.serving.server import run

    runtime = runtime_for_url(workspace_url)

    def announce(url, served) -> None:
        scopes = ", ".join(served.user_scopes or []) or "none (no user auth policy: no end-user token is passed)"
        console.print(f"[bold]Serving[/bold] {model_uri} as endpoint [cyan]{endpoint}[/cyan] at [cyan]{url}/invocations[/cyan]")
        console.print(f"End-user tokens are downscoped to: {scopes}")
        mode = "one request at a time (it reads the runtime's process-wide token slot)" if served.serialize else "concurrently"
        console.print(f"Requests are served {mode}.")
        console.print(
            f"Try: curl -s {url}/invocations -H \"Authorization: Bearer $(obo-auth workspace token alice)\" "
            "-d '{\"messages\": [{\"role\": \"user\", \"content\": \"How many vacation days do I get?\"}]}'"
        )

    run(model_uri, runtime["url"], runtime["admin_token"], port=port, endpoint=endpoint, agent_principal=agent_principal, ready_file=None, announce=announce)
