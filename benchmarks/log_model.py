"""How long logging the example agent takes, and where mlflow's own way spends its time.

Rows: importing obo_auth and mlflow (once per process); ``obo_auth.log_model`` of the example
ChatAgent (requirements read from its imports, mlflow's log-time predict answered by a
stand-in); and the same call with ``pip_requirements`` left to mlflow's inference
(``--with-inference``), which loads the model in a subprocess and runs its predict there:
the 40-57 s a first user measured. Each logging row gives the first call in the process and the median of ``--runs`` more.

    .venv/bin/python benchmarks/log_model.py [--runs 3] [--with-inference] [--output PATH]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _results

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--with-inference", action="store_true", help="Also time mlflow's own requirement inference.")
    _results.add_output_option(parser, "log_model")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # mlflow's and obo_auth's log lines are not what is measured
    with tempfile.TemporaryDirectory() as home, _results.Machine() as machine:
        os.environ["OBO_AUTH_HOME"] = home  # a fresh default store, nothing left behind
        os.chdir(home)  # as an author's directory: no uv.lock there (mlflow would read requirements from it)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        start = time.perf_counter()
        import mlflow  # noqa: F401

        import obo_auth  # noqa: F401

        sys.path.insert(0, str(ROOT))
        from examples import handbook_agent

        results = {"import obo_auth + mlflow + example": {"seconds": round(time.perf_counter() - start, 2)}}
        results["obo_auth.log_model (requirements from imports)"] = timed(lambda: handbook_agent.log(), args.runs)
        if args.with_inference:
            results["mlflow's requirement inference (subprocess)"] = timed(lambda: inferred(handbook_agent), args.runs)
    print(machine.say())
    print(f"{'':<52}{'first':>8}{'median':>8}")
    for label, figures in results.items():
        print(f"{label:<52}{figures.get('first_s', figures.get('seconds')):>8}{figures.get('median_s', ''):>8}")
    _results.write(args.output, {"runs": args.runs, "machine": machine.record, "results": results})


def timed(log, runs: int) -> dict[str, float]:
    """The first call (it pays for the agent's own imports and the store's creation) and the median of the rest."""
    seconds = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        log()
        seconds.append(time.perf_counter() - start)
    return {"first_s": round(seconds[0], 2), "median_s": round(statistics.median(seconds[1:]), 2)}


def inferred(handbook_agent):
    """The same model and policy through mlflow alone, so mlflow infers the requirements."""
    import mlflow

    from obo_auth import auth_policy, log_time

    sys.path.insert(0, str(handbook_agent.HERE))
    from handbook_logic import RESOURCES

    with log_time.validation_run():  # the in-process predict gets its stand-in, as in log_model
        return mlflow.pyfunc.log_model(
            name="inferred", python_model=str(handbook_agent.CHAT_AGENT), code_paths=[str(handbook_agent.LOGIC)], auth_policy=auth_policy(*RESOURCES)
        )


if __name__ == "__main__":
    main()
