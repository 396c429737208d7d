"""``obo-auth check``: a static check for the mistakes that leak one user's data to another in an
on-behalf-of-user agent (Model Serving ``ChatAgent`` / ``ResponsesAgent``, Databricks Apps).

It reads the code with :mod:`ast` and never imports or runs it. Each finding names the file,
line and column, a rule id, what is wrong and the fix; the rules are in :mod:`obo_auth.check.rules`
(and :data:`RULES`). A trailing comment that starts ``# obo-auth: ignore[rule-id, ...]`` (or is a
bare ``# obo-auth: ignore``) suppresses findings on its line (suppress.py says exactly which).

Only the standard library and obo_auth's light modules are imported here: neither databricks-sdk
nor mlflow.
"""

from __future__ import annotations

import ast
import os
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from obo_auth.check.analyzer import Analyzer, Candidate
from obo_auth.check.errors import CheckError
from obo_auth.check.files import python_files, read_source
from obo_auth.check.rules import BY_ID, PRECEDENCE, RULES
from obo_auth.check.suppress import is_suppressed, suppressions

__all__ = ["RULES", "CheckError", "Finding", "check_paths", "check_source", "python_files"]


@dataclass(frozen=True)
class Finding:
    rule: str
    path: str
    line: int
    column: int  # 1-based, in characters
    message: str  # what is wrong
    fix: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def check_source(source: str, filename: str = "<string>") -> list[Finding]:
    """The findings in one module's source, sorted by line; :class:`CheckError` if it is not valid Python."""
    return _Module(source, filename).findings({})


def check_paths(paths: Iterable[str | os.PathLike]) -> list[Finding]:
    """The findings in the files and directories ``paths`` (see :func:`python_files`), sorted by path and line.

    A predict that calls a function of another file checked with it (``from handbook_logic import
    answer``; of the file beside it, if several have that name) reaches for the user's identity if
    that function does: an MLflow model keeps such files beside its code or in its code/ folder."""
    modules = [_Module(read_source(path), path) for path in python_files(paths)]
    exports: dict[str, dict[str, str]] = defaultdict(dict)  # directory -> "module.function" -> its use
    for module in modules:
        directory, name = os.path.split(os.path.realpath(module.filename))
        stem = name.removesuffix(".py")
        exports[directory].update((f"{stem}.{function}", use) for function, use in module.analyzer.helpers.exports.items())
    anywhere = {spelled: use for functions in exports.values() for spelled, use in functions.items()}
    findings = [
        finding
        for module in modules
        for finding in module.findings({**anywhere, **exports[os.path.dirname(os.path.realpath(module.filename))]})
    ]
    return sorted(findings, key=lambda f: (f.path, f.line, f.column, f.rule))


class _Module:
    """One module, parsed and its own functions summarised (``analyzer.helpers.exports``), to check."""

    def __init__(self, source: str, filename: str):
        self.source = source.replace("\r\n", "\n").replace("\r", "\n")  # the line numbers ast and tokenize agree on
        self.filename = filename
        tree = _parse(self.source, filename)
        with self._not_too_deep():
            self.analyzer = Analyzer(tree)

    def findings(self, imported: Mapping[str, str]) -> list[Finding]:
        with self._not_too_deep():
            candidates = self.analyzer.run(imported)
        return _findings(candidates, self.source, self.filename)

    @contextmanager
    def _not_too_deep(self) -> Iterator[None]:
        try:
            yield
        except RecursionError:
            raise CheckError(f"{self.filename}: an expression is nested too deeply to check; split it") from None


def _parse(source: str, filename: str) -> ast.Module:
    version = f"Python {sys.version_info.major}.{sys.version_info.minor}"
    try:
        return ast.parse(source, filename)
    except SyntaxError as error:
        where = f"{filename}:{error.lineno}" if error.lineno else filename
        raise CheckError(f"{where}: not valid {version} ({error.msg}); fix the syntax error there and check again") from None
    except ValueError as error:  # a lone surrogate, which no file can hold
        raise CheckError(f"{filename}: not valid {version} source ({error}); save it as UTF-8 text") from None
    except (RecursionError, MemoryError):
        raise CheckError(f"{filename}: nested too deeply for {version} to parse; split the deepest expression") from None


def _findings(candidates: list[Candidate], source: str, filename: str) -> list[Finding]:
    """One finding per line (the most specific rule's), less those suppressed on their line."""
    lines = source.split("\n")
    suppressed = suppressions(source)
    best: dict[int, Candidate] = {}
    for candidate in candidates:
        line = candidate.node.lineno
        if is_suppressed(candidate.rule, line, suppressed):
            continue
        kept = best.get(line)
        if kept is None or (PRECEDENCE[candidate.rule], candidate.node.col_offset) < (PRECEDENCE[kept.rule], kept.node.col_offset):
            best[line] = candidate
    findings = []
    for line, candidate in sorted(best.items()):
        rule = BY_ID[candidate.rule]
        # col_offset counts UTF-8 bytes; editors count characters.
        column = len(lines[line - 1].encode()[: candidate.node.col_offset].decode(errors="replace")) + 1
        findings.append(Finding(rule.id, filename, line, column, rule.message.format(**candidate.fields), rule.fix))
    return findings
