"""``obo-auth serve-app``: serve an ASGI app locally as a Databricks App, behind a front door that
plays the Apps proxy for the users of a running workspace.

The App runs in its own process with the environment a Databricks App gets, as with
:func:`obo_auth.serving.serve_app` (which this uses): never in this one, which carries the
developer's own login. Only the announcement (where it serves, how to call it) goes to stdout;
the App's own output goes to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from obo_auth.cli.foreground import process_ended, stop_on_sigterm, wait_until_stopped
from obo_auth.cli.workspace import _find_runtime, console, runtime_for_url

if TYPE_CHECKING:  # obo_auth.serving is imported when the command runs: `obo-auth --help` stays quick
    from obo_auth.serving import ServedApp


@click.command("serve-app")
@click.argument("app_ref")
@click.option("--name", required=True, help="The App's name in the workspace (2-30 lowercase letters, digits and '-').")
@click.option("--workspace", "workspace_url", help="URL of a running `obo-auth workspace` (default: the one started last).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default="a free port")
@click.option(
    "--bundle",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The databricks.yml whose resources.apps entry gives the App's user_api_scopes (default: one beside the module).",
)
@click.option("--app-dir", type=click.Path(file_okay=False, path_type=Path), help="The App's source directory (default: the current one).")
@click.option("--app-principal", default="obo-agent", show_default=True, help="The service principal the App runs as.")
def serve_app(app_ref: str, name: str, workspace_url: str | None, port: int, bundle: Path | None, app_dir: Path | None, app_principal: str) -> None:
    """Serve the ASGI app APP_REF (module:attribute, e.g. app:app) as a Databricks App, until Ctrl-C.

    Each request needs a workspace user's token; the App gets that user's token downscoped
    to its user_api_scopes in x-forwarded-access-token, as Databricks Apps forward it.
    """
    from obo_auth.serving import ServingFailed
    from obo_auth.serving import serve_app as serve
    from obo_auth.serving.workspace_link import WorkspaceAccess

    runtime = runtime_for_url(workspace_url) if workspace_url else _find_runtime(None)
    access = WorkspaceAccess(runtime["url"], runtime["admin_token"])
    stop_on_sigterm()
    try:
        with serve(app_ref, access, name, bundle=bundle, port=port, app_principal=app_principal, app_dir=app_dir, show_output=True) as served:
            _announce(served)
            code = wait_until_stopped(served.exit_code)
            raise click.ClickException(process_ended("the App process", code, "obo-auth serve-app"))  # leaving the block cleans up after it
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM is how it is meant to stop; leaving the block stopped the App process
    except ServingFailed as failed:
        raise click.ClickException(str(failed)) from None


def _announce(served: ServedApp) -> None:
    workspace_port = served.workspace_url.rsplit(":", 1)[1]
    if served.user_api_scopes:
        scopes = f"Each user's token is forwarded downscoped to: {', '.join(served.user_api_scopes)} (from {served.bundle})"
    else:
        scopes = (
            "No user_api_scopes (no databricks.yml, or none in it): user authorization is off, so the App gets "
            "no x-forwarded-access-token and acts only as itself"
        )
    for line in (
        f"Serving {served.app_ref} as the Databricks App {served.name}, running as {served.service_principal}",
        f"  App URL: {served.url}",
        scopes,
        f"Try: curl -s {served.url}/ -H \"Authorization: Bearer $(obo-auth workspace token alice --port {workspace_port})\"",
        f"Or, as a user (an agent server App): DatabricksOpenAI().responses.create(model=\"apps/{served.name}\", input=[...])",
    ):
        # Plain and unwrapped: the URLs and the curl line are meant to be copied.
        console.print(line, markup=False, highlight=False, soft_wrap=True)
