"""Every benchmark, one after another, each in its own process, each writing its results file.

    .venv/bin/python benchmarks/run_all.py                      # figures under ~/.cache/obo-auth/benchmarks/
    .venv/bin/python benchmarks/run_all.py --record             # refresh benchmarks/results/*.json
    .venv/bin/python benchmarks/run_all.py --only request_overhead workspace_throughput

Timing figures taken while something else uses the CPU (a test run, CI) are not comparable on
a small machine: every results file records whether the machine was quiet, and with
``--wait-quiet`` each benchmark waits (up to an hour) until no pytest or CI process runs, and
runs again (up to 3 times) if one started meanwhile.
``--no-setup`` skips startup.py's set-up rows (they download every package from the registry);
``--with-inference`` adds log_model.py's mlflow-inference row (about a minute).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import _results

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("request_overhead", "workspace_throughput", "serving_throughput", "startup", "log_model")


def wait_until_quiet(limit_s: float = 3600) -> None:
    deadline = time.monotonic() + limit_s
    busy = _results.busy_processes()
    if busy:
        print(f"waiting for {len(busy)} test process(es) to finish: {busy[0][:100]}", flush=True)
    while busy and time.monotonic() < deadline:
        time.sleep(10)
        busy = _results.busy_processes()
    if not busy:
        time.sleep(5)  # let the load settle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--record", action="store_true", help="Write into benchmarks/results/ (the committed record).")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--wait-quiet", action="store_true", help="Before each benchmark, wait until no test run uses the CPU.")
    parser.add_argument("--no-setup", action="store_true", help="startup.py: skip the set-up rows (they download every package).")
    parser.add_argument("--with-inference", action="store_true", help="log_model.py: add mlflow's requirement inference.")
    args = parser.parse_args()
    failed = []
    for name in args.only:
        output = HERE / "results" / f"{name}.json" if args.record else _results.default_output(name)
        command = [sys.executable, str(HERE / f"{name}.py"), "--output", str(output)]
        if name == "startup" and args.no_setup:
            command.append("--no-setup")
        if name == "log_model" and args.with_inference:
            command.append("--with-inference")
        for attempt in range(3 if args.wait_quiet else 1):
            if args.wait_quiet:
                wait_until_quiet()
            print(f"\n== {name}{' (again: the machine was not quiet)' if attempt else ''} ==", flush=True)
            start = time.perf_counter()
            if subprocess.run(command).returncode != 0:
                failed.append(name)
                break
            print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)
            if json.loads(output.read_text()).get("machine", {}).get("quiet", True):
                break
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
