"""The README's set-up (`python3 run.py ...`) on a stock distro python3 that refuses pip installs (PEP 668)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DISTRO_PYTHON = Path("/usr/bin/python3")


def _externally_managed(python: Path) -> bool:
    probe = "import sysconfig, os; print(os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))"
    return python.exists() and subprocess.run([python, "-c", probe], capture_output=True, text=True).stdout.strip() == "True"


def _run(python: str | Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    environment = {
        **os.environ,  # the machine's certificates and index settings
        "PATH": "/usr/bin:/bin",  # no uv on it: run.py must find or install its own
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # where run.py installs uv
        "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(user_cache / "uv")),  # warm: no downloads
        "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv"),  # leave the checkout's .venv alone
    }
    environment.pop("VIRTUAL_ENV", None)
    return subprocess.run([str(python), str(ROOT / "run.py"), *args], capture_output=True, text=True, env=environment, timeout=600)


@pytest.mark.skipif(not _externally_managed(DISTRO_PYTHON), reason="this machine has no externally-managed /usr/bin/python3")
def test_set_up_works_on_an_externally_managed_distro_python(tmp_path):
    refused = subprocess.run([DISTRO_PYTHON, "-m", "pip", "install", "--dry-run", "uv"], capture_output=True, text=True)
    assert "externally-managed-environment" in refused.stderr  # what the old `pip install uv` set-up hit
    result = _run(DISTRO_PYTHON, tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "obo-auth, version 0.1.0"
    assert (tmp_path / "venv" / "bin" / "python").resolve().name.startswith("python3")
    assert _run(DISTRO_PYTHON, tmp_path, "--version").stderr == ""  # uv is installed once, then reused


def test_a_python_without_pip_or_uv_gets_one_line_saying_what_to_install(tmp_path):
    base = Path(getattr(sys, "_base_executable", sys.executable))
    subprocess.run([base, "-m", "venv", "--without-pip", tmp_path / "bare"], check=True)
    result = subprocess.run(
        [tmp_path / "bare" / "bin" / "python", str(ROOT / "run.py"), "--version"],
        capture_output=True, text=True, env={"HOME": str(tmp_path), "PATH": "/nonexistent", "XDG_CACHE_HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Error: this python3 has no pip.")
    assert "Traceback" not in result.stderr


def test_the_ci_runs_the_readmes_test_command():
    readme = (ROOT / "README.md").read_text()
    command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert command in readme
