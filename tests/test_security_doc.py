"""SECURITY.md names the test behind each guarantee: every name it gives must exist.

(A renamed or deleted test would otherwise leave a guarantee that nothing proves.)
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `tests/file.py::test_name`, `tests/file.py`, or `::test_name` (of the file named last before it).
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`")


def test_every_test_security_md_names_exists():
    text = (ROOT / "SECURITY.md").read_text()
    current, missing, named = None, [], 0
    for match in REFERENCE.finditer(text):
        path, name = match.groups()
        if path:
            current = path
            assert (ROOT / path).exists(), f"SECURITY.md names {path}, which does not exist"
        if name:
            named += 1
            assert current, f"SECURITY.md names ::{name} before any test file"
            if not re.search(rf"^(async )?def {name}\(", (ROOT / current).read_text(), re.MULTILINE):
                missing.append(f"{current}::{name}")
    assert named > 20, "SECURITY.md should name the tests that prove its guarantees"
    assert missing == []
