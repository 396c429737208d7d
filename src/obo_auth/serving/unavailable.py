"""The workspace refusing a local edge's own credential (not the caller's): a 503 for the caller.

Shared by local serving (app.py) and the local Apps front door (app_front_door.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from obo_auth.http_edge import ApiError, ServiceUnavailable
from obo_auth.redact import fingerprint
from obo_auth.serving.workspace_link import WorkspaceRefused

logger = logging.getLogger("obo_auth.serving")


class Unavailable:
    """Tells the workspace refusing a local edge's own credential from refusing the caller's.

    A workspace restarted on the same URL does not know the admin credential this process was
    given: every admin call then gets a 401 naming that credential's fingerprint (a refused
    caller's token gets a 401 naming the caller's). The caller is not at fault, so the caller
    gets a 503 saying ``restart`` must be run again, logged once: every request after it fails
    the same way.
    """

    def __init__(self, workspace_url: str, standing_secrets: Callable[[], Iterable[str]], who: str, restart: str):
        self._standing_secrets = standing_secrets
        self._logged = threading.Event()
        self.message = f"the local workspace at {workspace_url} no longer accepts {who}'s credential (was it restarted?); restart {restart}"

    def __call__(self, refused: WorkspaceRefused) -> ApiError | None:
        if refused.status != 401 or not any(fingerprint(secret) in refused.message for secret in self._standing_secrets()):
            return None
        if not self._logged.is_set():
            self._logged.set()
            logger.error("%s", self.message)
        return ServiceUnavailable(self.message)
