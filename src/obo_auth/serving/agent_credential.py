"""The agent's own credential, as Model Serving mounts it: an OAuth token in a file.

Short-lived and rotated, as the platform's is; when serving stops, every token still valid is
revoked and the directory removed, so no working credential is left behind on disk. The first
token is written by runtime.install (which mounts it), the rotated ones here.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path

from obo_auth.serving import runtime
from obo_auth.serving.revocation import SERVING_STOPPED, revoke
from obo_auth.serving.workspace_link import WorkspaceLink, WorkspaceRefused

logger = logging.getLogger("obo_auth.serving")

AGENT_TOKEN_TTL_SECONDS = 3600
# Rotated at half its life: databricks-sdk keeps the file's token for up to 300 s
# (ModelServingAuthProvider.refresh_duration), far less than the half hour it has left.
ROTATE_AFTER_SECONDS = AGENT_TOKEN_TTL_SECONDS / 2


class AgentCredential:
    """``with AgentCredential(link, "obo-agent") as credential:`` mints ``credential.current``,
    to be mounted in ``credential.directory``, and rotates it there until the block ends.

    ``tokens()`` are the agent's tokens that still work: the current one and those it
    replaced that have not expired yet (clients that read the file before may hold them).
    """

    def __init__(self, link: WorkspaceLink, principal: str, *, ttl: float = AGENT_TOKEN_TTL_SECONDS, rotate_after: float = ROTATE_AFTER_SECONDS):
        self._link, self._principal, self._ttl, self._rotate_after = link, principal, ttl, rotate_after
        self._minted: list[tuple[str, float]] = []  # (token, when it expires on time.monotonic())
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._rotation = threading.Thread(target=self._keep_fresh, daemon=True, name="obo-auth-agent-credential")
        self.directory: Path | None = None

    def __repr__(self) -> str:
        return f"AgentCredential({self._principal}, {self.directory})"

    def __enter__(self) -> AgentCredential:
        self.directory = Path(tempfile.mkdtemp(prefix="obo-auth-serving-"))  # owner-only, as mkdtemp makes it
        try:
            self._mint()
        except BaseException:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise
        self._rotation.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._rotation.is_alive():
            self._rotation.join()
        # The file first: if the workspace hangs while revoking, the parent's kill must not leave it on disk.
        shutil.rmtree(self.directory, ignore_errors=True)
        for token in self.tokens():
            revoke(self._link, token, SERVING_STOPPED)

    @property
    def current(self) -> str:
        with self._lock:
            return self._minted[-1][0]

    def tokens(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return [token for token, expires in self._minted if expires > now]

    def _mint(self) -> str:
        token = self._link.mint(self._principal, scopes=None, ttl=self._ttl)
        # Read after the workspace started the token's clock: never thinks it expired before it has.
        now = time.monotonic()
        with self._lock:
            self._minted = [(t, expires) for t, expires in self._minted if expires > now] + [(token, now + self._ttl)]
        return token

    def _keep_fresh(self) -> None:
        while not self._stop.wait(self._rotate_after):
            try:
                runtime.write_agent_credentials(self.directory, self._mint())
            except WorkspaceRefused as refused:  # the current token still has half its life
                logger.warning("could not rotate the agent's credential: %s", refused.message)
