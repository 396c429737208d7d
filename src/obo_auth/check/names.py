"""What a name in a module stands for, through its imports: ``obo.current_request`` after
``import obo_auth as obo`` is ``obo_auth.current_request``."""

from __future__ import annotations

import ast

from obo_auth.check.syntax import root_name


class Names:
    def __init__(self, tree: ast.Module):
        self._aliases: dict[str, str] = {}
        self._strings: dict[str, str] = {}
        # Imports anywhere: agents often import inside predict, and a name means one thing per file.
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self._aliases[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".", 1)[0]
                        self._aliases[top] = top
            elif isinstance(node, ast.ImportFrom):
                # A relative import keeps its dots: it names the agent's own code, never a library.
                prefix = "." * node.level + (f"{node.module}." if node.module else "")
                for alias in node.names:
                    self._aliases[alias.asname or alias.name] = prefix + alias.name
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                self._module_assignment(stmt.targets[0].id, stmt.value)

    def _module_assignment(self, name: str, value: ast.expr) -> None:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            self._strings[name] = value.value  # TOKEN_HEADER = "x-forwarded-access-token"
            return
        # obo = obo_auth.on_behalf_of_user: an alias of an imported name.
        qualified = self.qualify(value)
        if qualified and root_name(value) in self._aliases:
            self._aliases[name] = qualified

    def qualify(self, node: ast.expr) -> str | None:
        """The dotted name ``node`` stands for (``databricks.sdk.WorkspaceClient``), resolving the
        module's imports; a name not imported stays as written; None for anything but names and attributes."""
        if isinstance(node, ast.Name):
            return self._aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualify(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def string(self, node: ast.expr | None) -> str | None:
        """A string constant, or a module-level name bound to one."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self._strings.get(node.id)
        return None

    def is_imported(self, name: str) -> bool:
        """Whether ``name`` stands for something the module imports."""
        return name in self._aliases

    def imports(self, module: str) -> bool:
        return any(target == module or target.startswith(module + ".") for target in self._aliases.values())
