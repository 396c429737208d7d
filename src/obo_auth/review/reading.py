"""Reading a logged model for review: its MLmodel, and the agent's own code files in it.

A models-from-code agent's file sits at the model's top level under its own name (the
MLmodel's ``model_code_path`` is where it was logged from), and its ``code_paths`` under
``code/``; the copy of obo_auth that log_model may ship there is not the author's code and is
not checked. Nothing here imports or runs the model's code.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from obo_auth import mlmodel

_SHIPPED_PACKAGE = "obo_auth"  # policy._ship_obo_auth's copy of this package


@contextmanager
def model_directory(model_uri: str) -> Iterator[Path]:
    """The model's files: its own directory for a path, else a temporary download of its artifacts."""
    local = mlmodel.local_path(model_uri)
    if local is not None:
        yield local
        return
    import mlflow.artifacts
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    # The report owns stdout and the error line stderr: no download progress bar in either.
    was = os.environ.get(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name)
    os.environ[MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name] = "false"
    try:
        with tempfile.TemporaryDirectory(prefix="obo-auth-review-") as scratch:
            yield Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=scratch))
    finally:
        if was is None:
            os.environ.pop(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name, None)
        else:
            os.environ[MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name] = was


def code_files(model: Any, model_dir: Path) -> list[Path] | None:
    """The author's Python files in the model, or None when it holds no code (a pickled agent)."""
    flavour = (getattr(model, "flavors", None) or {}).get("python_function") or {}
    logged_from = flavour.get("model_code_path")
    files = []
    if isinstance(logged_from, str) and logged_from:
        agent_file = model_dir / Path(logged_from).name
        if agent_file.is_file():
            files.append(agent_file)
    code = model_dir / "code"
    if code.is_dir():
        files += [
            path
            for path in sorted(code.rglob("*.py"))
            if path.relative_to(code).parts[0] != _SHIPPED_PACKAGE and "__pycache__" not in path.parts
        ]
    return files or None


def check_code(files: list[Path] | None, model_dir: Path) -> tuple[list[str] | None, list[dict[str, Any]]]:
    """The files checked (relative to the model) and obo-auth check's findings on them."""
    if files is None:
        return None, []
    from obo_auth.check import check_paths

    findings = []
    for finding in check_paths(files):
        entry = finding.to_dict()
        entry["path"] = _relative(Path(entry["path"]), model_dir)
        findings.append(entry)
    return [_relative(path, model_dir) for path in files], findings


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
