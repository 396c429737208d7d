"""What a value may hold, by simple intra-function taint propagation.

A name assigned from a tainted expression is tainted, in any order (flow-insensitive: a name
reused for two things is taken to hold both), and a call is tainted by what it calls, its
receiver and its arguments: ``creds = ModelServingUserCredentials(); w = WorkspaceClient(credentials_strategy=creds);
tool = Tool(workspace_client=w)`` leaves ``tool`` holding the user's identity. A call to one of
the module's own functions is tainted by what that function returns (helpers.py summarises them).
"""

from __future__ import annotations

import ast
import enum
from collections import defaultdict
from collections.abc import Iterator, Mapping

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


Function = ast.FunctionDef | ast.AsyncFunctionDef

# What a call passes on from its receiver and arguments to what it returns.
_CARRIED = Taint.USER | Taint.BOUND | Taint.KEPT_UNSAFE | Taint.APP


class Scope:
    """The names a module, class body, function or lambda binds, and what each may hold."""

    def __init__(self, parent: Scope | None, bound: set[str], *, is_class: bool = False):
        self.parent = parent
        self.bound = frozenset(bound)
        self.is_class = is_class
        self.values: dict[str, Taint] = {}
        # The module's own functions a call can name from here: ``answer()`` by its name in the
        # module's scope; ``self._tool()`` in a method's, whose first parameter is ``self_name``.
        self.functions: Mapping[str, Function] = {}
        self.self_name: str | None = None
        self.methods: Mapping[str, Function] = {}

    def lookup(self, name: str) -> Taint:
        owner = self.owner(name)
        return owner.values.get(name, Taint.NONE) if owner else Taint.NONE

    def owner(self, name: str) -> Scope | None:
        scope: Scope | None = self
        while scope is not None and name not in scope.bound:
            scope = scope.parent
        return scope

    def callee(self, func: ast.expr) -> Function | None:
        """The module's own function ``func(...)`` calls, if this scope's names say which (a local
        of the same name shadows it)."""
        if isinstance(func, ast.Name):
            owner = self.owner(func.id)
            return owner.functions.get(func.id) if owner else None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            owner = self.owner(func.value.id)
            return owner.methods.get(func.attr) if owner and owner.self_name == func.value.id else None
        return None

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
        # What each of the module's own functions may return (helpers.py fills it in).
        self.returns: dict[Function, Taint] = {}

    def fill(self, scope: Scope, body: list[ast.stmt], parameters: dict[str, Taint]) -> None:
        """What each name of ``scope`` may hold: its parameters', then every binding's, to a fixed point."""
        for name, taint in parameters.items():
            scope.add(name, taint)
        self.solve([(scope, target, value) for target, value in self.bindings(body)])

    def solve(self, units: list[tuple[Scope, ast.expr | Function, ast.expr]]) -> None:
        """Give each unit's target, a name in its scope or a function whose return value it is
        (:attr:`returns`), its value's taint, to a fixed point.

        A unit is evaluated again only when a name it reads or a function it calls grows. Taints
        only grow, over finitely many kinds, so each unit runs a bounded number of times per thing
        it reads: near-linear, where re-running every unit until none changes is quadratic in a
        chain (``a0 = a1``, ``a1 = a2``, ...)."""
        readers: dict[tuple[Scope, str] | Function, list[int]] = defaultdict(list)
        for index, (scope, _, value) in enumerate(units):
            for read in self._reads(scope, value):
                readers[read].append(index)
        pending = list(range(len(units)))
        queued = [True] * len(units)
        while pending:
            index = pending.pop()
            queued[index] = False
            for grown in self._assign(*units[index]):
                for reader in readers.get(grown, ()):
                    if not queued[reader]:
                        queued[reader] = True
                        pending.append(reader)

    def _reads(self, scope: Scope, value: ast.expr) -> set[tuple[Scope, str] | Function]:
        """The names (with the scope binding each) and the module's functions ``value`` may depend on."""
        reads: set[tuple[Scope, str] | Function] = set()
        for node in ast.walk(value):
            if isinstance(node, ast.Name) and (owner := scope.owner(node.id)) is not None:
                reads.add((owner, node.id))
            elif isinstance(node, ast.Call) and (callee := scope.callee(node.func)) is not None:
                reads.add(callee)
        return reads

    def _assign(self, scope: Scope, target: ast.expr | Function, value: ast.expr) -> list[tuple[Scope, str] | Function]:
        """Give ``target`` ``value``'s taint; what grew."""
        if not isinstance(target, FUNCTIONS):
            return [(scope, name) for name in self._bind(scope, target, value)]
        before = self.returns.get(target, Taint.NONE)
        # Not the app's identity: summarised without its arguments, a function that builds a
        # client from the token it is passed looks like one that uses the app's own.
        self.returns[target] = before | (self.of(value, scope) & ~Taint.APP)
        return [target] if self.returns[target] != before else []

    def bindings(self, body: list[ast.stmt]) -> Iterator[tuple[ast.expr, ast.expr]]:
        """Each name binding of a scope's statements, as (target, value)."""
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

    def _bind(self, scope: Scope, target: ast.expr, value: ast.expr) -> set[str]:
        """Bind ``target`` to ``value``'s taint; the names whose taint grew."""
        if pairs(target, value):  # a, b = x, y: each name gets its own value
            grown: set[str] = set()
            for one_target, one_value in zip(target.elts, value.elts):
                grown |= self._bind(scope, one_target, one_value)
            return grown
        taint = self.of(value, scope)
        return {
            node.id
            for node in ast.walk(target)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and scope.add(node.id, taint)
        }

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
            if library.reads_invoker_slot(node, self.names):
                return Taint.USER
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
        # What is called carries over: a local bound to partial(WorkspaceClient, ...) builds what it holds.
        receiver = self.of(call.func.value if isinstance(call.func, ast.Attribute) else call.func, scope)
        if library.is_partial(name) and call.args and self._is_source_callable(call.args[0]):
            receiver |= Taint.USER  # partial(ModelServingUserCredentials): a factory of the user's credentials
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
        callee = scope.callee(call.func)
        if callee is not None:
            result |= self.returns.get(callee, Taint.NONE)
        return result

    def _is_source_callable(self, node: ast.expr) -> bool:
        name = self.names.qualify(node) or ""
        return library.is_user_credentials(name) or library.is_invoker_token_function(name)

    def argument(self, node: ast.expr, scope: Scope) -> Taint:
        """An argument's taint; a lambda passed to a call stands for what it builds
        (``req.optional("mcp", lambda: McpServer(...))`` returns the server)."""
        if isinstance(node, ast.Lambda):
            lambda_scope = Scope(scope, {arg.arg for arg in ast.walk(node.args) if isinstance(arg, ast.arg)})
            return self.of(node.body, lambda_scope)
        if isinstance(node, ast.Starred):
            return self.of(node.value, scope)
        return self.of(node, scope)
