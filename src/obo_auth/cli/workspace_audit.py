"""``obo-auth workspace audit``: the running workspace's audit log, read through its admin API;
and the one-line form of a record that the foreground workspace prints as requests happen."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from obo_auth.admin_api import is_audit_read
from obo_auth.cli.workspace_runtime import admin_link
from obo_auth.terminal import printable
from obo_auth.testing.audit import principal_names

_POLL_SECONDS = 0.5


def record_line(record: dict, *, reason: bool = False) -> str:
    """``04:12:03  carol@example.com via obo-agent  GET /api/...  allow 200`` (and the reason).

    Every field is shown through ``printable``: a record's path is whatever an unauthenticated
    caller sent, and must not reach the terminal as control sequences.
    """
    line = f"{_clock(record)}  {_who(record)}  {_call(record)}  {_outcome(record)}"
    return f"{line}  {printable(record['reason'])}" if reason else line


@click.command()
@click.option("--user", help="Only calls by or for this principal (alice, alice@example.com, obo-agent, ...).")
@click.option("--decision", type=click.Choice(["allow", "deny"]), help="Only allowed, or only denied, calls.")
@click.option("--path", "path_part", metavar="SUBSTRING", help="Only calls whose path contains SUBSTRING.")
@click.option("--follow", is_flag=True, help="Keep printing new calls as they happen, until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per call (the audit record's fields).")
@click.option("--port", type=int, help="Which running workspace (default: the one started last).")
def audit(user: str | None, decision: str | None, path_part: str | None, follow: bool, as_json: bool, port: int | None) -> None:
    """Print the running workspace's audit log: every call, who made it, as whom, and why it was allowed or denied."""

    def wanted(record: dict) -> bool:
        # This command's own reads of the log are left out: with --follow they would be half of it.
        return (
            not is_audit_read(record["path"], record["status"])
            and (user is None or user in principal_names(record["principal"], record["actor"]))
            and (decision is None or record["decision"] == decision)
            and (path_part is None or path_part in record["path"])
        )

    try:
        with admin_link(port) as link:
            records, since = link.audit()
            records = [r for r in records if wanted(r)]
            if as_json or follow:
                _print_lines(records, as_json)
            else:
                _print_table(records)
            while follow:
                time.sleep(_POLL_SECONDS)
                records, since = link.audit(since)
                _print_lines([r for r in records if wanted(r)], as_json)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how --follow is meant to stop


def _print_lines(records: list[dict], as_json: bool) -> None:
    for record in records:
        click.echo(json.dumps(record) if as_json else record_line(record, reason=True))


def _print_table(records: list[dict]) -> None:
    # Into a file or a pipe, rows are never cut: as wide as they need (a terminal folds them).
    console = Console(width=None if sys.stdout.isatty() else 100_000)
    table = Table("time", "who (via the agent acting for them)", "call", "decision", "reason", box=None)
    for column in table.columns:
        column.overflow = "fold"
    for r in records:
        cells = (_clock(r), _who(r), _call(r), _outcome(r), printable(r["reason"]))
        table.add_row(*(Text(cell) for cell in cells))  # Text: a path or reason is never read as markup
    with console.capture() as captured:
        console.print(table)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))  # rich pads every row to the widest


def _who(record: dict) -> str:
    who = printable(record["principal"] or "anonymous")
    return f"{who} via {printable(record['actor'])}" if record["actor"] else who


def _call(record: dict) -> str:
    return f"{printable(record['method'])} {printable(record['path'])}"


def _outcome(record: dict) -> str:
    return f"{printable(record['decision'])} {printable(record['status'])}"


def _clock(record: dict) -> str:
    return datetime.fromtimestamp(record["time"]).strftime("%H:%M:%S")
