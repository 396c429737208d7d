"""What the obo fixtures share across a test session, all stopped when it ends.

A workspace per seed: starting one is cheap, but a session's tests should not each pay for
it, and nothing in it is left from one test that another could see, except the audit log,
which every test reads only from where it began. A served model per (workspace, model,
endpoint name): starting local serving takes seconds, so tests share it as they would share
a deployed endpoint. The MLflow store (store.py), set up the first time a test needs one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from obo_auth.testing.served import ServedAgent
from obo_auth.testing.store import session_store

if TYPE_CHECKING:
    from obo_auth.local import LocalWorkspace

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
