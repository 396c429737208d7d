"""The words of the local Genie's answers: the summary of a query's result (the text attachment
that comes with the query attachment, as the platform's final summary does), and the reply to
a question it cannot answer, with questions it can.

A summary says only what the result holds: the caller's own rows, after row filters and masks.
"""

from __future__ import annotations

from collections.abc import Mapping

from obo_auth.local.genie.questions import Plan, singular
from obo_auth.local.sql.execution import Result

# Values a summary spells out; the rest is in the query result.
SHOWN_VALUES = 10


def summary(plan: Plan, result: Result) -> str:
    rows = [row for chunk in result.chunks for row in chunk.rows]
    text = _words(plan, rows, result.row_count)
    if result.truncated:
        text += f" (The result was cut at {result.row_count} rows.)"
    return text


def _words(plan: Plan, rows: list[list[str | None]], row_count: int) -> str:
    label, where = plan.label, plan.filter_text
    if plan.kind == "count" and not plan.group:
        count = rows[0][0] if rows else "0"
        return f"There {'is 1 ' + singular(label) if count == '1' else f'are {count} {label}'}{where}."
    if plan.kind == "count":
        return f"The number of {label}{where} per {plan.group}: {_pairs(rows)}."
    if plan.kind == "aggregate" and not plan.group:
        value = rows[0][0] if rows else None
        return f"The {plan.function} {plan.measure} of {label}{where} is {_value(value)}."
    if plan.kind == "aggregate":
        return f"The {plan.function} {plan.measure} of {label}{where} per {plan.group}: {_pairs(rows)}."
    if row_count == 0:
        return f"No {label}{where} are visible to you."
    if plan.kind == "top":
        return f"Here {_are(row_count)} the {plan.rows_called(row_count)}{where} with the {plan.direction} {plan.measure}."
    return f"Here {_are(row_count)} {plan.rows_called(row_count)}{where}."


def cannot_answer(reason: str) -> str:
    return f"I can't answer that with the data in this space: {reason}. Try one of the suggested questions."


def suggested_questions(tables: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Questions the local Genie answers over the space's first table, built from its columns."""
    name, columns = next(iter(tables.items()))
    label = name.rsplit(".", 1)[-1].replace("_", " ")
    numbers = [c for c, kind in columns.items() if kind in ("int", "double") and c != "id"]
    texts = [c for c, kind in columns.items() if kind == "string"]
    questions = [f"How many {label} are there?", f"List all {label}"]
    if texts:
        questions.append(f"How many {label} are there per {texts[-1]}?")
    if numbers:
        questions.append(f"Top 3 {label} by {numbers[0]}")
        if texts:
            questions.append(f"What is the average {numbers[0]} by {texts[-1]}?")
    return questions


def _pairs(rows: list[list[str | None]]) -> str:
    shown = ", ".join(f"{_value(row[0])}: {_value(row[1])}" for row in rows[:SHOWN_VALUES])
    return shown + (f" and {len(rows) - SHOWN_VALUES} more" if len(rows) > SHOWN_VALUES else "") if rows else "none"


def _value(value: str | None) -> str:
    return "NULL" if value is None else value


def _are(count: int) -> str:
    return "is" if count == 1 else "are"
