"""The MLflow store log_model, serve and demo agree on, from any directory; and obo_auth imports light."""

from __future__ import annotations

import subprocess
import sys

import mlflow
import pytest

from obo_auth import model_store


@pytest.fixture
def no_store_chosen(monkeypatch, tmp_path):
    """No MLFLOW_TRACKING_URI and none set in-process; obo_auth's home in tmp_path."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("OBO_AUTH_HOME", str(tmp_path / "home"))
    mlflow.set_tracking_uri(None)
    yield tmp_path / "home"
    mlflow.set_tracking_uri(None)  # back to the session's store (conftest), from the environment


def test_with_no_store_chosen_the_default_lives_in_obo_auth_home_with_its_artifacts(no_store_chosen, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = model_store.use_default_unless_set()
    assert uri == f"sqlite:///{no_store_chosen / 'mlflow' / 'mlflow.db'}" == mlflow.get_tracking_uri()
    assert mlflow.get_experiment("0").artifact_location == (no_store_chosen / "mlflow" / "artifacts").as_uri() + "/0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # nothing in the working directory


def test_a_chosen_store_wins(no_store_chosen, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'env.db'}")
    assert model_store.tracking_uri() == f"sqlite:///{tmp_path / 'env.db'}"
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'set.db'}")
    assert model_store.tracking_uri() == model_store.use_default_unless_set() == f"sqlite:///{tmp_path / 'set.db'}"
    assert not (no_store_chosen / "mlflow").exists()


def test_the_cli_and_the_local_workspace_import_without_databricks_sdk_or_mlflow():
    probe = (
        "import sys, obo_auth, obo_auth.cli.main, obo_auth.local, obo_auth.model_store;"
        "obo_auth.model_store.tracking_uri();"
        "print(sorted(m for m in ('databricks.sdk', 'mlflow') if m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_agent_side_names_still_import_on_first_use():
    import obo_auth

    assert obo_auth.on_behalf_of_user.__module__ == "obo_auth.decorator"
    assert "log_model" in dir(obo_auth)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        obo_auth.nonexistent  # noqa: B018


def test_the_default_store_creates_obo_auth_home_readable_only_by_its_owner(no_store_chosen):
    model_store.use_default_unless_set()
    assert no_store_chosen.stat().st_mode & 0o777 == 0o700  # it also holds running workspaces' admin credentials
    assert (no_store_chosen / "mlflow").stat().st_mode & 0o777 == 0o700
