"""Shared fixtures: one local workspace per test module, real HTTP on loopback."""

from __future__ import annotations

import pytest

from obo_auth.local import LocalWorkspace


@pytest.fixture(scope="module")
def workspace():
    with LocalWorkspace() as ws:
        yield ws
