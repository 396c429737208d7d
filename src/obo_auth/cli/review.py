"""``obo-auth review MODEL_URI``: what a logged agent can do, on whose behalf, for a security review.

Reads the model (never runs it) unless ``--run`` asks questions of it; the report goes to
stdout in the chosen format, errors to stderr in one line. Exit status: 0 reviewed, 1 when a
run did not pass (scopes used but not declared, calls it cannot verify, questions that got
no answer: a CI gate), 2 for bad input.
"""

from __future__ import annotations

import click

from obo_auth.terminal import printable
from obo_auth.review.render import FORMATS


def _one_line(message: str) -> str:
    """An error is one line a terminal only displays: its first line, control characters escaped
    (a model's own output, quoted when it fails to load, may hold anything)."""
    first = message.splitlines()[0] if message.strip() else message
    return printable(first[:500] + ("..." if len(first) > 500 else ""))


class _ReviewFailed(click.ClickException):
    exit_code = 2  # bad input, as click's own usage errors: 1 is kept for "undeclared scopes found"


@click.command()
@click.argument("model_uri", required=False)
@click.option(
    "--app", "app_bundle", type=click.Path(path_type=str),
    help="Review a Databricks App instead: its databricks.yml (or the directory holding it).",
)  # fmt: skip
@click.option("--name", "app_name", help="With --app: which App of the bundle (default: its only one).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="terminal", show_default=True)
@click.option(
    "--run", "questions", type=click.Path(dir_okay=False, path_type=str),
    help="A QUESTIONS.yaml to ask as its users through local serving, comparing declared scopes with those the calls needed.",
)  # fmt: skip
@click.option("--seed", type=click.Path(dir_okay=False, path_type=str), help="The local workspace's seed for --run (default seed if not given).")
def review(
    model_uri: str | None, app_bundle: str | None, app_name: str | None, fmt: str, questions: str | None, seed: str | None
) -> None:
    """Review MODEL_URI (models:/name/1, runs:/..., or a model directory), or with --app a Databricks
    App's bundle: its API scopes in plain words, what it reaches as the user and as itself,
    documented risks, code findings and an end-user summary."""
    from obo_auth.review import ReviewError, review_app
    from obo_auth.review import review as review_model
    from obo_auth.review.render import render

    if (model_uri is None) == (app_bundle is None):
        raise _ReviewFailed("give either a MODEL_URI or --app PATH (a Databricks App's databricks.yml)")
    if app_bundle is not None and questions is not None:
        raise _ReviewFailed("--run serves a logged model; for an App, run it with `obo-auth serve-app` and ask it as users")
    if app_name is not None and app_bundle is None:
        raise _ReviewFailed("--name is for --app: which App of the bundle")
    if seed is not None and questions is None:
        raise _ReviewFailed("--seed is for --run: give a QUESTIONS.yaml to run")
    try:
        result = review_app(app_bundle, app_name) if app_bundle is not None else review_model(model_uri, run=questions, seed=seed)
    except ReviewError as failed:
        raise _ReviewFailed(_one_line(str(failed))) from None
    click.echo(render(result.to_dict(), fmt))
    if result.drift is not None and not result.drift["passed"]:
        raise SystemExit(1)
