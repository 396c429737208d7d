"""Serving endpoints: state, no HTTP. What a query answers lives in chat_model.py / embeddings."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from obo_auth.local._base import NotFound

# "agent": an endpoint served by obo_auth's local serving (obo_auth.serving), not answered here.
TASKS = {"chat": "llm/v1/chat", "embedding": "llm/v1/embeddings", "agent": "agent/v1/chat"}
EMBEDDING_DIMENSION = 16


@dataclass(frozen=True)
class ServingEndpoint:
    name: str
    kind: str  # "chat" | "embedding"

    @property
    def task(self) -> str:
        return TASKS[self.kind]


class ServingBackend:
    def __init__(self, endpoints: list[ServingEndpoint]):
        self._endpoints = {e.name: e for e in endpoints}

    def add(self, endpoint: ServingEndpoint) -> bool:
        """Adds ``endpoint`` unless one of that name exists; True when it was added."""
        return self._endpoints.setdefault(endpoint.name, endpoint) is endpoint

    def endpoints(self) -> list[ServingEndpoint]:
        return list(self._endpoints.values())

    def endpoint(self, name: str) -> ServingEndpoint:
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            raise NotFound(f"Serving endpoint '{name}' does not exist.")
        return endpoint


def embed(text: str) -> list[float]:
    """A deterministic stand-in embedding (the SHA-256 of the text as a unit vector): stable, not semantic."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    vector = [b / 255.0 - 0.5 for b in digest[:EMBEDDING_DIMENSION]]
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    return [round(v / norm, 6) for v in vector]
