"""A statement's SQL made safe to run as its caller: parsed (Databricks dialect), checked,
rewritten and transpiled to DuckDB, with sqlglot.

Only a read query passes. Every table it names is resolved to a catalog table (with the
request's default catalog and schema; CTE names stay CTEs) and needs SELECT; every catalog
function it calls needs EXECUTE and is inlined (its body, arguments substituted). The tables
are then renamed to views that hold only what the caller sees of them (the catalog's row
filters and column masks applied): the only data the engine will have. Parameter markers
become typed literals and current_user() / is_account_group_member() become the caller's
answers, so none of them is ever spliced into SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError, TokenError, UnsupportedError

from obo_auth.http_edge import BadRequest, PermissionDenied
from obo_auth.local.catalog.models import CatalogBackend
from obo_auth.local.catalog.sql_text import DIALECT, bind_caller, parse_expression
from obo_auth.local.catalog.store import View
from obo_auth.local.identity.models import Principal
from obo_auth.local.sql.failures import StatementFailed, unsupported
from obo_auth.local.sql.request import Parameter, StatementRequest

# What a name without a catalog or schema means when the request does not say (the platform's
# defaults for a Unity Catalog workspace whose default catalog is main).
DEFAULT_CATALOG = "main"
DEFAULT_SCHEMA = "default"
# Catalog functions calling catalog functions are inlined this deep at most (a cycle would not end).
MAX_FUNCTION_DEPTH = 8
# Views are named so that no catalog name can be one, and so error messages can name the table instead.
VIEW_PREFIX = "__uc_view_"

_QUERIES = (exp.Select, exp.SetOperation, exp.Values, exp.Subquery)
# What may not appear anywhere in a statement, even nested (INSERT in a CTE, SELECT ... INTO).
_NOT_READS = (
    exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command, exp.Set, exp.Use,
    exp.Copy, exp.Pragma, exp.Into, exp.Describe, exp.Cache, exp.Uncache, exp.Refresh, exp.LoadData, exp.Analyze,
    exp.Grant, exp.Revoke, exp.Show, exp.Kill, exp.Attach, exp.Detach, exp.Transaction, exp.Commit, exp.Rollback,
    exp.Lock, exp.Summarize,
)  # fmt: skip
_NILADIC_CALLER = {"user", "session_user"}
_SQL_TYPES = {"string": "STRING", "int": "BIGINT", "double": "DOUBLE", "boolean": "BOOLEAN"}

# (privilege, securable type, name) -> why the caller holds it, checked and audited; PermissionDenied if it does not.
Require = Callable[[str, str, str], str]


@dataclass(frozen=True)
class Compiled:
    """A statement ready for the engine, and what it reads."""

    duckdb_sql: str
    views: dict[str, View]  # view name -> what the caller sees of the table
    tables: dict[str, str]  # view name -> the table's catalog name
    functions: tuple[str, ...]  # the catalog functions it calls (EXECUTE checked)


def compile_statement(request: StatementRequest, *, principal: Principal, catalog: CatalogBackend, require: Require) -> Compiled:
    """The statement as ``principal`` may run it; StatementFailed says why it cannot run."""
    try:
        return _Compiler(request, principal, catalog, require).compile()
    except RecursionError:
        raise StatementFailed(None, "The statement is nested too deeply for the local SQL warehouse; simplify it.") from None
    except UnsupportedError as error:
        raise unsupported(f"The local SQL warehouse cannot run this statement: {_first_line(error)}") from None
    except SqlglotError as error:  # anything else sqlglot could not make of the statement
        raise StatementFailed("PARSE_SYNTAX_ERROR", f"Syntax error: {_first_line(error)}", "42601") from None


class _Compiler:
    def __init__(self, request: StatementRequest, principal: Principal, catalog: CatalogBackend, require: Require):
        self.request = request
        self.principal = principal
        self.catalog = catalog
        self.require = require
        self.default_catalog = request.catalog or DEFAULT_CATALOG
        self.default_schema = request.schema or DEFAULT_SCHEMA
        self.view_names: dict[str, str] = {}  # table -> view name
        self.functions: list[str] = []

    def compile(self) -> Compiled:
        query = _read_query(self.request.statement)
        _refuse_raw_text(query)
        query = _name_outputs(query)
        query = self._rewrite_tables(query)
        query = _bind_parameters(query, self.request.parameters)
        query = self._inline_functions(query, depth=0)
        query = self._caller_keywords(query)
        try:
            query = bind_caller(query, self.principal)
        except BadRequest as error:
            raise StatementFailed(None, error.message) from None
        for call in query.find_all(exp.Anonymous):
            raise StatementFailed(
                "UNRESOLVED_ROUTINE",
                f"Cannot resolve routine `{call.name}` on search path [`system`.`builtin`, `{self.default_catalog}`.`{self.default_schema}`]: "
                "it is neither a function the local SQL warehouse runs nor a catalog function.",
                "42883",
            )
        return Compiled(
            # Every identifier quoted: DuckDB reads some bare names (user, current_role) as its own functions.
            duckdb_sql=query.sql(dialect="duckdb", identify=True, unsupported_level=ErrorLevel.RAISE),
            views={view: self.catalog.view(table, self.principal) for table, view in self.view_names.items()},
            tables={view: table for table, view in self.view_names.items()},
            functions=tuple(dict.fromkeys(self.functions)),
        )

    # -- tables ------------------------------------------------------------------------
    def _rewrite_tables(self, query: exp.Expression) -> exp.Expression:
        references = [(table, self._table(table)) for table in query.find_all(exp.Table) if not _is_cte_reference(table)]
        # Every name first, as the platform's analyser does: a missing table fails before a missing privilege.
        for name in dict.fromkeys(name for _, name in references):
            self._check_select(name)
        for table, name in references:
            view = self.view_names.setdefault(name, f"{VIEW_PREFIX}{len(self.view_names)}")
            # Unaliased, the view keeps the table's name, so columns qualified by it still resolve.
            table.set("alias", table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name)))
            table.set("this", exp.to_identifier(view))
            table.set("db", None)
            table.set("catalog", None)
        # main.hr.employees.name -> employees.name
        for column in query.find_all(exp.Column):
            if column.args.get("db") and self._resolve([column.catalog, column.db, column.table]) in self.view_names:
                column.set("db", None)
                column.set("catalog", None)
        return query

    def _table(self, table: exp.Table) -> str:
        if isinstance(table.this, exp.Func):
            called = table.this.name if isinstance(table.this, exp.Anonymous) else table.this.sql_name()
            raise unsupported(f"The local SQL warehouse reads only the catalog's tables; the table-valued function {called.lower()}() is not supported.")
        if table.args.get("version"):
            raise unsupported("The local SQL warehouse keeps no table history: time travel (VERSION AS OF, TIMESTAMP AS OF) is not supported.")
        written = [part for part in (table.catalog, table.db, table.name) if part]
        name = self._resolve([table.catalog, table.db, table.name]) if isinstance(table.this, exp.Identifier) else None
        if name is None:
            shown = ".".join(f"`{part}`" for part in written) if written else f"`{table.sql(dialect=DIALECT)[:120]}`"
            raise StatementFailed(
                "TABLE_OR_VIEW_NOT_FOUND",
                f"The table or view {shown} cannot be found. Verify the spelling and correctness of the schema and catalog. "
                "If you did not qualify the name with a schema, verify the current_schema() output, or qualify the name with the correct schema and catalog.",
                "42P01",
            )
        return name

    def _resolve(self, parts: list[str]) -> str | None:
        """The catalog table that ``[catalog, schema, name]`` (empty parts: the defaults) names, or None."""
        catalog, schema, name = parts
        wanted = f"{catalog or self.default_catalog}.{schema or self.default_schema}.{name}".lower()
        # Identifiers are case-insensitive, as on the platform.
        return next((table for table in self.catalog.tables if table.lower() == wanted), None)

    def _check_select(self, table: str) -> None:
        try:
            self.catalog.require(self.require, "SELECT", "table", table)
        except PermissionDenied as denied:
            raise _insufficient(denied) from None

    def _caller_keywords(self, query: exp.Expression) -> exp.Expression:
        """Bare ``user`` and ``session_user`` (SQL's niladic functions, as current_user) are the caller,
        unless a table the statement reads has a column of that name (left as a name, DuckDB would
        answer its own user, 'duckdb')."""
        columns = {c.lower() for table in self.view_names for c in self.catalog.tables[table].columns}

        def caller(node: exp.Expression) -> exp.Expression:
            if not (isinstance(node, exp.Column) and not node.table and node.name.lower() in _NILADIC_CALLER - columns):
                return node
            # As a result column it keeps its name (the caller's name is its value).
            named = isinstance(node.parent, exp.Select) and node.arg_key == "expressions"
            return exp.alias_(exp.CurrentUser(), exp.to_identifier(node.name, quoted=True)) if named else exp.CurrentUser()

        return query.transform(caller)

    # -- catalog functions -------------------------------------------------------------
    def _inline_functions(self, expression: exp.Expression, depth: int) -> exp.Expression:
        def inline(node: exp.Expression) -> exp.Expression:
            called = self._catalog_function(node)
            if called is None:
                return node
            if depth >= MAX_FUNCTION_DEPTH:
                raise StatementFailed(None, f"Catalog functions call each other more than {MAX_FUNCTION_DEPTH} deep (through {called}).")
            return self._inlined(called, node, depth)

        return expression.transform(inline)

    def _catalog_function(self, node: exp.Expression) -> str | None:
        """The catalog function ``node`` calls (by one, two or three part name), or None if it calls none."""
        if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Anonymous):
            prefix = _identifiers(node.this)
            parts = [*prefix, node.expression.name] if prefix else []
            if len(parts) == 2:
                parts.insert(0, self.default_catalog)
            found = self._function_named(parts) if len(parts) == 3 else None
            if found is None:
                shown = ".".join(f"`{part}`" for part in parts) or f"`{node.sql(dialect=DIALECT)[:120]}`"
                raise StatementFailed("UNRESOLVED_ROUTINE", f"Cannot resolve routine {shown}: no such catalog function.", "42883")
            return found
        # An unqualified name the engine does not know: a function of the default schema, if there is one.
        if isinstance(node, exp.Anonymous) and not isinstance(node.parent, exp.Dot):
            return self._function_named([self.default_catalog, self.default_schema, node.name])
        return None

    def _function_named(self, parts: list[str]) -> str | None:
        wanted = ".".join(parts).lower()
        return next((name for name in self.catalog.functions if name.lower() == wanted), None)

    def _inlined(self, name: str, node: exp.Expression, depth: int) -> exp.Expression:
        try:
            self.catalog.require(self.require, "EXECUTE", "function", name)
        except PermissionDenied as denied:
            raise _insufficient(denied) from None
        self.functions.append(name)
        function = self.catalog.functions[name]
        call = node.expression if isinstance(node, exp.Dot) else node
        arguments = [self._inline_functions(argument, depth) for argument in call.expressions]
        if len(arguments) != len(function.parameters):
            raise StatementFailed(
                "WRONG_NUM_ARGS",
                f"The `{name}` requires {len(function.parameters)} parameters but the actual number is {len(arguments)}.",
                "42605",
            )
        values = {
            parameter.lower(): exp.cast(argument, _SQL_TYPES[kind], dialect=DIALECT)
            for (parameter, kind), argument in zip(function.parameters.items(), arguments)
        }

        def substitute(body_node: exp.Expression) -> exp.Expression:
            if isinstance(body_node, exp.Column) and not body_node.table and body_node.name.lower() in values:
                return values[body_node.name.lower()].copy()
            return body_node

        body = parse_expression(function.body).transform(substitute)
        return exp.cast(exp.paren(self._inline_functions(body, depth + 1)), _SQL_TYPES[function.returns], dialect=DIALECT)


def _read_query(text: str) -> exp.Expression:
    try:
        statements = [s for s in sqlglot.parse(text, dialect=DIALECT) if s is not None]
    except (ParseError, TokenError) as error:
        raise StatementFailed("PARSE_SYNTAX_ERROR", f"Syntax error: {_first_line(error)}", "42601") from None
    if not statements:
        raise StatementFailed("PARSE_SYNTAX_ERROR", "Syntax error: the statement holds no SQL.", "42601")
    if len(statements) > 1:
        raise unsupported(f"The Statement Execution API runs one statement per request; this holds {len(statements)}: send them one at a time.")
    query = statements[0]
    refused = query if not isinstance(query, _QUERIES) else next(query.find_all(*_NOT_READS), None)
    if refused is not None:
        raise unsupported(f"The local SQL warehouse is read-only: it runs queries (SELECT, VALUES, WITH ... SELECT), not {_kind(refused)}.")
    if any(with_.args.get("recursive") for with_ in query.find_all(exp.With)):
        raise unsupported("Recursive common table expressions (WITH RECURSIVE) are not supported by the local SQL warehouse.")
    return query


# A bare word: sqlglot writes a Var (a date part such as DAY) out as it is, unquoted.
_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _refuse_raw_text(query: exp.Expression) -> None:
    """Refuses what sqlglot would write out unquoted and unchecked (a date part given as a
    string, ``date_add('DAY; ...', ...)``), and names that would shadow the views the
    statement is rewritten to read."""
    for var in query.find_all(exp.Var):
        if not _BARE_WORD.fullmatch(var.name):
            raise StatementFailed("INVALID_PARAMETER_VALUE", f"{var.name[:60]!r} is not a date or time unit (such as DAY or HOUR).", "22023")
    for identifier in query.find_all(exp.Identifier):
        if identifier.name.lower().startswith(VIEW_PREFIX):
            raise StatementFailed(None, f"Names starting with {VIEW_PREFIX} are reserved by the local SQL warehouse; rename {identifier.name[:60]!r}.")


def _name_outputs(query: exp.Expression) -> exp.Expression:
    """``query`` with its result's columns named as the platform names them: an expression by
    its SQL text (``current_user()``, not the caller's name it becomes), VALUES columns col1, col2, ..."""
    for values in list(query.find_all(exp.Values)):
        alias = values.args.get("alias")
        if alias is None or not alias.columns:
            first = values.expressions[0] if values.expressions else None
            width = len(first.expressions) if isinstance(first, exp.Tuple) else 1
            name = alias.this if alias is not None else exp.to_identifier("values")
            values.set("alias", exp.TableAlias(this=name, columns=[exp.to_identifier(f"col{i + 1}") for i in range(width)]))
    if isinstance(query, exp.Values):
        return exp.select("*").from_(query)
    select = query
    while isinstance(select, (exp.SetOperation, exp.Subquery)):
        select = select.this  # the first query of a UNION names its columns
    if isinstance(select, exp.Select):
        for projection in select.expressions:
            if not isinstance(projection, (exp.Alias, exp.Column, exp.Star)):
                text = projection.sql(dialect=DIALECT, normalize_functions="lower")
                projection.replace(exp.alias_(projection.copy(), exp.to_identifier(text, quoted=True)))
    return query


def _bind_parameters(query: exp.Expression, parameters: tuple[Parameter, ...]) -> exp.Expression:
    given = {p.name: p for p in parameters}

    def bind(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Placeholder):
            return node
        if not node.this:  # ?
            raise unsupported("Positional parameter markers (?) are not supported by the Statement Execution API; use named markers such as :name.")
        parameter = given.get(node.name)
        if parameter is None:
            raise StatementFailed("UNBOUND_SQL_PARAMETER", f"Found the unbound parameter: {node.name}. Give it in the request's 'parameters'.", "42P02")
        return parameter.literal()

    return query.transform(bind)


def _is_cte_reference(table: exp.Table) -> bool:
    """True if ``table`` names a common table expression of a query it is in."""
    if table.args.get("db") or table.args.get("catalog") or not isinstance(table.this, exp.Identifier):
        return False
    name = table.name.lower()
    node = table.parent
    while node is not None:
        with_ = node.args.get("with_")
        if with_ is not None and any(cte.alias_or_name.lower() == name for cte in with_.expressions):
            return True
        node = node.parent
    return False


def _identifiers(node: exp.Expression) -> list[str]:
    """The names of ``a.b`` (Identifiers joined by Dots); [] if it is anything else."""
    if isinstance(node, exp.Identifier):
        return [node.name]
    if isinstance(node, exp.Dot):
        left, right = _identifiers(node.this), _identifiers(node.expression)
        return [*left, *right] if left and right else []
    return []


def _insufficient(denied: PermissionDenied) -> StatementFailed:
    return StatementFailed("INSUFFICIENT_PERMISSIONS", f"Insufficient privileges:\n{denied.message}", "42501")


def _kind(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if isinstance(node, exp.Into):
        return "SELECT ... INTO"
    if isinstance(node, exp.Lock):
        return "SELECT ... FOR UPDATE"
    return node.key.upper()


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
