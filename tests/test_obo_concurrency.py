"""Concurrent requests never see each other's identity: threads, asyncio tasks, greenlets.

Each request asks the local workspace who it is; the answer and the audit log must both
name the request's own user. On each runtime (conftest.runtime): on Model Serving each
request reads its own token from the runtime's per-request source, on Apps each opens its
own app_request inside its own thread, task or greenlet. Sibling: test_obo_identity.py
(one request at a time).
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import gevent
import pytest

import obo_auth

USERS = ("alice", "bob", "carol")


@obo_auth.on_behalf_of_user
def predict(pause) -> str:
    client = obo_auth.current_request().user_client
    pause()  # let other requests run between building the client and using it
    return client.current_user.me().user_name


def _assert_audit_matches(workspace, before: int, expected: Counter) -> None:
    records = [r for r in workspace.audit()[before:] if r.path == "/api/2.0/preview/scim/v2/Me"]
    assert Counter(r.principal for r in records) == expected
    assert all(r.decision == "allow" for r in records)


@pytest.fixture
def tokens(workspace, invoker_token):
    return {user: invoker_token(workspace, user) for user in USERS}


def test_threads_three_users_thousands_of_requests(runtime, workspace, tokens):
    rng = random.Random(2026)
    plan = [rng.choice(USERS) for _ in range(3000)]
    barrier_pause = threading.Event().wait  # returns after 0 s: a real thread switch point

    def one(user: str) -> tuple[str, str]:
        with runtime.user(tokens[user], workspace.url):
            return user, predict(lambda: barrier_pause(0))

    before = len(workspace.audit())
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, plan))
    wrong = [(user, got) for user, got in results if got != f"{user}@example.com"]
    assert wrong == []
    _assert_audit_matches(workspace, before, Counter(f"{u}@example.com" for u in plan))


def test_asyncio_tasks(runtime, workspace, tokens):
    @obo_auth.on_behalf_of_user
    async def predict_async() -> str:
        client = obo_auth.current_request().user_client
        await asyncio.sleep(0)  # other tasks run here
        return await asyncio.to_thread(lambda: client.current_user.me().user_name)

    async def one(user: str) -> tuple[str, str]:
        with runtime.user(tokens[user], workspace.url):
            return user, await predict_async()

    async def main(plan):
        return await asyncio.gather(*(one(u) for u in plan))

    plan = [USERS[i % 3] for i in range(300)]
    before = len(workspace.audit())
    results = asyncio.run(main(plan))
    assert [got for _, got in results] == [f"{u}@example.com" for u in plan]
    _assert_audit_matches(workspace, before, Counter(f"{u}@example.com" for u in plan))


def test_greenlets(runtime, workspace, tokens):
    # gevent gives each greenlet its own contextvars context, as the serving runtime will run requests.
    def one(user: str) -> tuple[str, str]:
        with runtime.user(tokens[user], workspace.url):
            return user, predict(lambda: gevent.sleep(0))

    plan = [USERS[i % 3] for i in range(300)]
    before = len(workspace.audit())
    greenlets = [gevent.spawn(one, u) for u in plan]
    gevent.joinall(greenlets, raise_error=True)
    assert [g.value[1] for g in greenlets] == [f"{u}@example.com" for u in plan]
    _assert_audit_matches(workspace, before, Counter(f"{u}@example.com" for u in plan))
