"""Where a connection sends its requests: a loopback HTTP server, or the built-in echo.

The workspace puts a connection's credential on every request it sends there, so the seed's
URL is read strictly and rebuilt from its parts, never used as given: only ``http://`` to
``127.0.0.1`` or ``[::1]`` with a port and a plain base path. A host name, even ``localhost``,
is refused: a name resolves through /etc/hosts and DNS, an IP literal cannot leave the machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BUILTIN_ECHO = "builtin:echo"
# The host the built-in echo is addressed by: requests to it never leave the process (proxy.py
# hands them to the echo app directly), so this name is never resolved.
_ECHO_HOST = "echo.builtin"

_URL = re.compile(r"http://(127\.0\.0\.1|\[::1\]):([0-9]{1,5})(/[^?#]*)?", re.ASCII)
# A base path segment: unreserved characters only (RFC 3986), so it needs no encoding and
# cannot hide a dot segment or a slash behind one.
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+", re.ASCII)
EXAMPLE = "'http://127.0.0.1:8080/api' or 'builtin:echo'"


@dataclass(frozen=True)
class Upstream:
    host: str  # an IP literal, unbracketed ("::1"), or the echo's name
    port: int | None
    base_path: str  # "" or "/seg/seg", never ending in "/"

    @property
    def builtin(self) -> bool:
        return self.host == _ECHO_HOST

    @property
    def url(self) -> str:
        """What messages and the audit show: the rebuilt URL, or ``builtin:echo``."""
        if self.builtin:
            return BUILTIN_ECHO
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.base_path}"


ECHO = Upstream(_ECHO_HOST, None, "")


def parse(url: str) -> Upstream:
    """The upstream ``url`` names, or a ValueError saying why it cannot be one (never showing a
    URL that has user info in it: that part could be a password)."""
    if url == BUILTIN_ECHO:
        return ECHO
    why = _why_not(url)
    if why:
        raise ValueError(f"expected a loopback URL such as {EXAMPLE}: {why}")
    match = _URL.fullmatch(url)
    assert match is not None  # _why_not said it matches
    host, port, path = match.group(1).strip("[]"), int(match.group(2)), (match.group(3) or "").rstrip("/")
    return Upstream(host, port, path)


def _why_not(url: str) -> str | None:
    if not url.isprintable() or any(char.isspace() for char in url):
        return "it has control characters or spaces"
    # No base path segment may hold an '@' either, so any '@' is user info: never shown.
    if "@" in url:
        return "it has user info (the URL is not shown); put credentials in bearer_token or per_user_tokens"
    shown = repr(url.split("?")[0].split("#")[0][:120])  # never a query: it may hold a key
    if not url.startswith("http://"):
        return f"only http:// (a loopback server needs no TLS), got {shown}"
    match = _URL.fullmatch(url)
    if match is None:
        if "?" in url or "#" in url:
            return f"it has a query or a fragment, got {shown}"
        return f"the host must be 127.0.0.1 or [::1] and a port must follow it (a host name could resolve off the machine), got {shown}"
    if not 1 <= int(match.group(2)) <= 65535:
        return f"its port is not between 1 and 65535, got {shown}"
    # One trailing "/" is dropped (parse); every other segment must be a plain name.
    path = match.group(3) or ""
    segments = path[1:-1] if path.endswith("/") else path[1:]
    for segment in segments.split("/") if segments else []:
        if not _SEGMENT.fullmatch(segment) or segment in (".", ".."):
            return f"its base path may only have segments of letters, digits, '-', '.', '_' and '~' (no '.' or '..', no '//'), got {shown}"
    return None
