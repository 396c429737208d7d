"""The architecture's rule, checked on the source: the emulator (the local workspace and local
serving) and the agent side never import each other; what both need lives in neutral modules.

Imports under ``if TYPE_CHECKING:`` are for type checkers only and are not counted.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from obo_auth.errors import ToolUnavailableError
from obo_auth.local.registry import services
from obo_auth.serving.app import _failure

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "obo_auth"
AGENT_SIDE = {
    "context", "credentials", "decorator", "degrade", "errors", "invoker", "keep_unsafe",
    "log_time", "policy", "requirements", "resources", "scope", "token",
}  # fmt: skip
NEUTRAL = {"admin_api", "home", "http_edge", "mlmodel", "model_store", "private_files", "redact", "scopes", "terminal"}
EMULATOR = {"local", "serving"}


def _imported(path: Path) -> set[str]:
    """The obo_auth submodules ``path`` imports at run time (``obo_auth.X`` -> ``X``)."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(node)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
        for node in ast.walk(branch)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "obo_auth":
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("obo_auth.")}
    return found


def _modules(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (PACKAGE / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(*EMULATOR), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_emulator_imports_nothing_of_the_agent_side(path):
    assert not _imported(path) & AGENT_SIDE


@pytest.mark.parametrize("path", _modules("local"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_local_workspace_imports_nothing_of_local_serving(path):
    assert "serving" not in _imported(path) or path.relative_to(PACKAGE).parts[:2] == ("local", "serving")


@pytest.mark.parametrize("path", _modules("serving"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_local_serving_reaches_the_workspace_only_over_http(path):
    assert "local" not in _imported(path)


@pytest.mark.parametrize("name", sorted(AGENT_SIDE | NEUTRAL))
def test_the_agent_side_and_neutral_modules_import_no_emulator(name):
    imported = _imported(PACKAGE / f"{name}.py")
    assert not imported & EMULATOR
    if name in NEUTRAL:
        assert not imported & AGENT_SIDE, "a neutral module that needs the agent side is not neutral"


def test_serving_answers_by_the_databricks_error_code_an_agents_exception_carries():
    denied = _failure(ToolUnavailableError("handbook", "permission_denied", "no SELECT"), lambda: [])
    broken = _failure(RuntimeError("boom"), lambda: [])
    assert (denied.status, denied.error_code) == (403, "PERMISSION_DENIED")
    assert (broken.status, broken.error_code) == (500, "INTERNAL_ERROR")


# -- services are plug-ins: each imports only the services it requires --------------------------
def _local_packages_imported(path: Path) -> set[str]:
    """The packages under obo_auth.local that ``path`` imports (``obo_auth.local.X.y`` -> ``X``)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else [a.name for a in getattr(node, "names", [])] if isinstance(node, ast.Import) else []
        for name in names:
            parts = name.split(".")
            if parts[:2] == ["obo_auth", "local"] and len(parts) > 2 and (PACKAGE / "local" / parts[2]).is_dir():
                found.add(parts[2])
    return found


def _required_closure(name: str) -> set[str]:
    by_name = {s.name: s for s in services()}
    closure, todo = set(), [name]
    while todo:
        for required in by_name[todo.pop()].requires:
            if required not in closure:
                closure.add(required)
                todo.append(required)
    return closure


@pytest.mark.parametrize("service", [s.name for s in services()])
def test_a_service_imports_only_the_services_it_requires(service):
    allowed = {service} | _required_closure(service)
    for path in (PACKAGE / "local" / service).rglob("*.py"):
        assert _local_packages_imported(path) <= allowed, f"{path.relative_to(PACKAGE)} imports a service it does not require"


@pytest.mark.parametrize("path", sorted((PACKAGE / "local").glob("*.py")), ids=lambda p: p.name)
def test_the_workspace_kernel_knows_no_service_but_identity(path):
    assert _local_packages_imported(path) <= {"identity"}


def test_every_service_package_registers_itself():
    packages = {p.name for p in (PACKAGE / "local").iterdir() if (p / "__init__.py").exists()}
    assert {s.name for s in services()} == packages


def test_the_local_workspace_and_the_cli_import_without_databricks_sdk():
    probe = "import sys, obo_auth.local, obo_auth.cli.main; print(sorted(m for m in sys.modules if m.startswith(('databricks', 'mlflow'))))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
