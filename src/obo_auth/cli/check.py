"""``obo-auth check PATH...``: the static check of agent code (obo_auth.check) as a command.

Exit status: 0 no findings, 1 findings, 2 input it cannot check (click's usage errors, and a
path that does not exist or a file that is not valid Python / not UTF-8). Paths and messages
are printed through ``printable``: a file name can hold any character, and none may reach the
terminal as a control sequence.
"""

from __future__ import annotations

import json

import click

from obo_auth.check import RULES, CheckError, Finding, check_paths, python_files
from obo_auth.terminal import printable

JSON_SCHEMA = "obo-auth-check/1"


def _list_rules(ctx: click.Context, _param: click.Parameter, wanted: bool) -> None:
    if not wanted or ctx.resilient_parsing:
        return
    width = max(map(len, RULES))
    for rule, description in RULES.items():
        click.echo(f"{rule:<{width}}  {description}")
    ctx.exit(0)


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True, help="How to print the findings."
)
@click.option(
    "--list-rules", is_flag=True, is_eager=True, expose_value=False, callback=_list_rules, help="Print the rule ids, what each flags, and exit."
)
@click.pass_context
def check(ctx: click.Context, paths: tuple[str, ...], output_format: str) -> None:
    """Check agent code for mistakes that leak one user's data to another (files, or directories of *.py).

    Reads the code without importing or running it. Suppress a finding with a trailing
    `# obo-auth: ignore[RULE-ID]` comment on its line.
    """
    try:
        files = python_files(paths)
        findings = check_paths(files)
    except CheckError as error:
        click.echo(f"Error: {printable(error)}", err=True)
        ctx.exit(2)
    if output_format == "json":
        document = {"schema": JSON_SCHEMA, "files_checked": len(files), "findings": [f.to_dict() for f in findings]}
        click.echo(json.dumps(document, indent=2))  # json.dumps escapes every control character
    else:
        for finding in findings:
            click.echo(_line(finding))
        click.echo(_summary(len(findings), len(files)))
    ctx.exit(1 if findings else 0)


def _line(finding: Finding) -> str:
    return (
        f"{printable(finding.path)}:{finding.line}:{finding.column}: {finding.rule} "
        f"{printable(finding.message)}  (fix: {printable(finding.fix)})"
    )


def _summary(findings: int, files: int) -> str:
    counted = f"{findings} finding{'' if findings == 1 else 's'}" if findings else "no findings"
    return f"{counted} in {files} file{'' if files == 1 else 's'}"
