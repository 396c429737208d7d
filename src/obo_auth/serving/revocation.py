"""Tokens local serving mints are revoked when what they were minted for ends, saying why.

A token that outlives its purpose is what an escaped tool or client would go on using: once
revoked, the workspace answers it with 401 and the audit record says why, so such an escape
fails loudly in local tests instead of acting quietly as the user it was built for.
"""

from __future__ import annotations

import logging
import threading

from obo_auth.redact import fingerprint
from obo_auth.serving.workspace_link import WorkspaceLink, WorkspaceRefused

logger = logging.getLogger("obo_auth.serving")

REQUEST_ENDED = "token of a request that ended"
SERVING_STOPPED = "agent credential of a local serving process that stopped"
# serve() / serve_app() revoke with this what their process minted, when it was killed before it could.
SERVING_KILLED = "token of a local serving process that was killed"


def revoke(link: WorkspaceLink, token: str, reason: str) -> bool:
    """Revokes ``token``; a workspace that refuses or is gone is logged, never raised: the
    request or shutdown that ends must not fail for it (the token's lifetime still bounds it).
    False when the workspace could not be reached (503): worth trying again later."""
    try:
        link.revoke(token, reason)
    except WorkspaceRefused as refused:
        logger.warning("could not revoke the %s (%s): %s", reason, fingerprint(token), refused.message)
        return refused.status != 503
    return True


class RequestToken:
    """The downscoped token of one request: revoked once, by whichever end comes first (the
    agent returned or failed, its stream ended, the client went away, or serving stopped)."""

    def __init__(self, link: WorkspaceLink, value: str | None, live: LiveTokens | None = None):
        self.value = value  # None: the model declares no user scopes, so no token was minted
        self._link = link
        self._lock = threading.Lock()
        self._revoked = value is None
        self._live = live
        if live is not None and value is not None:
            live.add(self)

    def __repr__(self) -> str:
        return f"RequestToken({fingerprint(self.value) if self.value else None})"

    def revoke(self) -> None:
        with self._lock:
            if self._revoked:
                return
            self._revoked = True
        if not revoke(self._link, self.value, REQUEST_ENDED):
            # The workspace could not be reached: rather than leave the token to its lifetime, it
            # is revoked once the workspace answers again (after the next token revoked), or
            # when serving stops (LiveTokens.revoke_all).
            with self._lock:
                self._revoked = False
            if self._live is not None:
                self._live.defer(self)
            return
        if self._live is not None:
            self._live.discard(self)
            self._live.retry_deferred()


class LiveTokens:
    """The request tokens not yet revoked: serving revokes them all when it stops, since a
    request still running then (its worker thread outlives the server) never reaches its own end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: set[RequestToken] = set()
        self._deferred: set[RequestToken] = set()  # ended, but the workspace could not be reached to revoke them

    def add(self, token: RequestToken) -> None:
        with self._lock:
            self._tokens.add(token)

    def discard(self, token: RequestToken) -> None:
        with self._lock:
            self._tokens.discard(token)
            self._deferred.discard(token)

    def defer(self, token: RequestToken) -> None:
        with self._lock:
            self._deferred.add(token)

    def retry_deferred(self) -> None:
        """Revokes the tokens whose revocation found the workspace unreachable (it answers again)."""
        with self._lock:
            deferred, self._deferred = list(self._deferred), set()
        for token in deferred:
            token.revoke()

    def revoke_all(self) -> None:
        with self._lock:
            tokens = list(self._tokens)
        for token in tokens:
            token.revoke()
