"""The ``obo-auth`` command: one group, one module per command group."""

from __future__ import annotations

import click

from obo_auth.cli.check import check
from obo_auth.cli.demo import demo
from obo_auth.cli.review import review
from obo_auth.cli.serve import serve
from obo_auth.cli.serve_app import serve_app
from obo_auth.cli.workspace import workspace


@click.group()
@click.version_option(package_name="obo-auth")
def cli() -> None:
    """On-behalf-of-user authentication for Databricks agents, and a local workspace to test them."""


cli.add_command(workspace)
cli.add_command(serve)
cli.add_command(serve_app)
cli.add_command(demo)
cli.add_command(review)
cli.add_command(check)
