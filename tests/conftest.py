"""Shared fixtures: one local workspace per test module, real HTTP on loopback."""

from __future__ import annotations

import pytest

from obo_auth.local import LocalWorkspace


@pytest.fixture(scope="module")
def workspace():
    with LocalWorkspace() as ws:
        yield ws


# What a vector-search agent's auth policy declares: the scopes Model Serving downscopes to.
AGENT_SCOPES = [
    "serving.serving-endpoints",
    "vectorsearch.vector-search-endpoints",
    "vectorsearch.vector-search-indexes",
]


@pytest.fixture
def invoker_token():
    """``invoker_token(ws, "alice")``: a downscoped token minted for the agent, as serving hands it over."""

    def mint(workspace: LocalWorkspace, user: str) -> str:
        return workspace.issue_token(user, scopes=AGENT_SCOPES, actor="obo-agent")

    return mint
