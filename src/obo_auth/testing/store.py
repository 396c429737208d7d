"""The MLflow store of a test session: the one its author chose, else a throwaway one.

With no store chosen, mlflow writes the traces of every agent call (and models logged with
mlflow's own functions) to ./mlflow.db and ./mlruns of whatever directory pytest runs in.
A throwaway store keeps them out of the author's checkout and out of obo_auth's default
store (~/.obo-auth/mlflow); ``obo_auth.log_model`` and local serving use it as well, since
both follow MLFLOW_TRACKING_URI (obo_auth.model_store).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_VARIABLE = "MLFLOW_TRACKING_URI"


def chosen_store() -> str | None:
    """The store the author chose: MLFLOW_TRACKING_URI, or ``mlflow.set_tracking_uri`` in this process."""
    if os.environ.get(_VARIABLE):
        return os.environ[_VARIABLE]
    if "mlflow" in sys.modules:  # a URI set in this process means mlflow is imported; never import it to ask
        from mlflow.tracking._tracking_service import utils

        if utils.is_tracking_uri_set():
            return utils.get_tracking_uri()
    return None


@contextmanager
def session_store(root: Path) -> Iterator[str]:
    """The chosen store, untouched; else a new one under ``root`` for the block."""
    chosen = chosen_store()
    if chosen:
        yield chosen
        return
    import mlflow
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{root / 'mlflow.db'}"
    # Created here with its artifact root beside it: mlflow's default root is ./mlruns.
    SqlAlchemyStore(uri, (root / "artifacts").as_uri()).engine.dispose()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(_VARIABLE, uri)
        try:
            yield uri
        finally:
            mlflow.flush_trace_async_logging()  # queued traces go here, not to ./mlflow.db at exit
