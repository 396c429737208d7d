"""The local Genie's questions: a few documented patterns, each turned into one read-only SQL
query over one table of the space. No model, no guessing: the same question over the same
space always gives the same SQL, and a question that fits no pattern gets a reply saying so.

Reading a question
  Only its last non-empty line counts, without a leading ``user:`` (GenieAgent sends the chat
  history, one ``role: content`` line per message, the question last). Case does not matter;
  punctuation outside quotes is ignored. Words the patterns do not use are ignored.

Naming a table or a column
  A table by its full name (``main.hr.employees``) or its last part, singular or plural
  (``employees``, ``employee``), with ``_`` or a space between words (``handbook_index``,
  ``handbook index``); the first table named wins (no joins). A question that names no table
  uses the table of the conversation's previous question, else the space's only table.
  Columns are named the same way (``salary``, ``salaries``, ``doc_uri``, ``doc uri``). A
  question must name a table or one of its columns: "show me the weather" lists nothing.

The patterns (tried in this order; the first that fits answers)
  count      "how many <table> ...", "count <table>", "number of <table>"
             -> SELECT count(*) AS count FROM <table>
  top        "top|bottom [N] <table> by <column>",
             "[N] <table> with|has|have the highest|lowest|largest|smallest|most|least <column>"
             -> SELECT <every column> FROM <table> ORDER BY <column> DESC|ASC NULLS LAST LIMIT N
             (N in digits or a word up to twenty; 10 when not given, 1 after "has the")
  aggregate  "average|avg|mean|total|sum|minimum|min|maximum|max|highest|lowest|largest|smallest [of] <column>"
             -> SELECT avg|sum|min|max(<column>) AS average_<column> ... FROM <table>
             (average and total need a numeric column)
  list       "list|show|display|get|find|give me|what are|which|who are [distinct] <columns> ... <table>"
             -> SELECT [DISTINCT] <the columns named, else every column> FROM <table> ORDER BY ...

Modifiers (with any pattern)
  grouping   "by|per <column>", "for each|in each|for every <column>": count and aggregate
             answer per value (GROUP BY, one row per value); a list is ordered by it.
  filter     "where|whose <column> is|=|equals <value>", the value one word, a number or a
             quoted text ('new york'): WHERE lower(<column>) = '<value>' for text (case-insensitive),
             <column> = <value> for numbers and booleans. One filter per question.

Values are written into the SQL as literals by sqlglot (quoted and escaped), never pasted as text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlglot import exp

from obo_auth.local.catalog.sql_text import DIALECT

DEFAULT_TOP = 10
MAX_TOP = 1000
_NUMBER_WORDS = {
    w: n
    for n, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_ROLE_LABEL = re.compile(r"^\s*(?:user|human)\s*:\s*", re.IGNORECASE)
# A quoted text, a number, or a word (dots and apostrophes inside: main.hr.employees, o'brien); the rest is ignored.
_TOKEN = re.compile(r"'[^']*'|\"[^\"]*\"|-?\d+(?:\.\d+)?|[a-z0-9_]+(?:[.'][a-z0-9_]+)*|=")
_LIST_WORDS = {"list", "show", "display", "get", "find", "which"}
_LIST_PHRASES = {("give", "me"), ("what", "are"), ("who", "are")}
_FUNCTIONS = {
    "average": ("avg", "average"), "avg": ("avg", "average"), "mean": ("avg", "average"),
    "total": ("sum", "total"), "sum": ("sum", "total"),
    "minimum": ("min", "min"), "min": ("min", "min"), "lowest": ("min", "min"), "smallest": ("min", "min"),
    "maximum": ("max", "max"), "max": ("max", "max"), "highest": ("max", "max"), "largest": ("max", "max"),
}  # fmt: skip
_DESCENDING = {"highest", "largest", "most", "biggest", "top"}
_ASCENDING = {"lowest", "smallest", "least", "bottom"}
_EXTREMES = (_DESCENDING | _ASCENDING) - {"top", "bottom"}
_NUMERIC = {"int", "double"}
_FILLER = {"the", "a", "an", "of", "all"}


@dataclass(frozen=True)
class Plan:
    """A question the local Genie can answer: the SQL to run, and what the answer needs to word it."""

    kind: str  # count | top | aggregate | list
    table: str
    sql: str
    title: str  # the query attachment's title
    description: str  # the query attachment's description: what the SQL does, in words
    label: str  # what the rows are called in the answer: "employees"
    measure: str | None = None  # the aggregated or ordering column
    function: str | None = None  # aggregate: "average", "total", "min", "max"
    group: str | None = None
    filter_text: str = ""  # " where team is engineering"
    limit: int | None = None
    direction: str | None = None  # top: "highest" or "lowest"

    def rows_called(self, count: int) -> str:
        """How the answer calls ``count`` of the rows: "1 employee", "4 employees"."""
        return f"{count} {singular(self.label) if count == 1 else self.label}"


@dataclass(frozen=True)
class Unanswerable:
    """A question no pattern fits, and why (said to the user)."""

    reason: str


Answer = Plan | Unanswerable


@dataclass(frozen=True)
class _Filter:
    column: str  # as the question says it, until resolved to the table's column
    value: str
    condition: exp.Expression | None = None  # once resolved


def plan(question: str, tables: Mapping[str, Mapping[str, str]], *, previous_table: str | None = None) -> Answer:
    """The SQL that answers ``question`` over ``tables`` (name -> column -> type), or why there is none."""
    words = _tokens(question, [*tables, *(c for columns in tables.values() for c in columns)])
    if not words:
        return Unanswerable("the question has no words I can read")
    words, where = _take_filter(words)
    if isinstance(where, Unanswerable):
        return where
    table = _table(words, tables, previous_table)
    if isinstance(table, Unanswerable):
        return table
    columns = tables[table]
    # Every answer is about something the question names: else "show me the weather" would list a table.
    if not any(_table_named(w, tables) or _column(w, columns) for w in words) and where is None:
        return Unanswerable(f"it names none of this space's tables ({', '.join(_label(t) for t in tables)}) or their columns")
    filt = _resolved(where, table, columns) if where else None
    if isinstance(filt, Unanswerable):
        return filt
    group = _group(words, columns)
    for kind in (_count, _top, _aggregate, _list):
        answer = kind(words, table, columns, filt, group)
        if answer is not None:
            return answer
    return Unanswerable(
        "it fits none of the question patterns I know (how many ..., list ..., top N ... by ..., average|total|min|max ... by ...)"
    )


# -- reading the question ---------------------------------------------------------------------
def _tokens(question: str, names: list[str]) -> list[str]:
    lines = [line for line in question.splitlines() if line.strip()]
    text = _ROLE_LABEL.sub("", lines[-1] if lines else "").lower()
    # Multi-word names said with spaces become the name: "doc uri" -> doc_uri.
    for name in sorted({n.lower() for n in names}, key=len, reverse=True):
        for part in (name, name.rsplit(".", 1)[-1]):
            if "_" in part:
                text = re.sub(rf"\b{re.escape(part.replace('_', ' '))}\b", part, text)
    return _TOKEN.findall(text)


def singular(word: str) -> str:
    """A word's singular, near enough to match names: salaries -> salary, employees -> employee."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("sses"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _same(word: str, name: str) -> bool:
    return word == name or singular(word) == singular(name)


def _column(word: str, columns: Mapping[str, str]) -> str | None:
    return next((c for c in columns if _same(word, c.lower())), None)


def _table_named(word: str, tables: Mapping[str, Mapping[str, str]]) -> str | None:
    return next((t for t in tables if word == t.lower() or _same(word, t.rsplit(".", 1)[-1].lower())), None)


def _table(words: list[str], tables: Mapping[str, Mapping[str, str]], previous: str | None) -> str | Unanswerable:
    named = next((t for t in (_table_named(w, tables) for w in words) if t), None)
    if named:
        return named
    if previous in tables:
        return previous
    if len(tables) == 1:
        return next(iter(tables))
    return Unanswerable(f"it names none of this space's tables; name one of: {', '.join(_label(t) for t in tables)}")


def _take_filter(words: list[str]) -> tuple[list[str], _Filter | Unanswerable | None]:
    """The words without a "where <column> is <value>" filter, and the filter (column unresolved)."""
    at = next((i for i, w in enumerate(words) if w in ("where", "whose")), None)
    if at is None:
        return words, None
    rest = words[at + 1 :]
    while rest and rest[0] in _FILLER:
        rest = rest[1:]
    if len(rest) >= 3 and rest[1] in ("is", "=", "equals", "equal"):
        value_at = 3 if rest[1] == "equal" and rest[2] == "to" else 2
        if len(rest) > value_at:
            return words[:at] + rest[value_at + 1 :], _Filter(rest[0], _unquoted(rest[value_at]))
    return words, Unanswerable("I read a filter only as \"where <column> is <value>\"")


def _unquoted(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value


def _group(words: list[str], columns: Mapping[str, str]) -> str | None:
    for i, word in enumerate(words):
        after = None
        if word in ("by", "per"):
            after = words[i + 1 :]
        elif word in ("for", "in") and i + 1 < len(words) and words[i + 1] in ("each", "every"):
            after = words[i + 2 :]
        if after is None:
            continue
        after = [w for w in after if w not in _FILLER]
        if after and _column(after[0], columns):
            return _column(after[0], columns)
    return None


def _has_phrase(words: list[str], phrases: set[tuple[str, str]]) -> bool:
    return any(pair in phrases for pair in zip(words, words[1:]))


def _number(words: list[str]) -> int | None:
    for word in words:
        if word.isdigit():
            # Past 6 digits it is out of range anyway (and int() refuses 4300 digits).
            return int(word) if len(word) <= 6 else MAX_TOP + 1
        if word in _NUMBER_WORDS:
            return _NUMBER_WORDS[word]
    return None


# -- the patterns -----------------------------------------------------------------------------
def _count(words, table, columns, filt, group) -> Answer | None:
    if not ("count" in words or _has_phrase(words, {("how", "many"), ("number", "of")})):
        return None
    count = exp.alias_(exp.Count(this=exp.Star()), "count", quoted=True)
    query = _select([count], table, filt)
    title = f"Number of {_label(table)}"
    if group:
        query = exp.select(exp.column(group, quoted=True), count).from_(_from(table))
        query = _where(query, filt).group_by(exp.column(group, quoted=True)).order_by(
            exp.Ordered(this=exp.column("count", quoted=True), desc=True), exp.column(group, quoted=True)
        )
        title += f" by {group}"
    return Plan(
        "count", table, _sql(query), title, f"Counts the rows of {table}{_filter_words(filt)}" + (f", per {group}." if group else "."),
        _label(table), group=group, filter_text=_filter_words(filt),
    )  # fmt: skip


def _top(words, table, columns, filt, group) -> Answer | None:
    extreme = next((i for i, w in enumerate(words) if w in _EXTREMES and i >= 2 and words[i - 1] == "the" and words[i - 2] in ("with", "has", "have", "had")), None)
    ranked = next((i for i, w in enumerate(words) if w in ("top", "bottom")), None)
    if extreme is None and ranked is None:
        return None
    if extreme is not None:
        measure_word = next((w for w in words[extreme + 1 :] if w not in _FILLER), None)
        descending = words[extreme] in _DESCENDING
        default = 1 if words[extreme - 2] in ("has", "had") else DEFAULT_TOP
    else:
        by = next((i for i, w in enumerate(words) if w == "by" and i > ranked), None)
        measure_word = next((w for w in words[by + 1 :] if w not in _FILLER), None) if by is not None else None
        descending = words[ranked] == "top"
        default = DEFAULT_TOP
    measure = _column(measure_word, columns) if measure_word else None
    if measure is None:
        return Unanswerable(f"I could not tell which column of {table} to rank by{_columns_hint(columns)}")
    limit = _number(words)
    limit = default if limit is None else limit
    if not 1 <= limit <= MAX_TOP:
        return Unanswerable(f"I rank between 1 and {MAX_TOP} rows, not {limit}")
    order = exp.Ordered(this=exp.column(measure, quoted=True), desc=descending, nulls_first=False)
    query = _select([exp.column(c, quoted=True) for c in columns], table, filt).order_by(order, exp.column(next(iter(columns)), quoted=True))
    query = query.limit(limit)
    direction = "highest" if descending else "lowest"
    return Plan(
        "top", table, _sql(query), f"{_label(table).capitalize()} with the {direction} {measure}",
        f"The {'row' if limit == 1 else f'{limit} rows'} of {table}{_filter_words(filt)} with the {direction} {measure}.",
        _label(table), measure=measure, filter_text=_filter_words(filt), limit=limit, direction=direction,
    )  # fmt: skip


def _aggregate(words, table, columns, filt, group) -> Answer | None:
    for i, word in enumerate(words):
        if word not in _FUNCTIONS:
            continue
        following = [w for w in words[i + 1 :] if w not in _FILLER]
        measure = _column(following[0], columns) if following else None
        if measure is None:
            continue
        sql_function, function = _FUNCTIONS[word]
        if sql_function in ("avg", "sum") and columns[measure] not in _NUMERIC:
            return Unanswerable(f"{measure} is a {columns[measure]} column: I can only take the {function} of a number")
        alias = f"{'average' if function == 'average' else function}_{measure}"
        value = exp.alias_(exp.func(sql_function, exp.column(measure, quoted=True)), alias, quoted=True)
        if group:
            query = exp.select(exp.column(group, quoted=True), value).from_(_from(table))
            query = _where(query, filt).group_by(exp.column(group, quoted=True)).order_by(exp.column(group, quoted=True))
        else:
            query = _select([value], table, filt)
        return Plan(
            "aggregate", table, _sql(query), f"{function.capitalize()} {measure}" + (f" by {group}" if group else ""),
            f"The {function} of {measure} over the rows of {table}{_filter_words(filt)}" + (f", per {group}." if group else "."),
            _label(table), measure=measure, function=function, group=group, filter_text=_filter_words(filt),
        )  # fmt: skip
    return None


def _list(words, table, columns, filt, group) -> Answer | None:
    if not (_LIST_WORDS & set(words) or _has_phrase(words, _LIST_PHRASES)):
        return None
    named = [c for c in dict.fromkeys(_column(w, columns) for w in words if not _table_named(w, {table: columns})) if c and c != group]
    shown = named or list(columns)
    distinct = bool({"distinct", "different", "unique"} & set(words))
    query = _select([exp.column(c, quoted=True) for c in shown], table, filt)
    if distinct:
        query = query.distinct()
        order = shown  # DISTINCT may only order by what it selects
    else:
        order = ([group] if group else []) + [c for c in shown[:1] if c != group]
    query = query.order_by(*(exp.column(c, quoted=True) for c in order))
    what = ", ".join(shown) if named else "every column"
    return Plan(
        "list", table, _sql(query), f"{_label(table).capitalize()}" + (f": {', '.join(named)}" if named else ""),
        f"Lists {'the distinct values of ' if distinct else ''}{what} of {table}{_filter_words(filt)}, ordered by {', '.join(order)}.",
        _label(table), group=group, filter_text=_filter_words(filt),
    )  # fmt: skip


# -- building the SQL -------------------------------------------------------------------------
def _from(table: str) -> exp.Table:
    catalog, schema, name = table.split(".")
    return exp.Table(this=exp.to_identifier(name, quoted=True), db=exp.to_identifier(schema, quoted=True), catalog=exp.to_identifier(catalog, quoted=True))


def _select(projections: list[exp.Expression], table: str, filt: _Filter | None) -> exp.Select:
    return _where(exp.select(*projections).from_(_from(table)), filt)


def _where(query: exp.Select, filt: _Filter | None) -> exp.Select:
    return query if filt is None else query.where(filt.condition)


def _sql(query: exp.Expression) -> str:
    return query.sql(dialect=DIALECT, identify=True)


def _filter_words(filt: _Filter | None) -> str:
    return f" where {filt.column} is {filt.value}" if filt else ""


def _label(table: str) -> str:
    return table.rsplit(".", 1)[-1].replace("_", " ")


def _columns_hint(columns: Mapping[str, str]) -> str:
    return f"; its columns: {', '.join(columns)}"


def _resolved(where: _Filter, table: str, columns: Mapping[str, str]) -> _Filter | Unanswerable:
    column = _column(where.column, columns)
    if column is None:
        return Unanswerable(f"{table} has no column {where.column[:60]!r} to filter on{_columns_hint(columns)}")
    condition = _condition(column, where.value, columns[column])
    return condition if isinstance(condition, Unanswerable) else _Filter(column, where.value, condition)


def _condition(name: str, value: str, kind: str) -> exp.Expression | Unanswerable:
    column = exp.column(name, quoted=True)
    if kind == "string":
        return exp.EQ(this=exp.Lower(this=column), expression=exp.Literal.string(value.lower()))
    if kind == "boolean":
        if value.lower() not in ("true", "false", "yes", "no"):
            return Unanswerable(f"{name} is true or false, not {value[:40]!r}")
        return exp.EQ(this=column, expression=exp.Boolean(this=value.lower() in ("true", "yes")))
    try:
        number = int(value) if kind == "int" else float(value)
    except ValueError:
        return Unanswerable(f"{name} is a number, not {value[:40]!r}")
    if not math.isfinite(number):  # nan and inf would be written out as bare words
        return Unanswerable(f"{name} is a finite number, not {value[:40]!r}")
    return exp.EQ(this=column, expression=exp.Literal.number(number))
