"""Where a benchmark writes its figures, and the machine they were taken on.

Figures go outside the checkout unless asked (``--output PATH``). Results committed under
benchmarks/results/ are a deliberate record, refreshed with
``--output benchmarks/results/NAME.json``; an ordinary run must not dirty tracked files.

Every results file records the machine: CPUs, CPU model, Python, the load average before and
after, and whether a test run (pytest, CI) was using the CPU meanwhile: on 2 cores, figures
taken beside a test run are not comparable with quiet ones, and the file says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
from pathlib import Path

BUSY_PATTERN = ".ci/run|pytest"  # what else may be using the CPU: a test run


def default_output(name: str) -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "obo-auth" / "benchmarks" / f"{name}.json"


def add_output_option(parser: argparse.ArgumentParser, name: str) -> None:
    default = default_output(name)
    # Resolved now: log_model.py and serving_throughput.py change directory while they run.
    parser.add_argument("--output", type=lambda p: Path(p).resolve(), default=default, help=f"Where to write the figures (default: {default}).")


def write(path: Path, figures: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {path}")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def busy_processes() -> list[str]:
    """Test runs using the CPU now (other than this process and its parents)."""
    try:
        found = subprocess.run(["pgrep", "-af", BUSY_PATTERN], capture_output=True, text=True).stdout.splitlines()
    except OSError:
        return []
    mine = {str(os.getpid()), str(os.getppid())}
    return [line for line in found if line.split(" ", 1)[0] not in mine and "pgrep" not in line]


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


class Machine:
    """``with Machine() as machine:`` around the measurement; ``machine.record`` afterwards."""

    def __enter__(self) -> Machine:
        self.busy_before = busy_processes()
        self.load_before = load_average()
        return self

    def __exit__(self, *exc_info) -> None:
        self.busy_after = busy_processes()
        self.load_after = load_average()

    @property
    def quiet(self) -> bool:
        return not self.busy_before and not self.busy_after

    @property
    def record(self) -> dict:
        return {
            "nproc": os.cpu_count(),
            "cpu_model": cpu_model(),
            "python": platform.python_version(),
            "load_average_before": self.load_before,
            "load_average_after": self.load_after,
            "quiet": self.quiet,
            "other_test_runs": sorted(set(self.busy_before + self.busy_after))[:5],
        }

    def say(self) -> str:
        state = "quiet (no test run using the CPU)" if self.quiet else "NOT quiet: a test run was using the CPU, figures are not comparable"
        return f"machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}; load {self.load_before} -> {self.load_after}; {state}"


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]


def summary(seconds: list[float], scale: float = 1000.0, digits: int = 3) -> dict:
    """Median, p99 and mean of ``seconds``, times ``scale`` (default: milliseconds)."""
    return {
        "median": round(statistics.median(seconds) * scale, digits),
        "p99": round(percentile(seconds, 99) * scale, digits),
        "mean": round(statistics.fmean(seconds) * scale, digits),
    }
