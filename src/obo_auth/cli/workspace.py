"""``obo-auth workspace``: run a local workspace in the foreground; ``workspace token`` asks it for a token.

A running workspace writes a runtime file (its URL and admin credential, readable only by
you) so that ``obo-auth workspace token`` in another terminal can reach it over HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from obo_auth.local import LocalWorkspace, SeedError
from obo_auth.private_files import write_private_json
from obo_auth.serving.workspace_link import WorkspaceLink, WorkspaceRefused

console = Console()


def runtime_dir() -> Path:
    return Path(os.environ.get("OBO_AUTH_HOME", Path.home() / ".obo-auth"))


def _runtime_file(port: int) -> Path:
    return runtime_dir() / f"workspace-{port}.json"


@click.group(invoke_without_command=True)
@click.option("--seed", type=click.Path(dir_okay=False, path_type=Path), help="A YAML seed file (default: the built-in seed).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default="a free port", help="The port to listen on.")
@click.pass_context
def workspace(ctx: click.Context, seed: Path | None, port: int) -> None:
    """Run a local Databricks workspace in the foreground until Ctrl-C."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        local = LocalWorkspace(seed, port=port)
    except SeedError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        local.__enter__()
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    runtime = _runtime_file(int(local.url.rsplit(":", 1)[1]))
    try:
        write_private_json(runtime, {"url": local.url, "admin_token": local.state.admin_token})
        _print_welcome(local, seed)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        stop.wait()
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a foreground workspace is meant to stop
    finally:
        runtime.unlink(missing_ok=True)
        local.__exit__(None, None, None)
        console.print("Local workspace stopped.")


def _print_welcome(local: LocalWorkspace, seed: Path | None) -> None:
    state = local.state
    console.print(f"[bold]Local Databricks workspace[/bold] running at [cyan]{local.url}[/cyan] ({'seed ' + str(seed) if seed else 'default seed'})")
    table = Table("identity", "kind", "groups", "get a credential")
    port = local.url.rsplit(":", 1)[1]
    for principal in state.identity.users + state.identity.service_principals:
        if principal == state.admin:
            continue
        how = f"obo-auth workspace token {principal.short_name} --port {port}"
        if principal.kind == "service_principal":
            how += f"\n(or OAuth M2M, client_id {principal.application_id})"
        table.add_row(principal.name, principal.kind.replace("_", " "), ", ".join(sorted(principal.groups)), how)
    console.print(table)
    console.print(
        "Use it from Python:  WorkspaceClient(host=URL, token=TOKEN)\n"
        "Add --scopes to mint a downscoped token, as Model Serving gives an agent.  Ctrl-C stops it."
    )


@workspace.command()
@click.argument("principal")
@click.option("--port", type=int, help="Which running workspace (default: the one started last).")
@click.option("--scopes", help="Comma-separated API scopes for a downscoped token (default: unrestricted).")
@click.option("--ttl", type=click.FloatRange(min=1), help="Seconds until the token expires (default: never).")
def token(principal: str, port: int | None, scopes: str | None, ttl: float | None) -> None:
    """Print a token for PRINCIPAL (alice, bob@example.com, obo-agent, ...) from a running workspace."""
    runtime = _find_runtime(port)
    link = WorkspaceLink(runtime["url"], runtime["admin_token"])
    try:
        scope_list = [s.strip() for s in scopes.split(",") if s.strip()] if scopes else None
        click.echo(link.mint(principal, scopes=scope_list, ttl=ttl))
    except WorkspaceRefused as refused:
        raise click.ClickException(refused.message) from None
    finally:
        link.close()


def _runtimes() -> list[dict]:
    """The runtime files of running workspaces, newest first; unreadable ones are skipped."""
    runtimes = []
    for path in sorted(runtime_dir().glob("workspace-*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            runtime = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being written, or left half-written by a crash
        if isinstance(runtime, dict) and {"url", "admin_token"} <= runtime.keys():
            runtimes.append(runtime)
    return runtimes


def runtime_for_url(url: str) -> dict:
    """The runtime file of the running workspace at ``url`` (its admin credential included)."""
    for runtime in _runtimes():
        if runtime["url"].rstrip("/") == url.rstrip("/"):
            return runtime
    raise click.ClickException(f"No local workspace started with `obo-auth workspace` is running at {url}.")


def _find_runtime(port: int | None) -> dict:
    for runtime in _runtimes():
        if port is None or runtime["url"].endswith(f":{port}"):
            return runtime
    where = f"on port {port}" if port is not None else "at all"
    raise click.ClickException(f"No local workspace is running {where}: start one with `obo-auth workspace`.")
