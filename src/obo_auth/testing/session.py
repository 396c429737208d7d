"""What the obo fixtures share across a test session, all stopped when it ends.

A workspace per seed: starting one is cheap, but a session's tests should not each pay for
it, and nothing in it is left from one test that another could see, except the audit log,
which every test reads only from where it began, and only its own tokens' calls there: which
test minted each token for the agent is kept (MintedTokens), since an earlier test's agent
may go on using one (a thread, a kept client). A served model per (workspace, model,
endpoint name): starting local serving takes seconds, so tests share it as they would share
a deployed endpoint. The MLflow store (store.py), set up the first time a test needs one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from obo_auth.testing.served import ServedAgent
from obo_auth.testing.store import session_store

if TYPE_CHECKING:
    from obo_auth.local import LocalWorkspace
    from obo_auth.testing.audit import AuditCall

Seed = Path | dict | None  # None: the built-in default seed


class SessionResources:
    """The session's shared resources, each started on first use; ``with`` stops them all."""

    def __init__(self, scratch: Callable[[str], Path]):
        self._scratch = scratch  # pytest's tmp_path_factory.mktemp
        self._stack = ExitStack()
        self._lock = threading.Lock()
        self._workspaces: dict[str, LocalWorkspace] = {}
        self._served: dict[tuple[str, str, str], ServedAgent] = {}
        self._store: str | None = None
        self._token_tests: dict[str, str] = {}  # a token's fingerprint -> the test that minted it

    def minted_tokens(self, test: str) -> MintedTokens:
        """The tokens ``test`` mints for the agent, among the session's."""
        return MintedTokens(self._token_tests, self._lock, test)

    def __enter__(self) -> SessionResources:
        return self

    def __exit__(self, *exc_info) -> None:
        self._stack.close()  # last in, first out: served models stop before their workspace

    def workspace(self, seed: Seed) -> LocalWorkspace:
        """The running workspace for ``seed``, started the first time it is asked for
        (SeedError, naming the file and field, for a seed it cannot use)."""
        from obo_auth.local import LocalWorkspace

        key = _seed_key(seed)
        with self._lock:
            if key not in self._workspaces:
                self._workspaces[key] = self._stack.enter_context(LocalWorkspace(seed))
            return self._workspaces[key]

    def mlflow_store(self) -> str:
        with self._lock:
            if self._store is None:
                self._store = self._stack.enter_context(session_store(self._scratch("obo-mlflow")))
            return self._store

    def serve(self, workspace: LocalWorkspace, model_uri: str, endpoint: str, agent: str) -> ServedAgent:
        """The model served for ``workspace``, started if it is not running (ServingFailed, one line, if it cannot be)."""
        from obo_auth.serving import serve

        key = (workspace.url, model_uri, endpoint)
        with self._lock:
            if key not in self._served:
                serving = serve(model_uri, workspace, endpoint, agent_principal=agent)
                running = serving.__enter__()

                def stop() -> None:
                    with self._lock:
                        self._served.pop(key, None)
                    serving.__exit__(None, None, None)

                served = self._served[key] = ServedAgent(running, workspace, agent, stop)
                self._stack.callback(served.stop)
            return self._served[key]


def _seed_key(seed: Seed) -> str:
    if seed is None:
        return "default"
    if isinstance(seed, dict):
        return json.dumps(seed, sort_keys=True, default=str)
    return str(Path(seed).resolve())


class MintedTokens:
    """Which tokens for the agent one test minted, kept by fingerprint (never the token) in
    the session's record, so that a later test can tell an earlier test's calls from its own."""

    def __init__(self, tests: dict[str, str], lock: threading.Lock, test: str):
        self._tests, self._lock, self.test = tests, lock, test

    def claim(self, fingerprints: Iterable[str]) -> None:
        """Records the tokens as this test's, unless an earlier test minted them."""
        with self._lock:
            for token in fingerprints:
                self._tests.setdefault(token, self.test)

    def earlier_test(self, call: AuditCall) -> str | None:
        """The earlier test whose token ``call`` carried; None for this test's, or for any other token."""
        with self._lock:
            test = self._tests.get(call.token_fingerprint or "")
        return test if test != self.test else None

    def ours(self, call: AuditCall) -> bool:
        return self.earlier_test(call) is None
