"""The module's own functions, summarised once before the analysis: what each may return (so
``self.client = _make_client()`` is as user-scoped as what ``_make_client`` builds) and whether it
reaches for the end user's identity, itself or through the module's other functions (so an
undecorated predict that calls it reaches for it too).

Covered: functions defined at module level, called by name, and the methods of the module's
classes, called on ``self`` / ``cls``. Functions imported from another file count only for the
identity check, and only as ``check_paths``, checking both files, passes in the other file's
summary (:attr:`Helpers.exports`).
"""

from __future__ import annotations

import ast
from collections import defaultdict, deque
from collections.abc import Mapping

from obo_auth.check import library
from obo_auth.check.names import Names
from obo_auth.check.syntax import FUNCTIONS, parameters, root_name, statements
from obo_auth.check.taint import Function, Scope, Taint, Taints, bound_names


def decorators(function: Function, names: Names) -> list[str]:
    return [names.qualify(d.func if isinstance(d, ast.Call) else d) or "" for d in function.decorator_list]


def self_parameter(function: Function, names: Names) -> tuple[str | None, bool]:
    """A method's first parameter, the instance (or, in a classmethod, the class: True) it is
    called on; None for a staticmethod."""
    spelled = decorators(function, names)
    positional = function.args.posonlyargs + function.args.args
    if "staticmethod" in spelled or not positional:
        return None, False
    return positional[0].arg, "classmethod" in spelled


def methods(cls: ast.ClassDef) -> dict[str, Function]:
    return {stmt.name: stmt for stmt in statements(cls.body) if isinstance(stmt, FUNCTIONS)}


def function_scope(function: Function, outer: Scope, self_name: str | None, siblings: Mapping[str, Function]) -> Scope:
    """The scope of ``function``'s body, unfilled; ``siblings``: the methods ``self_name`` calls."""
    scope = Scope(outer.for_functions(), bound_names(function.body) | {arg.arg for arg, _ in parameters(function.args)})
    scope.self_name, scope.methods = self_name, siblings
    return scope


class Helpers:
    def __init__(self, tree: ast.Module, names: Names, taints: Taints, module: Scope):
        self.names = names
        self.taints = taints
        self.module = module
        module.functions = {stmt.name: stmt for stmt in statements(tree.body) if isinstance(stmt, FUNCTIONS)}
        self.scopes = {function: function_scope(function, module, None, {}) for function in module.functions.values()}
        for cls in (stmt for stmt in statements(tree.body) if isinstance(stmt, ast.ClassDef)):
            own = methods(cls)
            self.scopes.update((method, function_scope(method, module, self_parameter(method, names)[0], own)) for method in own.values())
        # Who calls whom, resolved once, for the identity a function reaches through its callees.
        self.callers: dict[Function, set[Function]] = defaultdict(set)
        for caller, scope in self.scopes.items():
            for node in (node for stmt in caller.body for node in ast.walk(stmt)):
                if isinstance(node, ast.Call) and (callee := scope.callee(node.func)) is not None:
                    self.callers[callee].add(caller)
        self._returns(tree.body)
        self.uses = self._uses()
        # What a sibling file's predict sees when it imports this module's functions.
        self.exports = {name: self.uses[function] for name, function in module.functions.items() if function in self.uses}

    def _returns(self, body: list[ast.stmt]) -> None:
        """What every function may return, solved with the module's names in one worklist: the
        module's names may hold what a function returns (``CLIENT = _make_client()``), and functions
        read them (``return CLIENT``)."""
        units = [(self.module, target, value) for target, value in self.taints.bindings(body)]
        for function, scope in self.scopes.items():
            for name in library.forwarded_token_parameters(function.args, self.names):
                scope.add(name, Taint.HEADER | Taint.USER)
            units += [(scope, target, value) for target, value in self.taints.bindings(function.body)]
            units += [
                (scope, function, stmt.value)
                for stmt in statements(function.body)
                if isinstance(stmt, ast.Return) and stmt.value is not None
            ]
        self.taints.solve(units)

    def _uses(self) -> dict[Function, str]:
        """Each function that reaches for the end user's identity: the first way it does, in its
        own body or in a function it calls (breadth first over the callers: each is visited once)."""
        uses: dict[Function, str] = {}
        for function in self.scopes:
            # Not the header: an App's helper reads the header of the request it runs in.
            found = [
                ((node.lineno, node.col_offset), use)
                for stmt in function.body
                for node in ast.walk(stmt)
                if (use := library.identity_use(node, self.names)) and use != library.FORWARDED_TOKEN
            ]
            if found:
                uses[function] = min(found)[1]
        reached = deque(uses)
        while reached:
            callee = reached.popleft()
            for caller in self.callers[callee]:
                if caller not in uses:
                    uses[caller] = uses[callee]
                    reached.append(caller)
        return uses

    def use_of_call(self, call: ast.Call, scope: Scope, imported: Mapping[str, str]) -> str | None:
        """How ``call`` reaches for the user's identity through the agent's own code, if it does: a
        function of this module, or of a sibling file (``imported``: ``module.function`` -> its use)."""
        callee = scope.callee(call.func)
        if callee is not None:
            use = self.uses.get(callee)
            return f"{use} through {callee.name}()" if use else None
        if not self.names.is_imported(root_name(call.func) or ""):
            return None  # llm.answer() on a local is no sibling module's answer
        qualified = (self.names.qualify(call.func) or "").lstrip(".").split(".")
        if len(qualified) >= 2 and (use := imported.get(".".join(qualified[-2:]))):
            return f"{use} through {qualified[-1]}()"
        return None
