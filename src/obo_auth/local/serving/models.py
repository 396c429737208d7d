"""Serving endpoints: state, no HTTP. What a query answers lives in chat_model.py / embeddings."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from obo_auth.http_edge import BadRequest, NotFound

# "agent": an endpoint served by obo_auth's local serving (obo_auth.serving); the workspace
# relays its invocations to the URL serving registered (routes.py).
TASKS = {"chat": "llm/v1/chat", "embedding": "llm/v1/embeddings", "agent": "agent/v1/chat"}
EMBEDDING_DIMENSION = 16


@dataclass(frozen=True)
class ServingEndpoint:
    name: str
    kind: str  # "chat" | "embedding" | "agent"
    url: str | None = None  # agents only: where local serving listens; None while nothing serves it

    @property
    def task(self) -> str:
        return TASKS[self.kind]


class ServingBackend:
    def __init__(self, endpoints: list[ServingEndpoint]):
        self._endpoints = {e.name: e for e in endpoints}

    def register_agent(self, name: str, url: str | None) -> bool:
        """Declares the agent endpoint ``name`` served at ``url``; True if it did not exist.

        Registering an agent again (serving restarted, maybe on another port) replaces its URL;
        ``url=None`` clears it (serving stopped: its port may be anyone's next). The URL is stored
        rebuilt by ``agent_url`` (a BadRequest unless it is a loopback ``http://HOST:PORT``).
        """
        url = agent_url(url)
        existing = self._endpoints.get(name)
        if existing is not None and existing.kind != "agent":
            raise BadRequest(
                f"Serving endpoint '{name}' is a {existing.kind} endpoint of the seed, not an agent; "
                "serve the agent under another endpoint name."
            )
        self._endpoints[name] = ServingEndpoint(name, "agent", url)
        return existing is None

    def endpoints(self) -> list[ServingEndpoint]:
        return list(self._endpoints.values())

    def endpoint(self, name: str) -> ServingEndpoint:
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            raise NotFound(f"Serving endpoint '{name}' does not exist.")
        return endpoint


# The workspace hands callers' tokens to an agent's URL: only local serving's loopback ones,
# written exactly so (scheme, host, port, at most a "/"), nothing else in it.
_AGENT_URL = re.compile(r"http://(127\.0\.0\.1|localhost|\[::1\])(?::([0-9]{1,5}))?([/?#].*)?", re.ASCII | re.DOTALL)
_EXAMPLE = "'http://127.0.0.1:8080' (where local serving listens)"


def agent_url(url: str | None) -> str | None:
    """``http://HOST:PORT`` rebuilt from ``url`` if it is where local serving can listen (HOST:
    ``127.0.0.1``, ``localhost`` or ``[::1]``), else a 400 saying why. ``None``: nothing serves it.

    The URL is rebuilt, never stored as given: the relay sends it callers' tokens.
    """
    if url is None:
        return None
    shown = url[:120]
    match = _AGENT_URL.fullmatch(url)
    why = _why_not(url, match)
    if why:
        raise BadRequest(f"Field 'url' must be a loopback URL such as {_EXAMPLE}: {why}, got {shown!r}.")
    host, port = match.group(1), int(match.group(2))
    return f"http://{host}:{port}"


def _why_not(url: str, match: re.Match | None) -> str | None:
    if not url.isprintable() or any(char.isspace() for char in url):
        return "it has control characters or spaces"
    if match is None:
        return "only http:// to 127.0.0.1, localhost or [::1] and a port, without user info"
    if match.group(2) is None:
        return "it has no port"
    if not 1 <= int(match.group(2)) <= 65535:
        return "its port is not between 1 and 65535"
    rest = match.group(3) or ""
    if "?" in rest:
        return "it has a query"
    if "#" in rest:
        return "it has a fragment"
    if rest not in ("", "/"):
        return "it has a path (serving answers at /invocations of its root)"
    return None


def embed(text: str) -> list[float]:
    """A deterministic stand-in embedding (the SHA-256 of the text as a unit vector): stable, not semantic."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    vector = [b / 255.0 - 0.5 for b in digest[:EMBEDDING_DIMENSION]]
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    return [round(v / norm, 6) for v in vector]
