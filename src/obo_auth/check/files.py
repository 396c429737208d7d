"""Which files ``check_paths`` reads, and reading them as Python source."""

from __future__ import annotations

import io
import os
import tokenize
from collections.abc import Iterable

from obo_auth.check.errors import CheckError

# Other people's code and generated files, never an agent's own source.
_SKIPPED_DIRECTORIES = frozenset({"__pycache__", ".venv", "venv", "site-packages", "node_modules"})


def python_files(paths: Iterable[str | os.PathLike]) -> list[str]:
    """The files ``paths`` name: each file as given, and every ``*.py`` below each directory
    (skipping hidden directories and files, __pycache__, virtual environments, site-packages,
    node_modules), each once, in the order given, a directory's sorted."""
    found: dict[str, str] = {}  # real path -> the path as the user wrote it
    for given in paths:
        path = os.fspath(given)
        if os.path.isdir(path):
            candidates = _walk(path)
        elif os.path.exists(path):
            candidates = [path]
        else:
            raise CheckError(f"{path}: no such file or directory; give the agent's .py files or the directories holding them")
        for candidate in candidates:
            found.setdefault(os.path.realpath(candidate), candidate)
    return list(found.values())


def _walk(directory: str) -> list[str]:
    files = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRECTORIES)
        files += [os.path.join(root, name) for name in sorted(names) if name.endswith(".py") and not name.startswith(".")]
    return files


def read_source(path: str) -> str:
    """The text of ``path``, decoded as Python does (UTF-8, or the encoding its coding comment declares)."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise CheckError(f"{path}: cannot be read ({error.strerror or error}); check the path and its permissions") from None
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as error:
        raise CheckError(f"{path}: not UTF-8 text ({error.msg}); save it as UTF-8 or check that this is the agent's Python file") from None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise CheckError(
            f"{path}: not {encoding} text (byte 0x{data[error.start]:02x} at offset {error.start}); "
            "save it as UTF-8 or check that this is the agent's Python file"
        ) from None
