"""Runtime files: how the CLI's other commands find a running ``obo-auth workspace``.

A running workspace writes ``$OBO_AUTH_HOME/workspace-PORT.json`` (its URL and admin
credential, readable only by you) and removes it when it stops. A workspace that crashed
leaves its file behind: the first command that finds nothing listening there says so, once,
and removes it.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from obo_auth.home import home_dir
from obo_auth.private_files import write_private_json

if TYPE_CHECKING:
    from obo_auth.serving.workspace_link import WorkspaceLink

_PROBE_SECONDS = 2


def runtime_file(port: int) -> Path:
    return home_dir() / f"workspace-{port}.json"


def write_runtime(url: str, admin_token: str) -> Path:
    path = runtime_file(_port_of(url))
    write_private_json(path, {"url": url, "admin_token": admin_token})
    return path


def find_runtime(port: int | None) -> dict:
    """The runtime of the workspace on ``port`` (None: the one started last), if it answers."""
    for runtime in _runtimes():
        if port is None or _port_of(runtime["url"]) == port:
            return _alive(runtime)
    where = f"on port {port}" if port is not None else "at all"
    raise click.ClickException(f"No local workspace is running {where}: start one with `obo-auth workspace`.")


@contextmanager
def admin_link(port: int | None) -> Iterator[WorkspaceLink]:
    """The admin API of the workspace on ``port`` (None: the one started last); what it refuses,
    or its going away, becomes one ``Error:`` line."""
    from obo_auth.serving.workspace_link import WorkspaceLink, WorkspaceRefused  # httpx: only for commands that call

    runtime = find_runtime(port)
    link = WorkspaceLink(runtime["url"], runtime["admin_token"])
    try:
        yield link
    except WorkspaceRefused as refused:
        raise click.ClickException(refused.message) from None
    finally:
        link.close()


def runtime_for_url(url: str) -> dict:
    """The runtime of the running workspace at ``url`` (its admin credential included)."""
    for runtime in _runtimes():
        if runtime["url"].rstrip("/") == url.rstrip("/"):
            return _alive(runtime)
    raise click.ClickException(f"No local workspace started with `obo-auth workspace` is running at {url}.")


def _runtimes() -> list[dict]:
    """The runtime files of running workspaces, newest first; unreadable ones are skipped."""
    found = []
    for path in home_dir().glob("workspace-*.json"):
        try:
            runtime = json.loads(path.read_text())
            modified = path.stat().st_mtime
        except (OSError, ValueError):
            continue  # being written, removed meanwhile, or left half-written by a crash
        if isinstance(runtime, dict) and {"url", "admin_token"} <= runtime.keys():
            found.append((modified, runtime))
    return [runtime for _, runtime in sorted(found, key=lambda item: item[0], reverse=True)]


def _alive(runtime: dict) -> dict:
    """``runtime`` if something listens at its URL; if nothing does, its file is stale: removed, and an error."""
    url = runtime["url"]
    try:
        with socket.create_connection((urlsplit(url).hostname, _port_of(url)), timeout=_PROBE_SECONDS):
            return runtime
    except ConnectionRefusedError:  # nothing listens: certainly gone, unlike a slow answer
        runtime_file(_port_of(url)).unlink(missing_ok=True)
        raise click.ClickException(
            f"No workspace answers at {url} (it stopped without cleaning up; its runtime file is now removed): "
            "start one with `obo-auth workspace`."
        ) from None
    except OSError as error:
        raise click.ClickException(f"The workspace at {url} did not answer ({error.strerror or 'timed out'}); is it still running?") from None


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].rstrip("/"))
