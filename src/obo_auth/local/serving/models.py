"""Serving endpoints: state, no HTTP. What a chat query answers lives in chat_model.py; an
embedding is obo_auth.local.embedding_model's."""

from __future__ import annotations

import re
from dataclasses import dataclass

from obo_auth.http_edge import BadRequest, NotFound

# "agent": an endpoint served by obo_auth's local serving (obo_auth.serving); the workspace
# relays its invocations to the URL serving registered (routes.py).
TASKS = {"chat": "llm/v1/chat", "embedding": "llm/v1/embeddings", "agent": "agent/v1/chat"}
# An agent endpoint reports its model's task, the one mlflow records for the agent's interface
# (mlflow.pyfunc.model: _DEFAULT_CHAT_AGENT_METADATA_TASK, _DEFAULT_RESPONSES_AGENT_METADATA_TASK);
# an agent whose interface the workspace was not told keeps the generic TASKS["agent"].
AGENT_TASKS = {"chat_agent": "agent/v2/chat", "responses_agent": "agent/v1/responses"}
AGENT_INTERFACES = ("chat_agent", "responses_agent", "pyfunc")  # what local serving knows an agent as
# GET serving-endpoints/{name} reports what the endpoint can do; clients read `function_calling`
# (databricks_ai_bridge.test_utils.fmapi.has_function_calling) to find the chat models that take tools.
CAPABILITIES = {"chat": {"function_calling": True}, "embedding": {"function_calling": False}, "agent": {"function_calling": False}}


@dataclass(frozen=True)
class ServingEndpoint:
    name: str
    kind: str  # "chat" | "embedding" | "agent"
    url: str | None = None  # agents only: where local serving listens; None while nothing serves it
    interface: str | None = None  # agents only: one of AGENT_INTERFACES; None until serving says which

    @property
    def task(self) -> str:
        if self.kind == "agent":
            return AGENT_TASKS.get(self.interface, TASKS["agent"])
        return TASKS[self.kind]

    @property
    def capabilities(self) -> dict[str, bool]:
        return dict(CAPABILITIES[self.kind])


class ServingBackend:
    def __init__(self, endpoints: list[ServingEndpoint]):
        self._endpoints = {e.name: e for e in endpoints}

    def register_agent(self, name: str, url: str | None, interface: str | None = None) -> bool:
        """Declares the agent endpoint ``name`` served at ``url``; True if it did not exist.

        Registering an agent again (serving restarted, maybe on another port) replaces its URL;
        ``url=None`` clears it (serving stopped: its port may be anyone's next). The URL is stored
        rebuilt by ``agent_url`` (a BadRequest unless it is a loopback ``http://HOST:PORT``).
        ``interface`` (one of AGENT_INTERFACES, None: not said) is the request shape the agent takes.
        """
        url = agent_url(url)
        if interface is not None and interface not in AGENT_INTERFACES:
            raise BadRequest(f"Field 'interface' must be one of {', '.join(AGENT_INTERFACES)}, got {interface[:40]!r}.")
        existing = self._endpoints.get(name)
        if existing is not None and existing.kind != "agent":
            raise BadRequest(
                f"Serving endpoint '{name}' is a {existing.kind} endpoint of the seed, not an agent; "
                "serve the agent under another endpoint name."
            )
        self._endpoints[name] = ServingEndpoint(name, "agent", url, interface)
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
