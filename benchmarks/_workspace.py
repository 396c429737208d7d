"""A local workspace in its own process, for the throughput benchmarks.

The load generator and the workspace must not share a process: the workspace serves from one
event loop under one GIL, and a client in the same process would take its CPU from it. So
``running_workspace(seed)`` starts this file as a child process, which builds
``LocalWorkspace(seed)``, issues a token per user, and prints one JSON line: its URL, its admin
credential (for local serving), the users' tokens and the agent's own ``DATABRICKS_HOST`` /
``DATABRICKS_TOKEN`` (for logging the agent without OBO). The child exits when its stdin closes (the block ends, or the parent dies).

The seed is the default one plus grants that make the benchmarks' point (``benchmark_seed``):
bob may read the handbook index and the employees table too, so all three users are
authorized and two of them (bob, carol) go through a row filter; the agent's own service
principal may read the index, for the agent variant that runs without OBO.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USERS = ("alice", "bob", "carol")
INDEX = "main.docs.handbook_index"


def benchmark_seed() -> dict:
    """The default seed, with bob and the agent granted what the benchmarks need (module docstring)."""
    from importlib import resources

    import yaml

    seed = yaml.safe_load(resources.files("obo_auth.local").joinpath("default_seed.yaml").read_text(encoding="utf-8"))
    seed["grants"] += [
        {"principal": "bob@example.com", "privilege": "SELECT", "on": {"index": INDEX}},
        {"principal": "bob@example.com", "privilege": "SELECT", "on": {"table": "main.hr.employees"}},
        {"principal": "obo-agent", "privilege": "SELECT", "on": {"index": INDEX}},
    ]
    return seed


@dataclass
class RunningWorkspace:
    url: str
    admin_token: str
    tokens: dict[str, str]  # user -> an unrestricted token
    agent_environment: dict[str, str]  # DATABRICKS_HOST / DATABRICKS_TOKEN of obo-agent (what mlflow's host creds read)
    warehouse_id: str


@contextmanager
def running_workspace(seed: dict | None = None) -> Iterator[RunningWorkspace]:
    with tempfile.TemporaryDirectory(prefix="obo-auth-bench-") as scratch:
        seed_file = Path(scratch, "seed.json")
        seed_file.write_text(json.dumps(seed if seed is not None else benchmark_seed()))
        child = subprocess.Popen(
            [sys.executable, __file__, str(seed_file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            line = child.stdout.readline()
            if not line:
                raise RuntimeError("The benchmark's workspace process did not start (its error is above).")
            yield RunningWorkspace(**json.loads(line))
        finally:
            child.stdin.close()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _child(seed_file: str) -> None:
    from obo_auth.local import LocalWorkspace

    with LocalWorkspace(json.loads(Path(seed_file).read_text())) as workspace:
        announced = {
            "url": workspace.url,
            "admin_token": workspace.state.admin_token,
            "tokens": {user: workspace.issue_token(user) for user in USERS},
            "agent_environment": {"DATABRICKS_HOST": workspace.url, "DATABRICKS_TOKEN": workspace.issue_token("obo-agent")},
            "warehouse_id": workspace.state.services["sql"].warehouses()[0].id,
        }
        print(json.dumps(announced), flush=True)
        sys.stdin.read()  # until the parent closes it


if __name__ == "__main__":
    _child(sys.argv[1])
