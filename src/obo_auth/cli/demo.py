"""``obo-auth demo``: one agent, three users, side by side, and the audit trail that proves who did what.

Starts a local workspace with the default seed, logs the example handbook agent to
obo_auth's model store (model_store.py: the one ``obo-auth serve`` reads), serves it locally, asks it the same question as alice, bob and carol,
and prints what each got and which identity every call ran as.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import click
import httpx
from rich.console import Console
from rich.table import Table

QUESTION = "How does parental leave pay work?"
USERS = ("alice", "bob", "carol")
AGENT = "obo-agent"
CHAT_MODEL = "chat-model"  # the one resource the example agent uses as itself

# Wide enough for the tables when the output is a file or a pipe (rich assumes 80 columns there).
console = Console(width=None if sys.stdout.isatty() else 120)


@dataclass
class Outcome:
    user: str
    answer: str
    sources: list[str]
    unavailable: list[dict]
    calls: list  # the workspace's audit records for this request


@click.command()
@click.option("--question", default=QUESTION, show_default=True, help="What to ask the agent as each user.")
def demo(question: str) -> None:
    """Ask the example agent the same question as alice, bob and carol, and show who saw what."""
    _quiet_libraries()
    from obo_auth.local import LocalWorkspace
    from obo_auth.serving import serve

    with console.status("Starting a local Databricks workspace (default seed)..."), LocalWorkspace() as workspace:
        console.print(f"[green]✓[/green] Local workspace at {workspace.url}")
        with console.status("Logging the example agent..."):
            model_uri, scopes, store = _log_example()
        console.print(f"[green]✓[/green] Logged {model_uri} to {store}; end-user scopes: {', '.join(scopes)}", soft_wrap=True)
        with console.status("Serving the agent locally, as Model Serving would..."), serve(model_uri, workspace) as endpoint:
            console.print(f"[green]✓[/green] Serving at {endpoint.url}/invocations")
            outcomes = []
            for user in USERS:
                with console.status(f"Asking as {user}..."):
                    outcomes.append(_ask(endpoint.url, workspace, user, question))
    _show_answers(question, outcomes)
    wrong = _show_audit(outcomes)
    # soft_wrap: the model URI stays whole, to be copied.
    console.print(f"[dim]Serve it again yourself: `obo-auth workspace` in one terminal, `obo-auth serve {model_uri}` in another.[/dim]", soft_wrap=True)
    if wrong:
        raise click.ClickException(f"{wrong} call(s) ran as the wrong identity.")


def _quiet_libraries() -> None:
    """The libraries' own chatter (INFO logs, deprecation warnings) is not what the demo is about."""
    os.environ.setdefault("MLFLOW_RECORD_ENV_VARS_IN_MODEL_LOGGING", "false")
    warnings.filterwarnings("ignore")
    import mlflow  # noqa: F401  (it sets its own loggers' levels on import: quiet them after that)

    for name in ("mlflow", "databricks", "alembic", "httpx", "urllib3", "py4j"):
        logging.getLogger(name).setLevel(logging.ERROR)


def example_dir() -> Path:
    """The example agent: packaged with obo_auth in a wheel, or at the top of a source checkout."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "examples" / "handbook_agent", package.parents[1] / "examples" / "handbook_agent"):
        if (candidate / "chat_agent.py").exists():
            return candidate
    raise click.ClickException("The example agent is missing from this installation of obo_auth.")


def _log_example() -> tuple[str, list[str], str]:
    """Logs the example agent as an author would, to the store ``obo-auth serve`` reads too."""
    import mlflow

    from obo_auth.model_store import use_default_unless_set

    store = use_default_unless_set()
    spec = importlib.util.spec_from_file_location("handbook_agent", example_dir() / "__init__.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    info = example.log()
    policy = mlflow.models.Model.load(info.model_uri).auth_policy or {}
    return info.model_uri, (policy.get("user_auth_policy") or {}).get("api_scopes", []), store


def _ask(url: str, workspace, user: str, question: str) -> Outcome:
    before = len(workspace.audit())
    response = httpx.post(
        f"{url}/invocations",
        json={"messages": [{"role": "user", "content": question}]},
        headers={"Authorization": f"Bearer {workspace.issue_token(user)}"},
        timeout=120,
        trust_env=False,  # loopback: a proxy from the environment must never see the token
    )
    body = response.json()
    if response.status_code != 200:
        raise click.ClickException(f"The agent failed for {user}: {body.get('message', body)}")
    answer = body["messages"][-1]["content"].split("\n\nSources:")[0].split("\n\nI could not use")[0]
    outputs = body.get("custom_outputs") or {}
    return Outcome(user, answer, outputs.get("sources", []), outputs.get("unavailable_tools", []), workspace.audit()[before:])


def _show_answers(question: str, outcomes: list[Outcome]) -> None:
    table = Table(title=f"“{question}” asked as three users", show_lines=True)
    table.add_column("user", style="bold")
    table.add_column("answer", ratio=3)
    table.add_column("sources", ratio=2)
    table.add_column("unavailable to them", ratio=1)
    for o in outcomes:
        unavailable = "\n".join(f"{t['name']}: {t['reason'].replace('_', ' ')}" for t in o.unavailable) or "-"
        sources = "\n".join(s.rsplit("/", 1)[-1] for s in o.sources) or "-"
        table.add_row(o.user, o.answer, sources, unavailable)
    console.print(table)


def _who(record) -> str:
    if record.actor:
        return f"{record.principal.split('@')[0]} [dim]via {record.actor}[/dim]"
    if record.principal == AGENT:
        return f"{AGENT} [dim](the agent itself)[/dim]"
    return record.principal or "[dim]anonymous[/dim]"


def _show_audit(outcomes: list[Outcome]) -> int:
    table = Table(title="Audit trail: which identity each call ran as")
    for column in ("asked by", "ran as", "call", "decision"):
        table.add_column(column, no_wrap=column != "call")
    wrong = 0
    serving_checks = 0
    for o in outcomes:
        for record in o.calls:
            if record.principal == "workspace-admin":
                serving_checks += 1  # local serving verifying the caller, minting their token and revoking it
                continue
            if record.principal == AGENT:
                wrong += record.resource not in (None, f"serving_endpoint:{CHAT_MODEL}")  # the agent touched user data
            elif record.principal is not None and not record.principal.startswith(f"{o.user}@"):
                wrong += 1
            decision = "[green]allow[/green]" if record.decision == "allow" else f"[red]deny[/red] {record.status}"
            table.add_row(o.user, _who(record), f"{record.method} {record.path.removeprefix('/api/2.0')}", decision)
    console.print(table)
    console.print(f"[dim]Plus {serving_checks} calls by local serving itself (verify the caller's token, check CAN_QUERY, mint the downscoped token, revoke it when the request ends).[/dim]")
    if wrong:
        console.print(f"[red]✗ {wrong} call(s) ran as a user other than the one who asked.[/red]")
    else:
        console.print("[green]✓ Every data call ran as the user who asked; the agent's own identity only called the chat model.[/green]")
    return wrong


if __name__ == "__main__":
    sys.exit(demo())
