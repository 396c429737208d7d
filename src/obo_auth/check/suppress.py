"""``# obo-auth: ignore[rule-id, ...]`` comments, read with tokenize: a string that merely contains
the marker suppresses nothing.

The comment must start with the marker, or hold it as a section of its own after another tool's
(``# noqa: E501  # obo-auth: ignore[...]``: two spaces, then ``#``, as directives are stacked), and
the marker must be all of its section: ``# obo-auth: ignore`` alone, or followed at once by the
bracketed ids. ``# obo-auth: ignore [id]``, ``# obo-auth: ignored``, or prose that quotes the
marker suppress nothing: a loose match would hide every rule on the line, and a marker that is
not read leaves the findings shown. An id no rule has suppresses nothing (the finding stays,
which shows the typo) and is no error: it would stop the check of every other file."""

from __future__ import annotations

import io
import re
import tokenize

_MARKER = re.compile(r"#\s*obo-auth:\s*ignore(?:\[([^\]]*)\])?")
_SECTION = re.compile(r"(?:^|(?<=\s\s))#")  # a # that begins the comment, or follows two spaces
ALL = None  # a bare `# obo-auth: ignore`: every rule on its line


def suppressions(source: str) -> dict[int, frozenset[str] | None]:
    """Line -> the rule ids its comment suppresses (:data:`ALL` for every rule)."""
    found: dict[int, frozenset[str] | None] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                for marker in filter(None, map(_MARKER.fullmatch, _sections(token.string))):
                    ids = marker.group(1)
                    found[token.start[0]] = ALL if ids is None else frozenset(i.strip() for i in ids.split(",") if i.strip())
    except (tokenize.TokenError, SyntaxError):
        # Source the parser accepted but tokenize does not finish: the comments read so far
        # stand; the lines after them keep their findings (reported, never hidden).
        pass
    return found


def _sections(comment: str) -> list[str]:
    starts = [match.start() for match in _SECTION.finditer(comment)]
    return [comment[start:end].rstrip() for start, end in zip(starts, [*starts[1:], len(comment)])]


def is_suppressed(rule: str, line: int, found: dict[int, frozenset[str] | None]) -> bool:
    if line not in found:
        return False
    ids = found[line]
    return ids is ALL or rule in ids
