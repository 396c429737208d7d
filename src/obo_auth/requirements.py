"""The pip requirements of an agent, read from its code's imports instead of by running it.

mlflow infers requirements by loading the model in a subprocess and calling ``predict`` on
its input example (tens of seconds, and with no end user there an obo_auth agent cannot
run). obo_auth reads what the agent's files import instead: every absolute ``import`` in
the models-from-code file (or the agent class's own file) and in ``code_paths``, mapped to
the installed distribution that provides it and pinned to its installed version. The
standard library, the agent's own local modules and obo_auth itself (policy.py ships it)
are left out; mlflow and databricks-sdk, which obo_auth needs when served, are always in.

A distribution installed from somewhere other than a package index (an editable checkout, a
local wheel, a VCS URL: PEP 610's ``direct_url.json``) is left out too, with one line saying
so: pinned by name, the serving image would install whatever the public index holds under
that name. Ship its code with ``code_paths``, or name it in ``pip_requirements``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

logger = logging.getLogger("obo_auth")

_ALWAYS = ("mlflow", "databricks-sdk")
_OURS = "obo-auth"


def agent_requirements(python_model: Any, code_paths: Iterable[str]) -> list[str]:
    """``name==version`` for each distribution the agent's code imports, sorted, plus obo_auth's needs."""
    sources = [*_agent_files(python_model), *_python_files(code_paths)]
    local = {path.stem for path in sources} | {path.parent.name for path in sources if (path.parent / "__init__.py").exists()}
    skip = local | set(sys.stdlib_module_names)
    modules = {m for path in sources for m in _imported(path) if m.split(".")[0] not in skip}
    providers = importlib.metadata.packages_distributions()
    names = {*_ALWAYS, *(dist for module in modules for dist in _providers_of(module, providers))}
    names.discard(_OURS)
    local_builds = sorted(name for name in names if importlib.metadata.distribution(name).read_text("direct_url.json") is not None)
    if local_builds:
        logger.warning(
            "obo_auth: not pinning %s: installed from a local path or VCS, not a package index, so the serving "
            "image would install another package of that name. Ship it with code_paths= or name it in pip_requirements=.",
            ", ".join(local_builds),
        )
    return sorted(f"{name}=={importlib.metadata.version(name)}" for name in names.difference(local_builds))


def _agent_files(python_model: Any) -> list[Path]:
    if isinstance(python_model, str):
        return [Path(python_model)]
    try:
        return [Path(inspect.getsourcefile(type(python_model)))]
    except (TypeError, OSError):
        return []  # a class defined in a notebook cell or a REPL has no file to read


def _python_files(code_paths: Iterable[str]) -> list[Path]:
    files = []
    for entry in map(Path, code_paths):
        if entry.is_dir():
            files.extend(sorted(entry.rglob("*.py")))
        elif entry.suffix == ".py":
            files.append(entry)
    return files


def _providers_of(module: str, providers: dict[str, list[str]]) -> set[str]:
    """The distributions that provide ``module`` (its first two components, e.g. ``databricks.sdk``).

    A top-level name several distributions share is a namespace (``databricks``) or a split
    package (``mlflow`` in mlflow, mlflow-skinny, mlflow-tracing): the one named after it
    wins, else the ones whose files hold the subpackage (none: it is not installed here).
    """
    top, _, rest = module.partition(".")
    candidates = set(providers.get(top, ()))  # not installed here: nothing to pin
    if len(candidates) <= 1:
        return candidates
    named = {d for d in candidates if canonicalize_name(d) == canonicalize_name(top)}
    if named:
        return named
    sub = rest.split(".")[0]
    return {d for d in candidates if sub and _holds(d, f"{top}/{sub}")}


def _holds(distribution: str, prefix: str) -> bool:
    files = importlib.metadata.distribution(distribution).files or ()
    return any(str(f).startswith(f"{prefix}/") or str(f) == f"{prefix}.py" for f in files)


def _imported(path: Path) -> set[str]:
    """The absolute imports in ``path`` (up to two components), wherever they sit (lazy ones too)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return set()  # mlflow reports an unreadable model file itself, with its own message
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(_two(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(_two(node.module))
    return names


def _two(module: str) -> str:
    return ".".join(module.split(".")[:2])
