"""The Databricks Apps fallback: the ``x-forwarded-access-token`` header is read and, when it is
missing, the app's own identity is used instead (``WorkspaceClient()``, an environment
credential, a client built from one). Public App examples do this; every user then acts with
the app's permissions. The fix is to fail closed."""

from __future__ import annotations

import ast
import enum
from collections.abc import Iterator

from obo_auth.check import library
from obo_auth.check.names import Names
from obo_auth.check.syntax import blocks, direct_nodes, is_store, own_expressions, statements
from obo_auth.check.taint import Scope, Taint, Taints


class _Presence(enum.Enum):
    PRESENT = "true when the header is there"
    MISSING = "true when the header is missing"

    def flipped(self) -> _Presence:
        return _Presence.MISSING if self is _Presence.PRESENT else _Presence.PRESENT


class Fallbacks:
    def __init__(self, names: Names, taints: Taints):
        self.names = names
        self.taints = taints

    def find(self, body: list[ast.stmt], scope: Scope) -> Iterator[ast.AST]:
        """Where, in the statements of one scope, the app's identity stands in for a missing header."""
        for block in blocks(body):
            for index, stmt in enumerate(block):
                if isinstance(stmt, ast.If):
                    yield from self._if(stmt, block[index + 1 :], scope)
                elif isinstance(stmt, ast.Try) and self._reads_header(stmt.body):
                    for handler in stmt.handlers:  # headers["x-forwarded-access-token"] raised KeyError
                        yield from self._first_app(handler.body, scope)
                for expr in own_expressions(stmt):
                    yield from self._in_expression(expr, scope)

    def _if(self, stmt: ast.If, after: list[ast.stmt], scope: Scope) -> Iterator[ast.AST]:
        presence = self._presence(stmt.test, scope)
        if presence is _Presence.MISSING:
            yield from self._first_app(stmt.body, scope)
        elif presence is _Presence.PRESENT:
            if stmt.orelse:
                yield from self._first_app(stmt.orelse, scope)
            elif isinstance(stmt.body[-1], ast.Return):  # `if token: return ...` then the fallback below it
                yield from self._first_app(after, scope)

    def _in_expression(self, expr: ast.expr, scope: Scope) -> Iterator[ast.AST]:
        for node in direct_nodes(expr):
            if isinstance(node, ast.IfExp):
                presence = self._presence(node.test, scope)
                branch = {_Presence.MISSING: node.body, _Presence.PRESENT: node.orelse}.get(presence)
                if branch is not None and self._is_app(branch, scope):
                    yield branch
            elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
                yield from self._or(node.values, scope)
            elif isinstance(node, ast.Call) and library.reads_forwarded_token(node, self.names):
                defaults = [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "default")]
                yield from (default for default in defaults if self._is_app(default, scope))

    def _or(self, values: list[ast.expr], scope: Scope) -> Iterator[ast.AST]:
        """``token or os.environ["DATABRICKS_TOKEN"]``: an operand after the header's that is the app's."""
        for index, value in enumerate(values):
            if self._is_header(value, scope):
                yield from (later for later in values[index + 1 :] if self._is_app(later, scope))
                return

    def _presence(self, test: ast.expr, scope: Scope) -> _Presence | None:
        """Whether ``test`` is true when the header is there, true when it is missing, or neither."""
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            inner = self._presence(test.operand, scope)
            return inner.flipped() if inner else None
        if isinstance(test, ast.BoolOp):
            # `token and valid(token)` is false when it is missing; `not token or expired(token)` true.
            return next(filter(None, (self._presence(value, scope) for value in test.values)), None)
        if isinstance(test, ast.Compare) and len(test.ops) == 1:
            return self._comparison(test.left, test.ops[0], test.comparators[0], scope)
        return _Presence.PRESENT if self._is_header(test, scope) else None

    def _comparison(self, left: ast.expr, op: ast.cmpop, right: ast.expr, scope: Scope) -> _Presence | None:
        if isinstance(op, (ast.In, ast.NotIn)) and library.is_forwarded_token_name(self.names.string(left)):
            return _Presence.PRESENT if isinstance(op, ast.In) else _Presence.MISSING  # "x-forwarded-access-token" in headers
        empty = {None, ""}
        for header, other in ((left, right), (right, left)):
            if self._is_header(header, scope) and isinstance(other, ast.Constant) and other.value in empty:
                if isinstance(op, (ast.Is, ast.Eq)):
                    return _Presence.MISSING
                if isinstance(op, (ast.IsNot, ast.NotEq)):
                    return _Presence.PRESENT
        return None

    def _first_app(self, branch: list[ast.stmt], scope: Scope) -> Iterator[ast.AST]:
        """The first statement of a branch taken without the header that uses the app's identity;
        none if the branch fails closed (ends in raise, abort(...), st.stop())."""
        if not branch or self._fails_closed(branch[-1]):
            return
        found = [
            stmt
            for stmt in statements(branch)
            if any(self._is_app(expr, scope) for expr in own_expressions(stmt) if not is_store(expr))
        ]
        if found:
            yield min(found, key=lambda stmt: (stmt.lineno, stmt.col_offset))

    def _fails_closed(self, stmt: ast.stmt) -> bool:
        if isinstance(stmt, ast.Raise):
            return True
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            return library.is_fail_closed_call(self.names.qualify(stmt.value.func) or "")
        return False

    def _reads_header(self, body: list[ast.stmt]) -> bool:
        return any(
            library.reads_forwarded_token(node, self.names)
            for stmt in statements(body)
            for expr in own_expressions(stmt)
            for node in direct_nodes(expr)
        )

    def _is_header(self, expr: ast.expr, scope: Scope) -> bool:
        return Taint.HEADER in self.taints.of(expr, scope)

    def _is_app(self, expr: ast.expr, scope: Scope) -> bool:
        return Taint.APP in self.taints.of(expr, scope)
