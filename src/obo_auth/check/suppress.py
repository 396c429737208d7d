"""``# obo-auth: ignore[rule-id, ...]`` comments, read with tokenize: a string that merely contains
the marker suppresses nothing."""

from __future__ import annotations

import io
import re
import tokenize

_MARKER = re.compile(r"#\s*obo-auth:\s*ignore(?:\[([^\]]*)\])?")
ALL = None  # a bare `# obo-auth: ignore`: every rule on its line


def suppressions(source: str) -> dict[int, frozenset[str] | None]:
    """Line -> the rule ids its comment suppresses (:data:`ALL` for every rule)."""
    found: dict[int, frozenset[str] | None] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                marker = _MARKER.search(token.string)
                if marker:
                    ids = marker.group(1)
                    found[token.start[0]] = ALL if ids is None else frozenset(i.strip() for i in ids.split(",") if i.strip())
    except (tokenize.TokenError, SyntaxError):
        # Source the parser accepted but tokenize does not finish: the comments read so far
        # stand; the lines after them keep their findings (reported, never hidden).
        pass
    return found


def is_suppressed(rule: str, line: int, found: dict[int, frozenset[str] | None]) -> bool:
    if line not in found:
        return False
    ids = found[line]
    return ids is ALL or rule in ids
