"""Finding tokens left behind (issue 14, canary tokens).

Every token the local workspace issues is recognisable: ``dapi`` + 32 hex digits, and every
client secret ``dose`` + 32 hex. So whatever a test session, a flow or the demo wrote can be
scanned for them afterwards: tests/test_reliability_canary.py scans everything its flows left
(logs at DEBUG, output, exceptions, traces, files), and tests/conftest.py's session fixture
scans every file the whole suite wrote under its own temporary directory (pytest's basetemp).
And a failing test's report, which is printed and kept by CI, shows a token as its fingerprint
(the hook pytest_runtest_makereport, which tests/conftest.py registers).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from obo_auth.redact import scrub

TOKEN_SHAPED = re.compile(rb"(?:dapi|dose)[0-9a-f]{32}")
# Files that hold a token on purpose, by name:
# - smuggled.json: what the tests' escaping agents write, the token they were handed, so that the
#   test can prove it was revoked when the request ended (tests/test_local_serving.py ...);
# - workspace-PORT.json: a running `obo-auth workspace`'s runtime file, its admin credential
#   (owner-only, by design: README "The local workspace"); a test that kills one leaves it.
ON_PURPOSE = ("smuggled.json", "workspace-*.json")


def files_under(*roots: Path, since: float = 0) -> list[Path]:
    """The regular files under ``roots`` modified at or after ``since`` (no symlinks followed)."""
    found = []
    for root in roots:
        for path in root.rglob("*") if root.is_dir() else []:
            try:
                if path.is_file() and not path.is_symlink() and path.stat().st_mtime >= since:
                    found.append(path)
            except OSError:
                continue
    return found


def token_shaped(data: bytes | str) -> list[str]:
    raw = data.encode("utf-8", "backslashreplace") if isinstance(data, str) else data
    if b"dapi" not in raw and b"dose" not in raw:  # most files: no regex at all
        return []
    return sorted({m.decode() for m in TOKEN_SHAPED.findall(raw)})


def files_holding_a_token(root: Path, since: float) -> list[str]:
    """The files under ``root`` written since ``since`` that hold a token-shaped string, but for
    those that hold one ON_PURPOSE; each with the start of what was found (never a whole token)."""
    held = []
    for path in sorted(files_under(root, since=since)):
        if any(path.match(pattern) for pattern in ON_PURPOSE):
            continue
        try:
            hits = token_shaped(path.read_bytes())
        except OSError:  # removed meanwhile, or unreadable: nothing left to read
            continue
        if hits:
            held.append(f"{path}: {[hit[:8] + '...' for hit in hits]}")
    return held


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report (its assertion's introspection, its captured output) shows every
    token-shaped string as its fingerprint."""
    report = (yield).get_result()
    if report.failed:
        if report.longrepr is not None:
            report.longrepr = scrubbed(str(report.longrepr))
        report.sections = [(title, scrubbed(content)) for title, content in report.sections]


# pytest shortens a long repr to its two ends ('dapi01234567...3456789abcdef'): no longer
# token-shaped, yet most of one.
_SHORTENED_TOKEN = re.compile(r"(?:dapi|dose)[0-9a-f]{0,31}\.\.\.[0-9a-f]*")


def scrubbed(text: str) -> str:
    return _SHORTENED_TOKEN.sub("<a token, shortened>", scrub(text))
