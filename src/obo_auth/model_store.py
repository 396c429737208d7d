"""The MLflow store that ``obo_auth.log_model``, ``obo-auth serve`` and ``obo-auth demo`` agree on.

mlflow's own default store is ``./mlflow.db`` in whatever directory a command runs in, so a
model logged in one directory cannot be served from another. obo_auth resolves the store in
this order:

1. a tracking URI set in this process with ``mlflow.set_tracking_uri`` (only if mlflow is
   already imported: reading it must not import mlflow);
2. ``MLFLOW_TRACKING_URI``;
3. ``sqlite:///$OBO_AUTH_HOME/mlflow/mlflow.db`` (``~/.obo-auth/...``), whose artifacts live
   beside it, whatever the working directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from obo_auth.home import home_dir

_ENVIRONMENT_VARIABLE = "MLFLOW_TRACKING_URI"


def default_store_dir() -> Path:
    return home_dir() / "mlflow"


def default_tracking_uri() -> str:
    return f"sqlite:///{default_store_dir() / 'mlflow.db'}"


def tracking_uri() -> str:
    """The store in effect for this process, in the module docstring's order."""
    if "mlflow" in sys.modules:
        from mlflow.tracking._tracking_service import utils

        if utils.is_tracking_uri_set():
            return utils.get_tracking_uri()
    return os.environ.get(_ENVIRONMENT_VARIABLE) or default_tracking_uri()


def use_default_unless_set() -> str:
    """Points mlflow at obo_auth's default store unless a store was chosen; returns the store in effect.

    The default store is created on first use with its artifacts beside it (mlflow would put
    them under ``./mlruns`` of the directory it first ran in).
    """
    import mlflow
    from mlflow.tracking._tracking_service import utils

    if utils.is_tracking_uri_set():
        return utils.get_tracking_uri()
    uri = default_tracking_uri()
    directory = default_store_dir()
    if not (directory / "mlflow.db").exists():
        home_dir().mkdir(parents=True, exist_ok=True, mode=0o700)  # it also holds workspaces' admin credentials
        directory.mkdir(exist_ok=True, mode=0o700)
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        SqlAlchemyStore(uri, (directory / "artifacts").as_uri()).engine.dispose()
    mlflow.set_tracking_uri(uri)
    return uri
