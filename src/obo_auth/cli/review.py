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
@click.argument("model_uri")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="terminal", show_default=True)
@click.option(
    "--run", "questions", type=click.Path(dir_okay=False, path_type=str),
    help="A QUESTIONS.yaml to ask as its users through local serving, comparing declared scopes with those the calls needed.",
)  # fmt: skip
@click.option("--seed", type=click.Path(dir_okay=False, path_type=str), help="The local workspace's seed for --run (default seed if not given).")
def review(model_uri: str, fmt: str, questions: str | None, seed: str | None) -> None:
    """Review MODEL_URI (models:/name/1, runs:/..., or a model directory): its API scopes in plain words,
    what it reaches as the user and as itself, documented risks, code findings and an end-user summary."""
    from obo_auth.review import ReviewError
    from obo_auth.review import review as review_model
    from obo_auth.review.render import render

    if seed is not None and questions is None:
        raise _ReviewFailed("--seed is for --run: give a QUESTIONS.yaml to run")
    try:
        result = review_model(model_uri, run=questions, seed=seed)
    except ReviewError as failed:
        raise _ReviewFailed(_one_line(str(failed))) from None
    click.echo(render(result.to_dict(), fmt))
    if result.drift is not None and not result.drift["passed"]:
        raise SystemExit(1)
