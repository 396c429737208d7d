"""Serving endpoints: state, no HTTP. What a chat query answers lives in chat_model.py (or, for
a chat endpoint backed by an upstream model, wherever its seed says: relay.py); an embedding is
obo_auth.local.embedding_model's."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import SecretStr

from obo_auth.http_edge import BadRequest, NotFound
from obo_auth.local._base import loopback_url

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
class ChatUpstream:
    """The OpenAI-compatible API a chat endpoint's queries are relayed to (the seed's ``upstream``)."""

    url: str  # rebuilt by upstream_url: the base its /chat/completions and /responses hang off
    model: str  # the model name the upstream is asked for
    api_key: SecretStr | None = field(default=None, repr=False)  # goes only upstream, as 'Authorization: Bearer'


@dataclass(frozen=True)
class ServingEndpoint:
    name: str
    kind: str  # "chat" | "embedding" | "agent"
    url: str | None = None  # agents only: where local serving listens; None while nothing serves it
    interface: str | None = None  # agents only: one of AGENT_INTERFACES; None until serving says which
    upstream: ChatUpstream | None = None  # chat only: the model answering instead of the local chat model

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


# The workspace hands callers' tokens to an agent's URL: only local serving's loopback ones
# (the check is the kernel's, _base.loopback_url, which Apps' URLs go through too).
_EXAMPLE = "'http://127.0.0.1:8080' (where local serving listens)"


def agent_url(url: str | None) -> str | None:
    """``http://HOST:PORT`` rebuilt from ``url`` if it is where local serving can listen (HOST:
    ``127.0.0.1``, ``localhost`` or ``[::1]``), else a 400 saying why. ``None``: nothing serves it.

    The URL is rebuilt, never stored as given: the relay sends it callers' tokens.
    """
    return loopback_url(url, example=_EXAMPLE, root="serving answers at /invocations of its root")


# -- an upstream model's URL ---------------------------------------------------------------------------
# A chat endpoint's upstream gets the seed's API key on every request, so its URL is read strictly
# and rebuilt from its parts: https:// to any host (a real workspace's /serving-endpoints, a hosted
# API), or http:// only on this machine (a local model server): an http URL elsewhere would carry
# the key in clear. No user info, query or fragment; plain path segments.
UPSTREAM_EXAMPLE = "'http://127.0.0.1:11434/v1' (a local model server) or 'https://HOST/serving-endpoints' (a workspace)"
_LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "localhost")
_UPSTREAM_URL = re.compile(
    r"(https?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(?::([0-9]{1,5}))?(/[^?#]*)?",
    re.ASCII,
)
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+", re.ASCII)


def upstream_url(url: str) -> str:
    """``url`` rebuilt from its parts if a chat endpoint may send its API key there, else a
    ValueError saying why (never showing user info or a query: either may hold a secret)."""
    if not url.isprintable() or any(char.isspace() for char in url):
        raise ValueError("it has control characters or spaces")
    if "@" in url:  # no path segment may hold one either: any '@' is user info
        raise ValueError("it has user info (the URL is not shown); put the key in api_key")
    shown = repr(url.split("?")[0].split("#")[0][:120])
    if "?" in url or "#" in url:
        raise ValueError(f"it has a query or a fragment, got {shown}")
    match = _UPSTREAM_URL.fullmatch(url)
    if match is None:
        raise ValueError(f"expected an OpenAI-compatible API's base URL such as {UPSTREAM_EXAMPLE}, got {shown}")
    scheme, host, port, path = match.group(1), match.group(2).lower(), match.group(3), match.group(4) or ""
    if scheme == "http" and host not in _LOOPBACK_HOSTS:
        raise ValueError(
            f"http:// only to {', '.join(_LOOPBACK_HOSTS)} (an http URL off this machine would send the API key in clear); "
            f"use https://, got {shown}"
        )
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"its port is not between 1 and 65535, got {shown}")
    path = path[:-1] if path.endswith("/") else path
    for segment in path[1:].split("/") if path else []:
        if not _SEGMENT.fullmatch(segment) or segment in (".", ".."):
            raise ValueError(f"its path may only have segments of letters, digits, '-', '.', '_' and '~' (no '.' or '..', no '//'), got {shown}")
    return f"{scheme}://{host}{f':{int(port)}' if port else ''}{path}"


def is_loopback(url: str) -> bool:
    """Whether ``url`` (rebuilt by upstream_url) is a server on this machine."""
    return url.startswith(tuple(f"http://{host}" for host in _LOOPBACK_HOSTS))
