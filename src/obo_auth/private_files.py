"""Files that hold a credential: created readable by their owner only, before anything is written."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any


def write_private_json(path: Path, content: Any) -> None:
    """Writes a new owner-only file beside ``path`` and moves it into place: an existing file's
    looser mode, or a link planted at ``path``, is never written through."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fresh = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump(content, handle)
        os.replace(fresh, path)
    except BaseException:
        fresh.unlink(missing_ok=True)
        raise
