"""One module's findings before suppression: walks its scopes as Python runs them and applies the
rules (rules.py) to each statement, knowing where it runs (module level, class body, __init__, a
cached function, an undecorated predict, any other function) and what its values hold (taint.py,
with the module's own functions summarised first: helpers.py)."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from obo_auth.check import library
from obo_auth.check.fallback import Fallbacks
from obo_auth.check.helpers import Function, Helpers, decorators, function_scope, methods, self_parameter
from obo_auth.check.names import Names
from obo_auth.check.syntax import FUNCTIONS, direct_nodes, own_expressions, statements
from obo_auth.check.taint import Scope, Taint, Taints, bound_names, pairs

# Where statements run, as far as the rules care.
MODULE, CLASS, INIT, LOAD_CONTEXT, CACHED = "module", "class", "init", "load_context", "cached"
UNDECORATED_PREDICT, FUNCTION = "undecorated predict", "function"

_NO_REQUEST = {
    MODULE: ("at module level", "it runs at import, when there is no request, and raises OutsideRequestError"),
    CLASS: ("in a class body", "it runs at import, when there is no request, and raises OutsideRequestError"),
    INIT: ("in __init__", "the agent is built when there is no request, so it raises OutsideRequestError"),
    LOAD_CONTEXT: ("in load_context", "mlflow calls it once, loading the model, with no request, so it raises OutsideRequestError"),
    CACHED: ("in a cached function", "the cached result keeps the first request's context, ended for every later caller"),
    UNDECORATED_PREDICT: ("in a predict not decorated with @obo_auth.on_behalf_of_user", "no request is opened, so it raises OutsideRequestError"),
}
# Contexts that run once for every request to come: whatever user-scoped value they build is shared.
_BUILT_ONCE = {
    MODULE: "user-client-module-level",
    CLASS: "user-client-class-attribute",
    INIT: "user-client-in-init",
    LOAD_CONTEXT: "user-client-in-init",
}
_KEPT = {"self": "user-client-on-self", "class": "user-client-class-attribute", "global": "user-client-global", "cached": "user-client-cached"}
# The ways of reading the serving runtime's process-wide token (library.identity_use).
_SLOT_READS = frozenset({library.USER_CREDENTIALS, library.INVOKER_TOKEN})
# Methods that put a value into the container they are called on (self.__setattr__("x", value) too).
_MUTATORS = frozenset({"append", "extend", "insert", "add", "update", "setdefault", "__setitem__", "__setattr__"})


@dataclass(frozen=True)
class Candidate:
    rule: str
    node: ast.AST
    fields: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class _Where:
    kind: str
    scope: Scope
    self_name: str | None = None  # the instance (or, in a classmethod, the class) methods store on
    self_is_class: bool = False
    declared_global: frozenset[str] = frozenset()
    methods: Mapping[str, Function] = field(default_factory=dict)  # in a class body: its methods
    wrapped: frozenset[str] = frozenset()  # in a class body: predict = obo_auth.on_behalf_of_user(predict)


class Analyzer:
    def __init__(self, tree: ast.Module):
        self.tree = tree
        self.names = Names(tree)
        self.taints = Taints(self.names)
        self.fallbacks = Fallbacks(self.names, self.taints)
        # A Streamlit script runs anew for every session: its module level is per user.
        self.streamlit = self.names.imports("streamlit")
        self.module_classes = {stmt.name for stmt in tree.body if isinstance(stmt, ast.ClassDef)}
        # Objects the module itself creates (app = FastAPI(), CACHE = {}): what is put in them stays.
        self.module_variables = {
            node.id
            for stmt in statements(tree.body)
            if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign))
            for node in ast.walk(stmt)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
        }
        self.module = Scope(None, bound_names(tree.body))
        self.helpers = Helpers(tree, self.names, self.taints, self.module)  # fills the module's scope
        self.imported: Mapping[str, str] = {}
        self.candidates: list[Candidate] = []

    def run(self, imported: Mapping[str, str] | None = None) -> list[Candidate]:
        """The candidates; ``imported``: ``module.function`` -> how a sibling file's function reaches
        for the user's identity (its ``helpers.exports``)."""
        self.imported = imported or {}
        self._body(self.tree.body, _Where(MODULE, self.module))
        return self.candidates

    def _add(self, rule: str, node: ast.AST, **fields: object) -> None:
        self.candidates.append(Candidate(rule, node, fields))

    def _body(self, body: list[ast.stmt], where: _Where) -> None:
        for node in self.fallbacks.find(body, where.scope):
            self._add("apps-identity-fallback", node)
        for stmt in statements(body):
            self._statement(stmt, where)
            if isinstance(stmt, FUNCTIONS):
                self._function(stmt, where)
            elif isinstance(stmt, ast.ClassDef):
                scope = Scope(where.scope, bound_names(stmt.body), is_class=True)
                self.taints.fill(scope, stmt.body, {})
                self._body(stmt.body, _Where(CLASS, scope, methods=methods(stmt), wrapped=self._wrapped(stmt.body)))

    def _wrapped(self, body: list[ast.stmt]) -> frozenset[str]:
        """The names a class body decorates by assignment: both in ``predict_stream =
        obo_auth.on_behalf_of_user(_predict_stream)`` (also with arguments: ``on_behalf_of_user(strict=True)(f)``)."""
        wrapped: set[str] = set()
        for stmt in statements(body):
            if not (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call) and len(stmt.value.args) == 1):
                continue
            decorator = stmt.value.func.func if isinstance(stmt.value.func, ast.Call) else stmt.value.func
            if library.is_obo_decorator(self.names.qualify(decorator) or "") and isinstance(stmt.value.args[0], ast.Name):
                wrapped.add(stmt.value.args[0].id)
                wrapped.update(target.id for target in stmt.targets if isinstance(target, ast.Name))
        return frozenset(wrapped)

    def _function(self, function: Function, outer: _Where) -> None:
        spelled = decorators(function, self.names)
        is_method = outer.kind == CLASS
        decorated = any(library.is_obo_decorator(d) for d in spelled) or function.name in outer.wrapped
        self_name, self_is_class = outer.self_name, outer.self_is_class  # a closure stores on its method's self
        if is_method:
            self_name, self_is_class = self_parameter(function, self.names)
        scope = function_scope(function, outer.scope, self_name if is_method else None, outer.methods)
        header = {name: Taint.HEADER | Taint.USER for name in library.forwarded_token_parameters(function.args, self.names)}
        self.taints.fill(scope, function.body, header)
        if is_method and function.name == "__init__":
            kind = INIT
        elif is_method and function.name == "load_context":  # mlflow's PythonModel hook, run once at load
            kind = LOAD_CONTEXT
        elif any(library.is_cache_decorator(d) for d in spelled):
            kind = CACHED
        elif is_method and function.name in library.PREDICT_METHODS and not decorated:
            kind = UNDECORATED_PREDICT
            self._undecorated_predict(function, scope)
        else:
            kind = FUNCTION
            if decorated:
                self._slot_reads(function)
        declared = frozenset(
            name for stmt in statements(function.body) if isinstance(stmt, (ast.Global, ast.Nonlocal)) for name in stmt.names
        )
        self._body(function.body, _Where(kind, scope, self_name, self_is_class, declared))

    def _statement(self, stmt: ast.stmt, where: _Where) -> None:
        if where.kind in _NO_REQUEST:
            place, why = _NO_REQUEST[where.kind]
            for node in self._direct(stmt):
                if isinstance(node, ast.Call) and library.is_current_request(self.names.qualify(node.func) or ""):
                    self._add("current-request-no-request", node, where=place, why=why)
        if where.kind in _BUILT_ONCE and not (where.kind == MODULE and self.streamlit):
            value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and stmt.value else None
            taint = self.taints.of(value, where.scope) if value else Taint.NONE
            if Taint.USER in taint or any(self.taints.is_source(node) for node in self._direct(stmt)):
                self._add(_BUILT_ONCE[where.kind], stmt)
            elif Taint.KEPT_UNSAFE in taint:
                self._add("kept-unsafe-tool", stmt)
        for node, kind, taint in self._stores(stmt, where):
            if Taint.USER in taint:
                self._add(_KEPT[kind], node)
            elif Taint.KEPT_UNSAFE in taint:
                self._add("kept-unsafe-tool", node)

    def _direct(self, stmt: ast.stmt) -> Iterator[ast.AST]:
        for expr in own_expressions(stmt):
            yield from direct_nodes(expr)

    def _stores(self, stmt: ast.stmt, where: _Where) -> Iterator[tuple[ast.AST, str, Taint]]:
        """Where ``stmt`` keeps a value beyond the request (self, the class, a global, a cache) and what it keeps."""
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                yield from self._assigned(stmt, target, stmt.value, where)
        elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) and stmt.value is not None:
            yield from self._assigned(stmt, stmt.target, stmt.value, where)
        elif isinstance(stmt, ast.Return) and where.kind == CACHED and stmt.value is not None:
            yield stmt, "cached", self.taints.of(stmt.value, where.scope)
        for node in self._direct(stmt):
            if not isinstance(node, ast.Call) or not isinstance(node.func, (ast.Name, ast.Attribute)):
                continue
            setter = node.func.id == "setattr" if isinstance(node.func, ast.Name) else node.func.attr == "__setattr__"
            if setter and len(node.args) == 3:  # setattr(self, "x", v), object.__setattr__(self, "x", v)
                kind = self._store_kind(node.args[0], where, into=True)
                values = node.args[2:]
            elif isinstance(node.func, ast.Attribute) and node.func.attr in _MUTATORS:
                kind = self._store_kind(node.func.value, where, into=True)
                values = [*node.args, *(keyword.value for keyword in node.keywords)]
            else:
                continue
            if kind:
                yield node, kind, self._union(values, where.scope)

    def _assigned(self, stmt: ast.stmt, target: ast.expr, value: ast.expr, where: _Where) -> Iterator[tuple[ast.AST, str, Taint]]:
        if pairs(target, value):
            for one_target, one_value in zip(target.elts, value.elts):
                yield from self._assigned(stmt, one_target, one_value, where)
            return
        for element in target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]:
            one = element.value if isinstance(element, ast.Starred) else element  # a, *rest = ...
            kind = self._store_kind(one, where, into=not isinstance(one, ast.Name))
            if kind:
                yield stmt, kind, self.taints.of(value, where.scope)

    def _store_kind(self, target: ast.expr, where: _Where, *, into: bool) -> str | None:
        """Where a value put *into* ``target`` (an attribute, an item: ``into``) or bound to the name
        ``target`` stays: ``self`` for self.x / self.cache[k], ``class`` for cls.x or a module class's
        attribute, ``global`` for a global or nonlocal name or an object the module created; None
        for anything that ends with the call."""
        root, of_class = _holder(target, where)
        if root is None or where.kind in (MODULE, CLASS):
            return None  # at module level and in class bodies, everything built is shared already (_BUILT_ONCE)
        if not into:
            return "global" if root in where.declared_global and not self.streamlit else None
        if root == where.self_name:
            return "class" if where.self_is_class or of_class else "self"
        if where.scope.owner(root) is not self.module and root not in where.declared_global:
            return None  # a local (request.state.x, a list built in this call)
        if root in self.module_classes:
            return "class"
        if self.streamlit or root not in self.module_variables:
            return None  # imported modules (st.session_state, flask.g) and functions hold nothing of ours
        return "global"

    def _union(self, values: list[ast.expr], scope: Scope) -> Taint:
        taint = Taint.NONE
        for value in values:
            taint |= self.taints.argument(value, scope)
        return taint

    def _undecorated_predict(self, function: Function, scope: Scope) -> None:
        uses = sorted(
            ((node.lineno, node.col_offset), use)
            for stmt in function.body
            for node in ast.walk(stmt)
            if (use := self._identity_use(node, scope))
        )
        if uses:
            (line, _), use = uses[0]
            self._add("predict-not-decorated", function, name=function.name, use=use, use_line=line)

    def _slot_reads(self, function: Function) -> None:
        """Inside a decorated call, the runtime's shared slot bypasses the identity obo_auth pinned."""
        for stmt in function.body:
            for node in ast.walk(stmt):
                use = library.identity_use(node, self.names)
                if use in _SLOT_READS:
                    self._add("slot-read-in-request", node, name=function.name, use=use)

    def _identity_use(self, node: ast.AST, scope: Scope) -> str | None:
        """What ``node`` is, if it reaches for the end user's identity, itself or through a call to the agent's own code."""
        if isinstance(node, ast.Call) and (use := self.helpers.use_of_call(node, scope, self.imported)):
            return use
        return library.identity_use(node, self.names)


def _holder(target: ast.expr, where: _Where) -> tuple[str | None, bool]:
    """The name a value put into ``target`` is kept on, and whether on that object's class: ``self``
    for self.a[k], vars(self)[k] or super(); (``self``, True) for type(self).x and self.__class__.x."""
    node, of_class = target, False
    while True:
        if isinstance(node, ast.Attribute):
            of_class |= node.attr == "__class__"
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super" and not node.args:
            return where.self_name, False
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("vars", "type") and len(node.args) == 1:
            of_class |= node.func.id == "type"
            node = node.args[0]
        else:
            return (node.id if isinstance(node, ast.Name) else None), of_class
