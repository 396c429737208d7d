"""How long the ``obo-auth`` commands a developer types often take to start and finish.

Each command runs as a new process, as from a shell, ``--runs`` times; the figures are the
median and the fastest wall time. ``workspace token`` and ``workspace url`` ask a running
local workspace (started here, in a throwaway ``OBO_AUTH_HOME``); ``python -c pass`` is the
interpreter's own start-up, the floor under every row. The target is under 1 s each.
benchmarks/startup.py runs the same rows beside the set-up and the demo.

    .venv/bin/python benchmarks/cli_startup.py [--runs 10] [--output PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _results

OBO_AUTH = str(Path(sys.executable).parent / "obo-auth")
COMMANDS = {
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "obo-auth --help": [OBO_AUTH, "--help"],
    "obo-auth --version": [OBO_AUTH, "--version"],
    "obo-auth workspace url": [OBO_AUTH, "workspace", "url"],
    "obo-auth workspace token alice": [OBO_AUTH, "workspace", "token", "alice"],
}


def timed(command: list[str], environment: dict[str, str], runs: int) -> dict[str, float]:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=environment, check=True, stdout=subprocess.DEVNULL)
        seconds.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(seconds), 3), "min_s": round(min(seconds), 3)}


def running_workspace(environment: dict[str, str]) -> subprocess.Popen:
    workspace = subprocess.Popen([OBO_AUTH, "workspace", "--quiet"], env=environment, stdout=subprocess.DEVNULL)
    home = Path(environment["OBO_AUTH_HOME"])
    deadline = time.monotonic() + 60
    while not list(home.glob("workspace-*.json")):
        if time.monotonic() > deadline or workspace.poll() is not None:
            workspace.kill()
            sys.exit("The local workspace did not start.")
        time.sleep(0.1)
    return workspace


def measure(runs: int) -> dict[str, dict[str, float]]:
    """Each command's median and fastest wall time over ``runs`` (startup.py folds these rows in)."""
    with tempfile.TemporaryDirectory() as home:
        environment = {**os.environ, "OBO_AUTH_HOME": home}
        workspace = running_workspace(environment)
        try:
            return {label: timed(command, environment, runs) for label, command in COMMANDS.items()}
        finally:
            workspace.terminate()
            workspace.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    _results.add_output_option(parser, "cli_startup")
    args = parser.parse_args()
    with _results.Machine() as machine:
        results = measure(args.runs)
    print(machine.say())
    print(f"{'command':<34}{'median s':>10}{'min s':>8}")
    for label, figures in results.items():
        print(f"{label:<34}{figures['median_s']:>10}{figures['min_s']:>8}")
    _results.write(args.output, {"runs": args.runs, "machine": machine.record, "results": results})


if __name__ == "__main__":
    main()
