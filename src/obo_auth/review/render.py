"""A review as text: a terminal report, Markdown for a pull request or ticket, or JSON.

Every value that comes from the model (resource names, scopes, file paths, finding messages)
is shown through ``printable`` in the terminal and escaped in Markdown: an MLmodel is a file
anyone may edit, and must not reach a terminal as control sequences or break a table.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from obo_auth.terminal import printable

FORMATS = ("terminal", "markdown", "json")
# What can make Markdown of text mid-line: emphasis, code spans, links and images (which need
# "["), HTML and entities, table cells, strikethrough, GitHub's math. Parentheses, dots, colons
# and the like start nothing there, and stay readable; GitHub's bare-URL autolinks are broken
# apart separately (_AUTOLINKS).
_MARKDOWN_PUNCTUATION = frozenset("\\`*_[]<>!|~&$")
_AUTOLINKS = (("://", ":\\/\\/"), ("www.", "www\\."))


def render(review: dict[str, Any], fmt: str) -> str:
    """``review`` is ``Review.to_dict()``; ``fmt`` one of FORMATS."""
    if fmt == "json":
        return json.dumps(review, indent=2)
    if fmt == "markdown":
        return _markdown(review)
    return _terminal(review)


def _risks(review: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    return [(use["scope"], risk) for use in review["scopes"] for risk in use["risks"]]


def _drift_lines(review: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) rows of a review's drift report, shared by both text formats."""
    drift, rows = review["drift"], []
    behind = {use["scope"]: use["resources"] for use in review["scopes"]}
    for scope, calls in drift["used"].items():
        first, users = calls[0], ", ".join(dict.fromkeys(c["user"] for c in calls))
        rows.append(("used", f"{scope}: by {users}; first when {first['user']} asked {first['question']!r} ({first['call']})"))
    for scope in drift["declared_but_never_used"]:
        if behind.get(scope):
            why = f"obo_auth's resource table asks it for {', '.join(behind[scope])}; no call of this run needed it"
        else:
            why = "no declared resource needs it: remove it from extra_scopes, or ask a question that needs it"
        rows.append(("declared but never used", f"{scope}: {why}"))
    for scope, calls in drift["used_but_not_declared"].items():
        who = ", ".join(sorted({f"{c['user']} asking {c['question']!r}" for c in calls}))
        rows.append(("USED BUT NOT DECLARED", f"{scope}: fails with Invalid scope in production; needed by {who}"))
    rows += [
        ("UNVERIFIED", f"{e['call']} when {e['user']} asked {e['question']!r}: the local workspace does not serve this API, so "
         "whether the declared scopes cover it is unknown")
        for e in drift["unverified"]
    ]  # fmt: skip
    failed = [a for a in drift["asked"] if a["status"] >= 400]
    rows += [
        ("QUESTION FAILED", f"{a['user']} asking {a['question']!r}{' (streamed)' if a['stream'] else ''}: HTTP {a['status']}, "
         "so what it would have called was not observed")
        for a in failed
    ]  # fmt: skip
    if not any(a["calls"] for a in drift["asked"]):
        rows.append(("no call on a user's behalf", "the run observed nothing: ask questions that make the agent use its tools"))
    rows.append(("result", "passed" if drift["passed"] else "FAILED: the run does not show that the declared scopes suffice"))
    return rows


def _terminal(review: dict[str, Any]) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(width=None if sys.stdout.isatty() else 140, no_color=True)

    def table(*columns: str) -> Table:
        t = Table(*columns, show_lines=False, box=None, pad_edge=False)
        for column in t.columns:
            column.overflow = "fold"
        return t

    def row(t: Table, *cells: Any) -> None:
        t.add_row(*(Text(printable(c)) for c in cells))  # Text: never read as markup

    with console.capture() as captured:
        policy = "yes" if review["user_auth_policy"] else "NO"
        console.print(Text(f"Security review of {printable(review['model'])}  (user auth policy: {policy})"))
        console.print()
        console.print(Text("As the user: API scopes held on the user's behalf"))
        scopes = table("scope", "allows", "does not allow", "declared resources behind it")
        scopes.columns[0].no_wrap = True  # a scope is copied as it is
        for use in review["scopes"]:
            row(scopes, use["scope"], use["allows"], use["does_not"], ", ".join(use["resources"]) or "none")
        console.print(scopes if review["scopes"] else Text("  none"))
        console.print()
        console.print(Text("As the agent itself (the same for every user)"))
        agent = table("resource", "name")
        for entry in review["as_agent"]:
            row(agent, entry["type"], entry["name"])
        console.print(agent if review["as_agent"] else Text("  none"))
        sections = [
            ("Risks the platform documents", [f"[{r['severity']}] {scope}: {r['text']}" for scope, r in _risks(review)]),
            ("Policy callouts", [f"[{c['severity']}] {c['id']}: {c['text']}" for c in review["callouts"]]),
            ("Code (obo-auth check)", _code_lines(review)),
        ]
        if review["drift"] is not None:
            sections.append(("Scope drift from the run", [f"{label}: {text}" for label, text in _drift_lines(review)]))
        sections.append(("End-user summary", [review["end_user_summary"]]))
        for title, lines in sections:
            console.print()
            console.print(Text(title))
            for line in lines or ["none"]:
                console.print(Text(f"  {printable(line)}"), soft_wrap=True)  # whole lines: the terminal wraps them
    return "\n".join(line.rstrip() for line in captured.get().splitlines())


def _code_lines(review: dict[str, Any]) -> list[str]:
    code = review["code"]
    if code["checked"] is None:
        return ["not checked: the model holds no code files"]
    lines = [f"{f['path']}:{f['line']}: {f['rule']} {f['message']} (fix: {f['fix']})" for f in code["findings"]]
    return lines or [f"no findings in {len(code['checked'])} file(s): {', '.join(code['checked'])}"]


def _markdown(review: dict[str, Any]) -> str:
    def cell(value: Any) -> str:
        # Backslash-escaped (CommonMark lets any ASCII punctuation be): no value from the model
        # can open a link, an image, emphasis, HTML or a code span, or end a table cell.
        text = "".join(f"\\{char}" if char in _MARKDOWN_PUNCTUATION else char for char in printable(value))
        for link, broken in _AUTOLINKS:
            text = text.replace(link, broken)
        return text

    out = [f"## Security review: {cell(review['model'])}", ""]
    out.append(f"**User auth policy:** {'yes' if review['user_auth_policy'] else '**no**'}")
    out += ["", "### As the user", ""]
    if review["scopes"]:
        out += ["| API scope | allows | does not allow | declared resources |", "|---|---|---|---|"]
        out += [
            f"| {cell(u['scope'])} | {cell(u['allows'])} | {cell(u['does_not'])} | {cell(', '.join(u['resources']) or 'none')} |"
            for u in review["scopes"]
        ]
    else:
        out.append("Nothing: the model holds no API scope on its user's behalf.")
    out += ["", "### As the agent itself (the same for every user)", ""]
    out += [f"- {cell(e['type'])} {cell(e['name'])}" for e in review["as_agent"]] or ["None."]
    out += ["", "### Risks the platform documents", ""]
    out += [f"- **{r['severity']}** ({cell(scope)}): {cell(r['text'])}" for scope, r in _risks(review)] or ["None."]
    out += ["", "### Policy callouts", ""]
    out += [f"- **{c['severity']}** {cell(c['id'])}: {cell(c['text'])}" for c in review["callouts"]] or ["None."]
    out += ["", "### Code (`obo-auth check`)", ""]
    out += [f"- {cell(line)}" for line in _code_lines(review)]
    if review["drift"] is not None:
        out += ["", "### Scope drift from the run", ""]
        out += [f"- **{label}**: {cell(text)}" for label, text in _drift_lines(review)] or ["- No call needed a scope."]
    out += ["", "### End-user summary", "", f"> {cell(review['end_user_summary'])}", ""]
    return "\n".join(out)
