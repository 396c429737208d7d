"""Reading a logged model for review: its MLmodel, and the agent's own code files in it.

A models-from-code agent's file sits at the model's top level under its own name (the
MLmodel's ``model_code_path`` is where it was logged from), and its ``code_paths`` under
``code/``; the copy of obo_auth that log_model may ship there is not the author's code and is
not checked. Nothing here imports or runs the model's code.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from obo_auth import mlmodel

_SHIPPED_PACKAGE = "obo_auth"  # policy._ship_obo_auth's copy of this package


@contextmanager
def model_directory(model_uri: str, model: Any) -> Iterator[Path]:
    """The model's code files (code_parts): in its own directory for a path, else downloaded
    alone to a temporary one (a model's other artifacts can be large, and are not read)."""
    local = mlmodel.local_path(model_uri)
    if local is not None:
        yield local
        return
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    with mlmodel.quiet_downloads(), tempfile.TemporaryDirectory(prefix="obo-auth-review-") as scratch:
        for part in code_parts(model):
            try:
                mlflow.artifacts.download_artifacts(artifact_uri=mlmodel.stored_file_uri(model_uri, part), dst_path=scratch)
            except MlflowException as missing:
                if missing.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
        yield Path(scratch)


def code_parts(model: Any) -> list[str]:
    """Where in the model its code is, relative to it: the agent's file (for one logged from
    code) and the flavour's code directory. A part that would lead out of the model is none."""
    flavour = python_flavour(model)
    parts = [Path(flavour["model_code_path"]).name] if logged_from_code(model) else []
    code_dir = flavour.get("code")
    if isinstance(code_dir, str) and code_dir:
        parts.append(code_dir)
    return [part for part in parts if part and not PurePosixPath(part).is_absolute() and ".." not in PurePosixPath(part).parts]


def python_flavour(model: Any) -> dict[str, Any]:
    """The MLmodel's python_function flavour, or {} when it has none (or a malformed one)."""
    flavours = getattr(model, "flavors", None)
    flavour = flavours.get("python_function") if isinstance(flavours, dict) else None
    return flavour if isinstance(flavour, dict) else {}


def logged_from_code(model: Any) -> bool:
    """True for a models-from-code agent; False for a pickled one (its class is in no code file)."""
    logged_from = python_flavour(model).get("model_code_path")
    return isinstance(logged_from, str) and bool(logged_from)


def code_files(model: Any, model_dir: Path) -> list[Path] | None:
    """The author's Python files in the model, or None when it holds none.

    Only regular files inside the model's directory are read: a link out of it, a FIFO or a
    device named ``*.py`` is not the model's code (and a FIFO would block the review).
    """
    files = []
    for part in code_parts(model):
        path = model_dir / part
        if path.is_dir() and _inside(path, model_dir):  # a directory linked from elsewhere is not walked
            files += [
                found
                for found in sorted(path.rglob("*.py"))
                if found.relative_to(path).parts[0] != _SHIPPED_PACKAGE and "__pycache__" not in found.parts
            ]
        else:
            files.append(path)
    files = [path for path in dict.fromkeys(files) if not path.is_symlink() and path.is_file() and _inside(path, model_dir)]
    return files or None


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


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
