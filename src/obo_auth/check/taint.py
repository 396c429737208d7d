"""What a value may hold, by simple intra-function taint propagation.

A name assigned from a tainted expression is tainted, in any order (flow-insensitive: a name
reused for two things is taken to hold both), and a call is tainted by its receiver and its
arguments: ``creds = ModelServingUserCredentials(); w = WorkspaceClient(credentials_strategy=creds);
tool = Tool(workspace_client=w)`` leaves ``tool`` holding the user's identity.
"""

from __future__ import annotations

import ast
import enum

from obo_auth.check import library
from obo_auth.check.names import Names
from obo_auth.check.syntax import FUNCTIONS, direct_nodes, own_expressions, statements


class Taint(enum.Flag):
    NONE = 0
    USER = enum.auto()  # acts as an end user, not bound to a request: ModelServingUserCredentials, the header's token
    HEADER = enum.auto()  # the x-forwarded-access-token value itself (or a method's result on it: .strip())
    REQUEST = enum.auto()  # obo_auth's RequestContext (current_request())
    BOUND = enum.auto()  # built from obo_auth's request-bound user_client: safe to keep, by design
    KEPT_UNSAFE = enum.auto()  # a class of obo_auth.keep_unsafe built from the request-bound client
    APP = enum.auto()  # the process's own identity: WorkspaceClient(), an environment credential


# What a call passes on from its receiver and arguments to what it returns.
_CARRIED = Taint.USER | Taint.BOUND | Taint.KEPT_UNSAFE | Taint.APP


class Scope:
    """The names a module, class body, function or lambda binds, and what each may hold."""

    def __init__(self, parent: Scope | None, bound: set[str], *, is_class: bool = False):
        self.parent = parent
        self.bound = frozenset(bound)
        self.is_class = is_class
        self.values: dict[str, Taint] = {}

    def lookup(self, name: str) -> Taint:
        owner = self.owner(name)
        return owner.values.get(name, Taint.NONE) if owner else Taint.NONE

    def owner(self, name: str) -> Scope | None:
        scope: Scope | None = self
        while scope is not None and name not in scope.bound:
            scope = scope.parent
        return scope

    def for_functions(self) -> Scope:
        """The scope a function defined here sees: Python skips class bodies."""
        return self.parent.for_functions() if self.is_class and self.parent else self

    def add(self, name: str, taint: Taint) -> bool:
        before = self.values.get(name, Taint.NONE)
        self.values[name] = before | taint
        return self.values[name] != before


def bound_names(body: list[ast.stmt]) -> set[str]:
    """The names a scope binds (assignments, loops, imports, definitions, global and nonlocal)."""
    bound: set[str] = set()
    for stmt in statements(body):
        if isinstance(stmt, (*FUNCTIONS, ast.ClassDef)):
            bound.add(stmt.name)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".", 1)[0] for alias in stmt.names)
        elif isinstance(stmt, (ast.Global, ast.Nonlocal)):
            bound.update(stmt.names)
        elif isinstance(stmt, ast.Try):
            bound.update(handler.name for handler in stmt.handlers if handler.name)
        for target in _targets(stmt):
            bound.update(node.id for node in ast.walk(target) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store))
        for expr in own_expressions(stmt):
            bound.update(node.target.id for node in direct_nodes(expr) if isinstance(node, ast.NamedExpr))
    return bound


def pairs(target: ast.expr, value: ast.expr) -> bool:
    """Whether ``target = value`` assigns element by element (``a, b = x, y``, no starred element)."""
    return (
        isinstance(target, (ast.Tuple, ast.List))
        and isinstance(value, (ast.Tuple, ast.List))
        and len(target.elts) == len(value.elts)
        and not any(isinstance(elt, ast.Starred) for elt in (*target.elts, *value.elts))
    )


def _targets(stmt: ast.stmt) -> list[ast.expr]:
    if isinstance(stmt, ast.Assign):
        return stmt.targets
    if isinstance(stmt, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
        return [stmt.target]
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        return [item.optional_vars for item in stmt.items if item.optional_vars is not None]
    return []


class Taints:
    def __init__(self, names: Names):
        self.names = names

    def fill(self, scope: Scope, body: list[ast.stmt], parameters: dict[str, Taint]) -> None:
        """What each name of ``scope`` may hold: its parameters', then every binding's, to a fixed point."""
        for name, taint in parameters.items():
            scope.add(name, taint)
        bindings = list(self._bindings(body))
        changed = True
        while changed:  # taints only grow, over finitely many names and kinds: this ends
            changed = False
            for target, value in bindings:
                changed |= self._bind(scope, target, value)

    def _bindings(self, body: list[ast.stmt]):
        for stmt in statements(body):
            if isinstance(stmt, ast.Assign):
                yield from ((target, stmt.value) for target in stmt.targets)
            elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) and stmt.value is not None:
                yield stmt.target, stmt.value
            elif isinstance(stmt, (ast.For, ast.AsyncFor)):
                yield stmt.target, stmt.iter
            elif isinstance(stmt, (ast.With, ast.AsyncWith)):
                yield from ((item.optional_vars, item.context_expr) for item in stmt.items if item.optional_vars is not None)
            for expr in own_expressions(stmt):
                yield from ((node.target, node.value) for node in direct_nodes(expr) if isinstance(node, ast.NamedExpr))

    def _bind(self, scope: Scope, target: ast.expr, value: ast.expr) -> bool:
        changed = False
        if pairs(target, value):  # a, b = x, y: each name gets its own value
            for one_target, one_value in zip(target.elts, value.elts):
                changed |= self._bind(scope, one_target, one_value)
            return changed
        taint = self.of(value, scope)
        for node in ast.walk(target):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                changed |= scope.add(node.id, taint)
        return changed

    def is_source(self, node: ast.AST) -> bool:
        """Where an end user's identity enters: ModelServingUserCredentials(), the runtime's invoker
        token, the forwarded-token header."""
        if isinstance(node, ast.Call):
            name = self.names.qualify(node.func) or ""
            if library.is_user_credentials(name) or library.is_invoker_token_function(name):
                return True
        return library.reads_forwarded_token(node, self.names) or library.reads_invoker_slot(node, self.names)

    def of(self, node: ast.expr, scope: Scope) -> Taint:
        """What evaluating ``node`` in ``scope`` may yield."""
        if isinstance(node, ast.Name):
            return scope.lookup(node.id)
        if isinstance(node, ast.Call):
            return self._call(node, scope)
        if isinstance(node, ast.Attribute):
            base = self.of(node.value, scope)
            if Taint.REQUEST in base:  # of a RequestContext only its user_client acts as anyone
                return (base & ~Taint.REQUEST) | (Taint.BOUND if node.attr == "user_client" else Taint.NONE)
            return base
        if isinstance(node, ast.Subscript):
            if library.reads_forwarded_token(node, self.names):
                return Taint.HEADER | Taint.USER
            if library.reads_invoker_slot(node, self.names):
                return Taint.USER
            if library.reads_credential_variable(node, self.names):
                return Taint.APP
            return self.of(node.value, scope)
        if isinstance(node, (ast.Lambda, ast.Compare, ast.Constant)):
            return Taint.NONE  # a lambda is a factory, not what it builds; a comparison is a bool
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return Taint.NONE
        if isinstance(node, ast.IfExp):
            return self.of(node.body, scope) | self.of(node.orelse, scope)
        if isinstance(node, ast.NamedExpr):
            return self.of(node.value, scope)
        taint = Taint.NONE
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                taint |= self.of(child, scope)
            elif isinstance(child, ast.comprehension):
                taint |= self.of(child.iter, scope)
            elif isinstance(child, ast.keyword):
                taint |= self.of(child.value, scope)
        return taint

    def _call(self, call: ast.Call, scope: Scope) -> Taint:
        name = self.names.qualify(call.func) or ""
        if self.is_source(call):
            return Taint.HEADER | Taint.USER if library.reads_forwarded_token(call, self.names) else Taint.USER
        if library.is_current_request(name):
            return Taint.REQUEST
        receiver = self.of(call.func.value, scope) if isinstance(call.func, ast.Attribute) else Taint.NONE
        inputs = Taint.NONE
        for argument in (*call.args, *(keyword.value for keyword in call.keywords)):
            inputs |= self.argument(argument, scope)
        result = (receiver | inputs) & _CARRIED
        if (receiver | inputs) & Taint.HEADER:
            result |= Taint.USER  # built from the user's token, it acts as the user
        if receiver & Taint.HEADER:
            result |= Taint.HEADER  # token.strip() is still the token
        if library.is_kept_unsafe(name) and inputs & Taint.BOUND:
            result |= Taint.KEPT_UNSAFE
        if (library.is_identity_client(name) and not inputs & Taint.USER) or library.reads_credential_variable(call, self.names):
            result |= Taint.APP
        return result

    def argument(self, node: ast.expr, scope: Scope) -> Taint:
        """An argument's taint; a lambda passed to a call stands for what it builds
        (``req.optional("mcp", lambda: McpServer(...))`` returns the server)."""
        if isinstance(node, ast.Lambda):
            lambda_scope = Scope(scope, {arg.arg for arg in ast.walk(node.args) if isinstance(arg, ast.arg)})
            return self.of(node.body, lambda_scope)
        if isinstance(node, ast.Starred):
            return self.of(node.value, scope)
        return self.of(node, scope)
