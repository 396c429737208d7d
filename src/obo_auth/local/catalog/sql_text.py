"""Databricks SQL text, read with sqlglot: the caller's identity bound into an expression, and
the checks a seed's row filters, masks and function bodies must pass."""

from __future__ import annotations

from collections.abc import Iterable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from obo_auth.http_edge import BadRequest
from obo_auth.local.identity.models import Principal

DIALECT = "databricks"
# Group membership tests a row filter or mask uses to tell callers apart.
_MEMBERSHIP = {"is_account_group_member", "is_member"}
_CALLER = {"user", "current_user", "session_user"}


def parse_expression(text: str) -> exp.Expression:
    """One SQL expression (a condition, a mask, a function body); ParseError if it is not one."""
    parsed = sqlglot.parse(f"SELECT {text}", dialect=DIALECT)
    select = parsed[0] if len(parsed) == 1 else None
    if (
        not isinstance(select, exp.Select)
        or len(select.expressions) != 1
        or isinstance(select.expressions[0], exp.Alias)
        or any(select.args.get(part) for part in ("from_", "where", "group", "having", "order", "limit", "with_"))
    ):
        raise ParseError(f"{text[:80]!r} is not one SQL expression")
    return select.expressions[0]


def expression_problem(text: str, columns: set[str]) -> str | None:
    """Why ``text`` cannot be a row filter, mask or function body over ``columns``; None if it can."""
    try:
        expression = parse_expression(text)
    except SqlglotError as error:  # ParseError, TokenError (an unclosed quote), ...
        return f"not a SQL expression ({(str(error).splitlines() or ['unreadable'])[0][:120]})"
    except RecursionError:
        return "nested too deeply to read; write it flatter"
    if any(isinstance(node, (exp.Select, exp.Subquery, exp.Table)) for node in expression.walk()):
        return "a subquery is not supported here: use a condition over the table's own columns"
    unknown = sorted({c.name for c in expression.find_all(exp.Column)} - columns)
    if unknown:
        return f"names {', '.join(unknown)}, which {'is' if len(unknown) == 1 else 'are'} not a column here; columns: {', '.join(sorted(columns)) or 'none'}"
    for call in expression.find_all(exp.Anonymous):
        if call.name.lower() in _MEMBERSHIP and not _group_argument(call):
            return f"{call.name}() takes one group name as a string literal"
        # A function sqlglot does not know is the engine's own (sleep_ms, current_setting, ...),
        # not Databricks SQL; a catalog function is called by its qualified name (a.b.f()).
        if call.name.lower() not in _MEMBERSHIP | _CALLER and not isinstance(call.parent, exp.Dot):
            return f"{call.name}() is not a Databricks SQL function the local workspace knows"
    return None


def caller_name(principal: Principal) -> str:
    """What current_user() returns: a user's user name, a service principal's application id."""
    return principal.application_id if principal.kind == "service_principal" and principal.application_id else principal.name


def bind_caller(expression: exp.Expression, principal: Principal) -> exp.Expression:
    """``expression`` with current_user() and the group-membership tests answered for ``principal``."""

    def answer(node: exp.Expression) -> exp.Expression:
        if isinstance(node, (exp.CurrentUser, exp.SessionUser)) or (isinstance(node, exp.Anonymous) and node.name.lower() in _CALLER):
            return exp.Literal.string(caller_name(principal))
        if isinstance(node, exp.Anonymous) and node.name.lower() in _MEMBERSHIP:
            group = _group_argument(node)
            if group is None:
                raise BadRequest(f"{node.name}() takes one group name as a string literal.")
            return exp.Boolean(this=group in principal.groups)
        return node

    return expression.transform(answer)


def _group_argument(call: exp.Anonymous) -> str | None:
    arguments = call.expressions
    if len(arguments) == 1 and isinstance(arguments[0], exp.Literal) and arguments[0].is_string:
        return arguments[0].this
    return None


def quoted(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def columns_sql(columns: Iterable[str]) -> str:
    return ", ".join(quoted(c) for c in columns)
