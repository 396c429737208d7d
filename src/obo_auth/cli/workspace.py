"""``obo-auth workspace``: run a local workspace in the foreground; its subcommands reach the
running one over HTTP, through its admin API, for tokens (``token``), a shell environment that
acts as someone (``env``), its URL (``url``) and its audit log (``audit``).

Only the command that runs a workspace imports it (pydantic, yaml, starlette, uvicorn): the
others, and ``--help``, stay quick. Where they find it: workspace_runtime.py.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from obo_auth.admin_api import is_audit_read
from obo_auth.cli.foreground import stop_on_sigterm, wait_until_stopped
from obo_auth.cli.workspace_audit import audit, record_line
from obo_auth.cli.workspace_runtime import admin_link, find_runtime, runtime_for_url, write_runtime

if TYPE_CHECKING:
    from obo_auth.local import LocalWorkspace
    from obo_auth.local.audit import AuditRecord

__all__ = ["console", "runtime_for_url", "workspace"]

# Wide enough for the commands the welcome (and `obo-auth serve`) print to stay on one line
# when the output is a file or a pipe (rich assumes 80 columns there).
console = Console(width=None if sys.stdout.isatty() else 160)
# What `env` sets or clears: any of them left over from another identity would make
# databricks-sdk refuse the mix ("more than one authorization method") or act as someone else.
_AUTH_VARIABLES = (
    "DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET",
    "DATABRICKS_USERNAME", "DATABRICKS_PASSWORD", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_AUTH_TYPE",
)  # fmt: skip


@click.group(invoke_without_command=True)
@click.option("--seed", type=click.Path(dir_okay=False, path_type=Path), help="A YAML seed file (default: the built-in seed).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default="a free port", help="The port to listen on.")
@click.option("--quiet", is_flag=True, help="Do not print a line per request.")
@click.pass_context
def workspace(ctx: click.Context, seed: Path | None, port: int, quiet: bool) -> None:
    """Run a local Databricks workspace in the foreground until Ctrl-C, printing a line per request."""
    if ctx.invoked_subcommand is not None:
        return
    from obo_auth.local import LocalWorkspace, SeedError

    stop_on_sigterm()
    try:
        local = LocalWorkspace(seed, port=port)
    except SeedError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        local.__enter__()
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    runtime = None
    try:
        runtime = write_runtime(local.url, local.state.admin_token)
        _print_welcome(local, seed)
        if not quiet:
            local.state.audit.subscribe(_print_request)
        wait_until_stopped()
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM is how a foreground workspace is meant to stop
    finally:
        if runtime is not None:
            runtime.unlink(missing_ok=True)
        local.__exit__(None, None, None)
        console.print("Local workspace stopped.")


def _print_request(record: AuditRecord) -> None:
    if not is_audit_read(record.path, record.status):  # `workspace audit --follow` polling
        click.echo(record_line(record.to_dict()))  # plain text (a path is not markup); flushed


def _print_welcome(local: LocalWorkspace, seed: Path | None) -> None:
    identity = local.state.identity
    port = local.url.rsplit(":", 1)[1]
    console.print(f"[bold]Local Databricks workspace[/bold] running at [cyan]{local.url}[/cyan] ({'seed ' + str(seed) if seed else 'default seed'})")
    agents = [p for p in identity.service_principals if p != local.state.admin]
    table = Table("identity", "kind", "groups", "OAuth client_id")
    for principal in identity.users + agents:
        table.add_row(principal.name, principal.kind.replace("_", " "), ", ".join(sorted(principal.groups)), principal.application_id or "")
    console.print(table)
    examples = {}
    if agents:
        examples[agents[0].short_name] = "the agent's own identity (OAuth M2M)"
    if identity.users:
        examples[identity.users[0].short_name] = "a user, with a token (--scopes a,b: downscoped, as Model Serving gives an agent)"
    commands = {name: f'eval "$(obo-auth workspace env {name} --port {port})"' for name in examples}
    width = max(map(len, commands.values()), default=0)
    lines = ["Act as someone in this shell, and WorkspaceClient() acts as them here:"]
    lines += [f"  {commands[name].ljust(width)}   {what}" for name, what in examples.items()]
    if identity.users:
        lines.append(f"A token, e.g. for WorkspaceClient(host=URL, token=...) in Python:  obo-auth workspace token {identity.users[0].short_name} --port {port}")
    lines.append("Requests are printed below as they are handled (--quiet: not); `obo-auth workspace audit` lists them with the reasons.  Ctrl-C stops it.")
    console.print("\n".join(lines), highlight=False)


@workspace.command()
@click.argument("principal")
@click.option("--port", type=int, help="Which running workspace (default: the one started last).")
@click.option("--scopes", help="Comma-separated API scopes for a downscoped token (default: unrestricted).")
@click.option("--ttl", type=click.FloatRange(min=1), help="Seconds until the token expires (default: never).")
def token(principal: str, port: int | None, scopes: str | None, ttl: float | None) -> None:
    """Print a token for PRINCIPAL (alice, bob@example.com, obo-agent, ...) from a running workspace."""
    with admin_link(port) as link:
        click.echo(link.mint(principal, scopes=_scope_list(scopes), ttl=ttl))


@workspace.command()
@click.argument("principal")
@click.option("--port", type=int, help="Which running workspace (default: the one started last).")
@click.option("--scopes", help="Comma-separated API scopes: a downscoped token instead (for a service principal too).")
@click.option("--ttl", type=click.FloatRange(min=1), help="Seconds until the token expires (default: never).")
def env(principal: str, port: int | None, scopes: str | None, ttl: float | None) -> None:
    """Print shell lines that make WorkspaceClient() act as PRINCIPAL: eval "$(obo-auth workspace env obo-agent)".

    A user gets a token; a service principal its OAuth client credentials (M2M), or a token
    when --scopes or --ttl asks for one.
    """
    with admin_link(port) as link:
        variables = {"DATABRICKS_HOST": link.url}
        if not scopes and ttl is None and link.principal(principal)["kind"] == "service_principal":
            variables["DATABRICKS_CLIENT_ID"], variables["DATABRICKS_CLIENT_SECRET"] = link.client_credentials(principal)
        else:
            variables["DATABRICKS_TOKEN"] = link.mint(principal, scopes=_scope_list(scopes), ttl=ttl)
    click.echo("unset " + " ".join(name for name in _AUTH_VARIABLES if name not in variables))
    for name, value in variables.items():
        click.echo(f"export {name}={shlex.quote(value)}")


@workspace.command()
@click.option("--port", type=int, help="Which running workspace (default: the one started last).")
def url(port: int | None) -> None:
    """Print the URL of a running workspace."""
    click.echo(find_runtime(port)["url"])


workspace.add_command(audit)


def _scope_list(scopes: str | None) -> list[str] | None:
    return [s.strip() for s in scopes.split(",") if s.strip()] if scopes else None


_find_runtime = find_runtime  # the name other commands have imported it by
