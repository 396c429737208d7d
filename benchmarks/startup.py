"""Set-up and start-up: the README's set-up on an empty package cache, ``obo-auth demo`` cold, and the CLI.

Rows, each a new process as from a shell:

- **set-up, empty cache**: ``python3 run.py --version`` (the README's first command, which
  installs the locked dependency set with uv) with an empty ``UV_CACHE_DIR`` and a new venv
  directory (``UV_PROJECT_ENVIRONMENT``): every package downloaded from the registry, so the
  figure depends on the network. Then the same with the cache now full and another new venv:
  what a second checkout costs. ``--no-setup`` skips both (they download several hundred MB).
- **demo, cold**: ``obo-auth demo`` with a new ``OBO_AUTH_HOME`` (no MLflow store, no logged
  model) and a new ``TMPDIR``: the workspace started, the example logged and served, three
  users asked. Target: under 30 s.
- **CLI** (cli_startup.py): the commands a developer types often, median of ``--runs``.

    .venv/bin/python benchmarks/startup.py [--runs 10] [--demo-runs 1] [--no-setup] [--output PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _results
import cli_startup

ROOT = Path(__file__).resolve().parents[1]
OBO_AUTH = str(Path(sys.executable).parent / "obo-auth")
TARGET_DEMO_SECONDS = 30
SYSTEM_PYTHON = shutil.which("python3") or sys.executable


def wall(command: list[str], environment: dict[str, str], cwd: Path | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    finished = subprocess.run(command, env=environment, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if finished.returncode != 0:
        sys.stderr.write(finished.stdout[-3000:] + finished.stderr[-3000:])
        raise SystemExit(f"{' '.join(command)} failed with exit code {finished.returncode} (its output is above).")
    return seconds, finished


def setup_rows(scratch: Path) -> dict:
    """run.py --version on an empty uv cache and a new venv, then again on the now full cache."""
    cache = scratch / "uv-cache"
    rows = {}
    for label, venv in (("set-up, empty package cache (python3 run.py --version)", "venv-1"), ("set-up again, full cache, new venv", "venv-2")):
        environment = {**os.environ, "UV_CACHE_DIR": str(cache), "UV_PROJECT_ENVIRONMENT": str(scratch / venv), "XDG_CACHE_HOME": str(scratch / "xdg")}
        seconds, finished = wall([SYSTEM_PYTHON, str(ROOT / "run.py"), "--version"], environment)
        rows[label] = {"seconds": round(seconds, 1), "printed": finished.stdout.strip().splitlines()[-1:]}
    rows["set-up, empty package cache (python3 run.py --version)"]["cache_mb"] = round(_size(cache) / 2**20)
    return rows


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def demo_row(scratch: Path, runs: int) -> dict:
    seconds = []
    for run in range(runs):
        home, tmp = scratch / f"demo-home-{run}", scratch / f"demo-tmp-{run}"
        home.mkdir()
        tmp.mkdir()
        environment = {**os.environ, "OBO_AUTH_HOME": str(home), "TMPDIR": str(tmp)}
        environment.pop("MLFLOW_TRACKING_URI", None)  # the demo's default store, in the new home
        took, finished = wall([OBO_AUTH, "demo"], environment, cwd=tmp)
        seconds.append(took)
    return {"runs": runs, "median_s": round(statistics.median(seconds), 1), "min_s": round(min(seconds), 1), "max_s": round(max(seconds), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="Runs of each CLI command.")
    parser.add_argument("--demo-runs", type=int, default=1, help="Cold runs of obo-auth demo (each with a new home).")
    parser.add_argument("--no-setup", action="store_true", help="Skip the set-up rows (they download every package).")
    _results.add_output_option(parser, "startup")
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="obo-auth-bench-") as scratch_dir, _results.Machine() as machine:
        scratch = Path(scratch_dir)
        if not args.no_setup:
            print("set-up on an empty package cache (downloads every package)...", flush=True)
            results.update(setup_rows(scratch))
        print("obo-auth demo, cold...", flush=True)
        results["obo-auth demo, cold (new OBO_AUTH_HOME and TMPDIR)"] = demo_row(scratch, args.demo_runs)
        print("CLI start-up...", flush=True)
        results.update({f"CLI: {label}": figures for label, figures in cli_startup.measure(args.runs).items()})
    demo = results["obo-auth demo, cold (new OBO_AUTH_HOME and TMPDIR)"]["median_s"]
    targets = {"demo_cold_seconds": {"target": TARGET_DEMO_SECONDS, "measured": demo, "met": demo < TARGET_DEMO_SECONDS}}
    print(machine.say())
    print(f"{'':<60}{'median s':>10}{'min s':>8}")
    for label, figures in results.items():
        median = figures.get("median_s", figures.get("seconds"))
        print(f"{label:<60}{median:>10}{figures.get('min_s', ''):>8}")
    for name, target in targets.items():
        print(f"target {name}: {'met' if target['met'] else 'MISSED'} (measured {target['measured']} s, target under {target['target']} s)")
    _results.write(args.output, {"runs": args.runs, "machine": machine.record, "targets": targets, "results": results})


if __name__ == "__main__":
    main()
