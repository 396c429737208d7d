"""``obo-auth demo``: one agent, three users, side by side, and the audit trail that proves who did what.

Starts a local workspace with the default seed, logs an example agent (``--example``: the
handbook agent, or the people agent, a supervisor over Genie and the handbook) to obo_auth's
model store (model_store.py: the one ``obo-auth serve`` reads), serves it locally, asks it
the same question as alice, bob and carol, and prints what each got and which identity every
call ran as.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import click
import httpx
from rich.console import Console
from rich.table import Table
from rich.text import Text

USERS = ("alice", "bob", "carol")
AGENT = "obo-agent"


@dataclass(frozen=True)
class Example:
    directory: str  # under examples/: a package whose log() logs the agent
    question: str  # the default question, one this example answers differently per user
    app: str | None = None  # its Databricks App: (module:attribute in the directory, App name)


APP_NAME = "handbook-app"
EXAMPLES = {
    "handbook": Example("handbook_agent", "How does parental leave pay work?", app="app:app"),
    "people": Example("people_agent", "List the employees with their names, teams and salaries."),
}
DEFAULT_EXAMPLE = "handbook"

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
@click.option(
    "--example", "example_name", default=DEFAULT_EXAMPLE, show_default=True, metavar="NAME",
    help="The example agent: handbook (vector search) or people (a supervisor over Genie and the handbook).",
)  # fmt: skip
@click.option("--question", help="What to ask the agent as each user (default: the example's own question).")
@click.option(
    "--app", "as_app", is_flag=True,
    help="Run the handbook example as a Databricks App behind a local Apps proxy, and ask it with DatabricksOpenAI(model=\"apps/...\").",
)  # fmt: skip
def demo(example_name: str, question: str | None, as_app: bool) -> None:
    """Ask an example agent the same question as alice, bob and carol, and show who saw what."""
    example = EXAMPLES.get(example_name)
    if example is None:
        raise click.ClickException(f"no example {example_name!r}: choose one of {', '.join(EXAMPLES)}.")
    question = question or example.question
    _quiet_libraries()
    if as_app:
        if example.app is None:
            raise click.ClickException(f"the {example_name} example has no Databricks App; --app runs: {', '.join(n for n, e in EXAMPLES.items() if e.app)}.")
        _demo_app(example, question)
        return
    from obo_auth.local import LocalWorkspace
    from obo_auth.serving import serve

    with console.status("Starting a local Databricks workspace (default seed)..."), LocalWorkspace() as workspace:
        console.print(f"[green]✓[/green] Local workspace at {workspace.url}")
        with console.status(f"Logging the example agent ({example.directory})..."):
            model_uri, scopes, store, agent_endpoints = _log_example(example)
        console.print(f"[green]✓[/green] Logged {model_uri} to {store}; end-user scopes: {', '.join(scopes)}", soft_wrap=True)
        with console.status("Serving the agent locally, as Model Serving would..."), serve(model_uri, workspace) as endpoint:
            console.print(f"[green]✓[/green] Serving at {endpoint.url}/invocations")
            outcomes = []
            for user in USERS:
                with console.status(f"Asking as {user}..."):
                    outcomes.append(_ask(endpoint.url, workspace, user, question))
    _show_answers(question, outcomes)
    wrong = _show_audit(outcomes, agent_endpoints)
    # soft_wrap: the model URI stays whole, to be copied.
    console.print(f"[dim]Serve it again yourself: `obo-auth workspace` in one terminal, `obo-auth serve {model_uri}` in another.[/dim]", soft_wrap=True)
    if wrong:
        raise click.ClickException(f"{wrong} call(s) ran as the wrong identity.")


def _demo_app(example: Example, question: str) -> None:
    """The example as a Databricks App: each user calls it by name through DatabricksOpenAI, as the
    released client routes ``apps/<name>`` models, and a forged forwarded token changes nothing."""
    from obo_auth.local import LocalWorkspace
    from obo_auth.serving import ServingFailed, serve_app

    with console.status("Starting a local Databricks workspace (default seed)..."), LocalWorkspace() as workspace:
        console.print(f"[green]✓[/green] Local workspace at {workspace.url}")
        try:
            with console.status("Running the example as a Databricks App behind a local Apps proxy..."), serve_app(
                example.app, workspace, APP_NAME, app_dir=example_dir(example.directory)
            ) as served:
                scopes = ", ".join(served.user_api_scopes or ())
                console.print(f"[green]✓[/green] App {served.name} at {served.url}; user_api_scopes (databricks.yml): {scopes}", soft_wrap=True)
                outcomes = []
                for user in USERS:
                    with console.status(f"Asking as {user}: DatabricksOpenAI().responses.create(model=\"apps/{APP_NAME}\")..."):
                        outcomes.append(_ask_app(workspace, user, question))
                forged = _ask_app(workspace, "bob", question, forge_as="alice")
                unauthenticated = httpx.post(f"{served.url}/responses", json={"input": []}, timeout=30, trust_env=False).status_code
        except ServingFailed as failed:
            raise click.ClickException(str(failed)) from None
    _show_answers(question, outcomes)
    wrong = _show_audit(outcomes, {"chat-model"}, edge="the App's front door (verify the caller, check CAN_USE, mint the forwarded token, revoke it)")
    bob = next(o for o in outcomes if o.user == "bob")
    if forged.sources == bob.sources and forged.answer == bob.answer:
        console.print("[green]✓ bob sending alice's token in x-forwarded-access-token himself got his own answer: the proxy drops forwarded headers a client sends.[/green]")
    else:
        wrong += 1
        console.print("[red]✗ bob's forged x-forwarded-access-token changed his answer.[/red]")
    console.print(f"[green]✓ A call without a user token: {unauthenticated} from the front door, before the App runs.[/green]" if unauthenticated == 401 else f"[red]✗ A call without a user token got {unauthenticated}.[/red]")
    console.print(f"[dim]Run it yourself: `obo-auth workspace` in one terminal, `obo-auth serve-app {example.app} --name {APP_NAME}` in examples/{example.directory}.[/dim]", soft_wrap=True)
    if wrong or unauthenticated != 401:
        raise click.ClickException(f"{wrong} call(s) ran as the wrong identity." if wrong else "the App answered a call without a user.")


def _ask_app(workspace, user: str, question: str, *, forge_as: str | None = None) -> Outcome:
    from databricks_openai import DatabricksOpenAI

    from obo_auth.testing.oauth import oauth_user_client

    before = len(workspace.audit())
    llm = DatabricksOpenAI(workspace_client=oauth_user_client(workspace.url, workspace.issue_token(user)))
    forged = {}
    if forge_as is not None:  # what a malicious client could send: another user's token, in the proxy's own header
        forged = {"x-forwarded-access-token": workspace.issue_token(forge_as), "x-forwarded-email": f"{forge_as}@example.com"}
    try:
        response = llm.responses.create(model=f"apps/{APP_NAME}", input=[{"role": "user", "content": question}], extra_headers=forged)
    except ValueError as failed:  # databricks_openai wraps the App's errors in a ValueError
        raise click.ClickException(f"The App failed for {user}: {failed}") from None
    outputs = getattr(response, "custom_outputs", None) or {}
    paragraphs = response.output_text.split("\n\n")
    answer = "\n\n".join(p for p in paragraphs if not p.startswith(("Sources:", "I could not use:")))
    return Outcome(user, answer, outputs.get("sources", []), outputs.get("unavailable_tools", []), workspace.audit()[before:])


def _quiet_libraries() -> None:
    """The libraries' own chatter (INFO logs, deprecation warnings) is not what the demo is about."""
    os.environ.setdefault("MLFLOW_RECORD_ENV_VARS_IN_MODEL_LOGGING", "false")
    warnings.filterwarnings("ignore")
    import mlflow  # noqa: F401  (it sets its own loggers' levels on import: quiet them after that)

    for name in ("mlflow", "databricks", "alembic", "httpx", "urllib3", "py4j"):
        logging.getLogger(name).setLevel(logging.ERROR)


def example_dir(directory: str = EXAMPLES[DEFAULT_EXAMPLE].directory) -> Path:
    """An example agent: packaged with obo_auth in a wheel, or at the top of a source checkout."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "examples" / directory, package.parents[1] / "examples" / directory):
        if (candidate / "__init__.py").exists():
            return candidate
    raise click.ClickException(f"The example agent {directory} is missing from this installation of obo_auth.")


def _log_example(example: Example) -> tuple[str, list[str], str, set[str]]:
    """Logs the example agent as an author would, to the store ``obo-auth serve`` reads too.

    Returns its URI, its end-user scopes, the store, and the serving endpoints its auth policy
    says the agent calls as itself (the system auth policy): the audit holds the agent to them.
    """
    import mlflow

    from obo_auth.mlmodel import resource_entries
    from obo_auth.model_store import use_default_unless_set

    store = use_default_unless_set()
    spec = importlib.util.spec_from_file_location(example.directory, example_dir(example.directory) / "__init__.py")
    package = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(package)
    info = package.log()
    model = mlflow.models.Model.load(info.model_uri)
    scopes = ((model.auth_policy or {}).get("user_auth_policy") or {}).get("api_scopes", [])
    as_agent = {e.name for e in resource_entries(model) if e.source == "system_auth_policy" and e.type == "serving_endpoint"}
    return info.model_uri, scopes, store, as_agent


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
    # The answer without its sources and its note on unavailable tools: the table shows both apart.
    paragraphs = body["messages"][-1]["content"].split("\n\n")
    answer = "\n\n".join(p for p in paragraphs if not p.startswith(("Sources:", "I could not use:")))
    outputs = body.get("custom_outputs") or {}
    return Outcome(user, answer, outputs.get("sources", []), outputs.get("unavailable_tools", []), workspace.audit()[before:])


def _show_answers(question: str, outcomes: list[Outcome]) -> None:
    table = Table(title=f"“{question}” asked as three users", show_lines=True)
    with_sources = any(o.sources for o in outcomes)  # a Genie answer has none: its query is in the answer
    table.add_column("user", style="bold")
    table.add_column("answer", ratio=3)
    if with_sources:
        table.add_column("sources", ratio=2)
    table.add_column("unavailable to them", ratio=1)
    for o in outcomes:
        unavailable = "\n".join(f"{t['name']}: {t['reason'].replace('_', ' ')}" for t in o.unavailable) or "-"
        sources = ["\n".join(s.rsplit("/", 1)[-1] for s in o.sources) or "-"] if with_sources else []
        # Text: an answer is shown as written, never read as rich markup ("[...]").
        table.add_row(o.user, Text(o.answer or "-"), *sources, Text(unavailable))
    console.print(table)


def _who(record) -> str:
    if record.actor:
        return f"{record.principal.split('@')[0]} [dim]via {record.actor}[/dim]"
    if record.principal == AGENT:
        return f"{AGENT} [dim](the agent itself)[/dim]"
    return record.principal or "[dim]anonymous[/dim]"


def _short(path: str) -> str:
    """A path with its long generated ids (Genie's space, conversation, message and attachment ids)
    cut to 8 characters: the call stays readable."""
    return re.sub(r"(?<=/)[0-9a-f-]{16,}(?=/|$)", lambda id_: id_.group()[:8] + "…", path)


def _show_audit(
    outcomes: list[Outcome],
    agent_endpoints: set[str],
    edge: str = "local serving itself (verify the caller's token, check CAN_QUERY, mint the downscoped token, revoke it when the request ends)",
) -> int:
    """The calls, and how many ran as the wrong identity: as another user than the one who asked,
    or as the agent itself on anything but the serving endpoints its auth policy declares as its own."""
    table = Table(title="Audit trail: which identity each call ran as")
    for column in ("asked by", "ran as", "call", "decision"):
        table.add_column(column, no_wrap=column != "call", overflow="fold")  # a long path folds, never cut
    wrong = 0
    serving_checks = 0
    agent_called: set[str] = set()
    anonymous = 0
    for o in outcomes:
        for record in o.calls:
            if record.principal == "workspace-admin":
                serving_checks += 1  # local serving verifying the caller, minting their token and revoking it
                continue
            if record.principal is None and record.decision == "allow":
                anonymous += 1  # a client reading the workspace's public metadata, once per client built
                continue
            if record.principal == AGENT and record.path.startswith("/oidc/"):
                continue  # the agent getting its own OAuth token (OAuth M2M), not a call for anyone's data
            if record.principal == AGENT:
                endpoint = (record.resource or "").removeprefix("serving_endpoint:")
                if record.resource is None or (record.resource.startswith("serving_endpoint:") and endpoint in agent_endpoints):
                    agent_called.add(endpoint)
                else:
                    wrong += 1  # the agent touched user data, or a resource it did not declare as its own
            elif record.principal is not None and not record.principal.startswith(f"{o.user}@"):
                wrong += 1
            decision = "[green]allow[/green]" if record.decision == "allow" else f"[red]deny[/red] {record.status}"
            table.add_row(o.user, _who(record), f"{record.method} {_short(record.path.removeprefix('/api/2.0'))}", decision)
    console.print(table)
    reads = "read" if anonymous == 1 else "reads"
    metadata = f", and {anonymous} unauthenticated {reads} of the workspace's public metadata by clients being built" if anonymous else ""
    console.print(f"[dim]Plus {serving_checks} calls by {edge}{metadata}.[/dim]")
    if wrong:
        console.print(f"[red]✗ {wrong} call(s) ran as a user other than the one who asked.[/red]")
    else:
        called = sorted(e for e in agent_called if e)
        itself = f"only called {', '.join(called)}, as declared" if called else "made no call"
        console.print(f"[green]✓ Every data call ran as the user who asked; the agent's own identity {itself}.[/green]")
    return wrong


if __name__ == "__main__":
    sys.exit(demo())
