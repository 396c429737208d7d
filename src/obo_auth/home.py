"""Where obo_auth keeps what outlives one command: ``$OBO_AUTH_HOME``, by default ``~/.obo-auth``.

Neutral ground: the CLI, the local workspace's runtime files and the default model store all
live here, so that commands run from any directory find each other's state.
"""

from __future__ import annotations

import os
from pathlib import Path


def home_dir() -> Path:
    """``$OBO_AUTH_HOME`` if set, else ``~/.obo-auth``; not created here."""
    configured = os.environ.get("OBO_AUTH_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".obo-auth"
