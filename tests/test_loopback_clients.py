"""obo_auth's own HTTP clients talk only to loopback: a proxy from the environment never sees their credentials."""

from __future__ import annotations

import socket

import pytest

from obo_auth.serving.workspace_link import WorkspaceLink

PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture
def proxy(monkeypatch):
    """A listening socket every proxy variable points at, and no NO_PROXY: it must never be connected to."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, f"http://127.0.0.1:{listener.getsockname()[1]}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield listener
    listener.close()


def _connected(listener: socket.socket) -> bool:
    try:
        listener.accept()[0].close()
        return True
    except BlockingIOError:
        return False


def test_the_admin_link_never_goes_through_a_proxy(workspace, proxy):
    link = WorkspaceLink(workspace.url, workspace.state.admin_token)
    try:
        assert "chat-model" in link.resource_names()["serving_endpoint"]
    finally:
        link.close()
    assert not _connected(proxy)
