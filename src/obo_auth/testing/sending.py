"""Which request of check_isolation sent each HTTP call that carried one of the check's tokens.

The audit says whose token a call carried, not which request sent it: a client made from
one request's token and used by another request while the first is still in flight looks,
to the audit, like a call of the first. In this process the check runs each request with a
context variable naming it (threads see it only if they copy the request's context, as
obo_auth asks of threads started in a request), and wraps the HTTP clients' sending to note,
for each call carrying a token of the check, that name and the token's fingerprint. Never
the token. Clients other than requests and httpx (urllib3 or aiohttp used directly) are not
seen.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import pytest

from obo_auth.redact import fingerprint

# The fingerprint of the token of the request running in this context; None outside any request.
_sender: ContextVar[str | None] = ContextVar("obo_auth_isolation_sender", default=None)


@dataclass(frozen=True)
class Sent:
    """One call that carried a token of the check."""

    sender: str | None  # the fingerprint of the token of the request that sent it; None: no request
    bearer: str  # the fingerprint of the token it carried
    time: float  # on the workspace's clock, as it was sent


class SendLog:
    """The calls carrying watched tokens, noted while ``recording`` runs (from any thread)."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._watched: set[str] = set()
        self._lock = threading.Lock()
        self.sent: list[Sent] = []

    def watch(self, token: str) -> None:
        with self._lock:
            self._watched.add(fingerprint(token))

    def note(self, headers: Any) -> None:
        scheme, _, token = (headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return
        bearer = fingerprint(token.strip())
        with self._lock:
            if bearer in self._watched:
                self.sent.append(Sent(_sender.get(), bearer, self._clock()))


@contextmanager
def sending_as(token: str) -> Iterator[None]:
    """Calls sent in this context (and in threads that copy it) are the request of ``token``'s."""
    reset = _sender.set(fingerprint(token))
    try:
        yield
    finally:
        _sender.reset(reset)


@contextmanager
def recording(log: SendLog) -> Iterator[None]:
    """Notes every call requests and httpx send in this process into ``log``, for the block only."""
    with pytest.MonkeyPatch.context() as patch:
        for owner, name, asynchronous in _send_methods():
            patch.setattr(owner, name, _noting(getattr(owner, name), log, asynchronous))
        yield


def _send_methods() -> Iterator[tuple[type, str, bool]]:
    try:
        import requests
    except ImportError:
        pass
    else:
        # Session.send gets the prepared request: any auth= has set its header already.
        yield requests.Session, "send", False
    try:
        import httpx
    except ImportError:
        return
    # httpx adds an httpx.Auth's header (DatabricksOpenAI's) after send: the request as sent
    # passes _send_single_request, whatever the transport.
    for client, asynchronous in ((httpx.Client, False), (httpx.AsyncClient, True)):
        yield client, "_send_single_request" if hasattr(client, "_send_single_request") else "send", asynchronous


def _noting(send: Callable[..., Any], log: SendLog, asynchronous: bool) -> Callable[..., Any]:
    if asynchronous:

        @functools.wraps(send)
        async def noted_async(self, request, *args, **kwargs):
            log.note(request.headers)
            return await send(self, request, *args, **kwargs)

        return noted_async

    @functools.wraps(send)
    def noted(self, request, *args, **kwargs):
        log.note(request.headers)
        return send(self, request, *args, **kwargs)

    return noted
