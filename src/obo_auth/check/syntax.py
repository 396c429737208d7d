"""Walking a module the way Python runs it: what a scope runs where it stands, and what it
defers (function and class bodies run elsewhere, lambda bodies later)."""

from __future__ import annotations

import ast
from collections.abc import Iterator

FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_DEFINITIONS = (*FUNCTIONS, ast.ClassDef)


def blocks(body: list[ast.stmt]) -> Iterator[list[ast.stmt]]:
    """``body`` and every block nested in it (if, for, while, with, try, match), not the bodies of
    the functions and classes it defines."""
    stack = [body]
    while stack:
        block = stack.pop()
        yield block
        for stmt in block:
            if not isinstance(stmt, _DEFINITIONS):
                stack.extend(_sub_blocks(stmt))


def statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement that runs in the scope whose body is ``body`` (see :func:`blocks`)."""
    for block in blocks(body):
        yield from block


def _sub_blocks(stmt: ast.stmt) -> Iterator[list[ast.stmt]]:
    for field in ("body", "orelse", "finalbody"):
        block = getattr(stmt, field, None)
        if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
            yield block
    for part in (*getattr(stmt, "handlers", ()), *getattr(stmt, "cases", ())):
        yield part.body


def own_expressions(stmt: ast.stmt) -> Iterator[ast.expr]:
    """The expressions ``stmt`` evaluates where it stands: a def's decorators and defaults and a
    class's decorators and bases, but neither body; a compound statement's header, not its blocks."""
    if isinstance(stmt, FUNCTIONS):
        yield from stmt.decorator_list
        yield from stmt.args.defaults
        yield from (default for default in stmt.args.kw_defaults if default is not None)
        return
    if isinstance(stmt, ast.ClassDef):
        yield from stmt.decorator_list
        yield from stmt.bases
        yield from (keyword.value for keyword in stmt.keywords)
        return
    for child in ast.iter_child_nodes(stmt):
        if isinstance(child, ast.expr):
            yield child
        elif isinstance(child, ast.withitem):
            yield child.context_expr
        elif isinstance(child, ast.ExceptHandler) and child.type is not None:
            yield child.type
        elif isinstance(child, ast.match_case) and child.guard is not None:
            yield child.guard


def direct_nodes(expr: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``expr`` that runs when it runs: a lambda's defaults, not its body."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.Lambda):
            stack.extend(node.args.defaults)
            stack.extend(default for default in node.args.kw_defaults if default is not None)
        else:
            stack.extend(ast.iter_child_nodes(node))


def parameters(args: ast.arguments) -> list[tuple[ast.arg, ast.expr | None]]:
    """Each parameter with its default (None where it has none), in order."""
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults))
    if args.vararg:
        pairs.append((args.vararg, None))
    pairs += list(zip(args.kwonlyargs, args.kw_defaults))
    if args.kwarg:
        pairs.append((args.kwarg, None))
    return pairs


def root_name(node: ast.expr) -> str | None:
    """``self`` for ``self.a.b[k]``: the name an attribute or item chain starts from."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def is_store(node: ast.expr) -> bool:
    return isinstance(getattr(node, "ctx", None), ast.Store)
