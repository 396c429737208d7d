"""Tokens local serving mints are revoked when what they were minted for ends, saying why.

A token that outlives its purpose is what an escaped tool or client would go on using: once
revoked, the workspace answers it with 401 and the audit record says why, so such an escape
fails loudly in local tests instead of acting quietly as the user it was built for.
"""

from __future__ import annotations

import logging
import threading
import time

from obo_auth.redact import fingerprint
from obo_auth.serving.workspace_link import WorkspaceLink, WorkspaceRefused

logger = logging.getLogger("obo_auth.serving")

REQUEST_ENDED = "token of a request that ended"
SERVING_STOPPED = "agent credential of a local serving process that stopped"
# serve() / serve_app() revoke with these what their process minted and left live: when it was
# killed (or crashed) before its clean-up, and when it stopped with a revocation still failing.
SERVING_KILLED = "token of a local serving process that ended without its clean-up (killed or crashed)"
LEFT_AT_STOP = "token a local serving process left live when it stopped"


# A revocation that failed is tried again in the background: after 1 s, then twice as long each
# time, at most every 30 s, until the workspace answers.
_RETRY_FIRST_SECONDS = 1.0
_RETRY_MAX_SECONDS = 30.0


def revoke(link: WorkspaceLink, token: str, reason: str) -> bool:
    """Revokes ``token``; a workspace that refuses or is gone is logged, never raised: the
    request or shutdown that ends must not fail for it. False when it is worth trying again:
    the workspace could not be reached, was busy (429) or failed (5xx). A 4xx is final: 404, a
    token it never issued; 401, the admin credential refused (a workspace restarted since, whose
    tokens died with it)."""
    try:
        link.revoke(token, reason)
    except WorkspaceRefused as refused:
        logger.warning("could not revoke the %s (%s): %s", reason, fingerprint(token), refused.message)
        return 400 <= refused.status < 500 and refused.status != 429
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
            # Rather than leave the token to its lifetime, it is tried again in the background
            # until the workspace answers (LiveTokens.defer), and when serving stops.
            with self._lock:
                self._revoked = False
            if self._live is not None:
                self._live.defer(self)
            return
        if self._live is not None:
            self._live.discard(self)


class LiveTokens:
    """The request tokens not yet revoked: serving revokes them all when it stops, since a
    request still running then (its worker thread outlives the server) never reaches its own end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: set[RequestToken] = set()
        self._deferred: set[RequestToken] = set()  # ended, but their revocation failed: tried again
        self._retrying = False  # a thread is trying the deferred ones again

    def add(self, token: RequestToken) -> None:
        with self._lock:
            self._tokens.add(token)

    def discard(self, token: RequestToken) -> None:
        with self._lock:
            self._tokens.discard(token)
            self._deferred.discard(token)

    def defer(self, token: RequestToken) -> None:
        """``token``'s revocation failed: it is tried again by one background thread (never in
        another request's time), backing off, until none is left."""
        with self._lock:
            self._deferred.add(token)
            if self._retrying:
                return
            self._retrying = True
        threading.Thread(target=self._retry_deferred, name="obo-auth-revocation-retry", daemon=True).start()

    def _retry_deferred(self) -> None:
        pause = _RETRY_FIRST_SECONDS
        while True:
            time.sleep(pause)
            with self._lock:
                deferred, self._deferred = list(self._deferred), set()
                if not deferred:
                    self._retrying = False
                    return
            for token in deferred:
                token.revoke()  # failing again defers it again, for this thread's next round
            pause = min(pause * 2, _RETRY_MAX_SECONDS)

    def revoke_all(self) -> None:
        with self._lock:
            tokens = list(self._tokens)
        for token in tokens:
            token.revoke()
