#!/usr/bin/env python3
"""Set-up and run in one step, on any python3 >= 3.10: ``python3 run.py demo`` / ``python3 run.py test``.

``test [PYTEST ARGS]`` runs the test suite; anything else runs ``obo-auth`` with those
arguments (``demo``, ``workspace``, ``serve MODEL_URI``...). Both go through uv, which
installs the locked dependency set (uv.lock) into ``.venv`` in seconds; pip's resolver takes
many minutes on this set.

uv is found on PATH, or as a Python package, or installed once into obo_auth's cache with
``pip install --target``: pip applies PEP 668 (the ``externally-managed-environment``
refusal of stock Debian and Ubuntu pythons) to installs into the interpreter's own
environment only, and a target directory is not one. Nothing is installed system-wide.
Standard library only: this runs before anything is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

if sys.version_info < (3, 10):
    sys.exit(f"Error: obo_auth needs Python 3.10 or newer; this is {sys.version.split()[0]}. Run it with a newer python3.")

PROJECT = Path(__file__).resolve().parent


def bootstrap_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "obo-auth" / f"uv-py{sys.version_info.major}{sys.version_info.minor}"


def find_uv() -> str:
    on_path = shutil.which("uv")
    if on_path:
        return on_path
    try:
        from uv import find_uv_bin  # installed as a package into this python

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        pass
    target = bootstrap_dir()
    installed = target / "bin" / ("uv.exe" if os.name == "nt" else "uv")
    if not installed.exists():
        install_uv(target)
    return str(installed)


def install_uv(target: Path) -> None:
    print(f"Installing uv into {target} (once)...", file=sys.stderr)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(target), "uv"]
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    except OSError as error:
        sys.exit(f"Error: could not run pip ({error}).")
    if result.returncode != 0:
        if "No module named pip" in result.stderr:
            sys.exit(
                "Error: this python3 has no pip. Install uv (https://docs.astral.sh/uv/) or pip "
                "(Debian/Ubuntu: sudo apt install python3-pip), then run this again."
            )
        sys.stderr.write(result.stderr)
        sys.exit("Error: installing uv with pip failed (its output is above); install uv yourself and run this again.")


def main(argv: list[str]) -> int:
    if argv[:1] == ["test"]:
        command = ["--extra", "test", "pytest", *argv[1:]]
    else:
        command = ["obo-auth", *argv]
    # --python: the interpreter the user ran this with, so a fresh .venv uses it too.
    uv = [find_uv(), "run", "--quiet", "--project", str(PROJECT), "--python", sys.executable, *command]
    try:
        return subprocess.call(uv)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
