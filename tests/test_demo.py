"""`obo-auth demo`, the README's main job, run as a user runs it: a subprocess, exit code 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def test_demo_shows_three_users_and_a_clean_audit(tmp_path):
    home, cwd, temp = (tmp_path / name for name in ("home", "cwd", "tmp"))
    for directory in (cwd, temp):
        directory.mkdir()
    environment = {**os.environ, "OBO_AUTH_HOME": str(home), "TMPDIR": str(temp)}
    environment.pop("MLFLOW_TRACKING_URI", None)  # the demo logs to obo_auth's default store
    result = subprocess.run(
        [sys.executable, "-m", "obo_auth.cli.demo"], env=environment, cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "asked as three users" in out
    assert "the company handbook: permission denied" in out  # bob
    assert "parental-leave#5" in out  # alice's hr-only source
    assert "✓ Every data call ran as the user who asked" in out
    assert "Traceback" not in out + result.stderr and "Warning" not in out + result.stderr
    assert list(cwd.iterdir()) == []  # no mlruns/ or mlflow.db left in the working directory
    assert list(temp.iterdir()) == []  # no temporary directories left behind
    model_uri = re.search(r"Logged (models:/\S+) to", out).group(1)
    assert f"obo-auth serve {model_uri}" in out  # the store `obo-auth serve` reads: the demo's model can be served again
    assert (home / "mlflow" / "mlflow.db").exists()
