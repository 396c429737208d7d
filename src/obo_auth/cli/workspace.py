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
import httpx
from rich.console import Console
from rich.table import Table

from obo_auth.local import LocalWorkspace, SeedError
from obo_auth.local.admin.routes import ADMIN_PREFIX
from obo_auth.private_files import write_private_json

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
    body = {"principal": principal, "scopes": [s.strip() for s in scopes.split(",") if s.strip()] if scopes else None, "ttl": ttl}
    try:
        response = httpx.post(f"{runtime['url']}{ADMIN_PREFIX}/tokens", json=body, headers={"Authorization": f"Bearer {runtime['admin_token']}"}, timeout=10)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"Cannot reach the workspace at {runtime['url']} ({exc}); is it still running?") from None
    if response.status_code != 200:
        raise click.ClickException(response.json().get("message", response.text))
    click.echo(response.json()["token_value"])


def runtime_for_url(url: str) -> dict:
    """The runtime file of the running workspace at ``url`` (its admin credential included)."""
    for path in runtime_dir().glob("workspace-*.json"):
        runtime = json.loads(path.read_text())
        if runtime["url"].rstrip("/") == url.rstrip("/"):
            return runtime
    raise click.ClickException(f"No local workspace started with `obo-auth workspace` is running at {url}.")


def _find_runtime(port: int | None) -> dict:
    if port is not None:
        candidates = [_runtime_file(port)]
    else:
        candidates = sorted(runtime_dir().glob("workspace-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        if path.exists():
            return json.loads(path.read_text())
    where = f"on port {port}" if port is not None else "at all"
    raise click.ClickException(f"No local workspace is running {where}: start one with `obo-auth workspace`.")
