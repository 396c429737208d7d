"""Serving endpoints: state, no HTTP. What a chat query answers lives in chat_model.py; an
embedding is obo_auth.local.embedding_model's."""

from __future__ import annotations

from dataclasses import dataclass

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


# The workspace hands callers' tokens to an agent's URL: only local serving's loopback ones
# (the check is the kernel's, _base.loopback_url, which Apps' URLs go through too).
_EXAMPLE = "'http://127.0.0.1:8080' (where local serving listens)"


def agent_url(url: str | None) -> str | None:
    """``http://HOST:PORT`` rebuilt from ``url`` if it is where local serving can listen (HOST:
    ``127.0.0.1``, ``localhost`` or ``[::1]``), else a 400 saying why. ``None``: nothing serves it.

    The URL is rebuilt, never stored as given: the relay sends it callers' tokens.
    """
    return loopback_url(url, example=_EXAMPLE, root="serving answers at /invocations of its root")
