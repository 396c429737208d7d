"""The local workspace alone under load: authorized vector-search queries/s and SQL statements/s.

The workspace runs in its own process (benchmarks/_workspace.py: the default seed, with bob
granted the index and the employees table, so all three users are authorized and bob and
carol go through the row filters and the salary mask). This process keeps
``--in-flight`` requests (default 16) going as alice, bob and carol in turn, on keep-alive
connections with pre-encoded requests (_load.py: httpx would saturate its own core first),
so the figure is the workspace's (the table shows the load generator's CPU share too):

- vector search: ``POST /api/2.0/vector-search/indexes/main.docs.handbook_index/query``
  with a ``query_text`` (embedded by the workspace's local model), 3 results;
- SQL: ``POST /api/2.0/sql/statements`` with ``wait_timeout`` so the answer comes inline
  (``SELECT name, team, salary FROM main.hr.employees WHERE team <> 'none'``).

Statuses are counted, and each user's first answers are summarised in the results (alice sees
the HR-only passages and salaries, bob and carol do not). ``--profile`` also runs the
workspace under cProfile for the vector-search row and prints where its time goes. The
target is at least 1,000 vector-search queries/s on 2 cores.

    .venv/bin/python benchmarks/workspace_throughput.py [--requests 3000] [--in-flight 16] [--profile] [--output PATH]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats

import _load
import _results
from _workspace import INDEX, USERS, benchmark_seed, running_workspace

TARGET_VECTOR_SEARCH_QPS = 1000
QUESTIONS = ("How many vacation days do I get?", "parental leave pay", "expense reports", "terminations", "sick leave")
SQL = "SELECT name, team, salary FROM main.hr.employees WHERE team <> 'none'"


def vector_search_requests(workspace) -> list[_load.Request]:
    path = f"/api/2.0/vector-search/indexes/{INDEX}/query"
    return [
        _load.Request("POST", path, workspace.tokens[user], json.dumps({"query_text": question, "columns": ["id", "doc_uri", "audience"], "num_results": 3}).encode(), user)
        for question in QUESTIONS
        for user in USERS
    ]


def statement_requests(workspace) -> list[_load.Request]:
    body = json.dumps({"warehouse_id": workspace.warehouse_id, "statement": SQL, "wait_timeout": "30s"}).encode()
    return [_load.Request("POST", "/api/2.0/sql/statements", workspace.tokens[user], body, user) for user in USERS]


def seen(kind: str, outcome: _load.Outcome) -> dict[str, list[str]]:
    """What each user saw, for the results file: the benchmark is of authorized, filtered answers."""
    by_user = {}
    for user, bodies in sorted(outcome.samples.items()):
        values: set[str] = set()
        for raw in bodies:
            body = json.loads(raw)
            if kind == "vector search":
                values.update(f"audience {row[2]}" for row in body["result"]["data_array"])
            else:
                assert body["status"]["state"] == "SUCCEEDED", body["status"]
                rows = body["result"].get("data_array", [])
                values.add(f"{len(rows)} rows, salaries {'shown' if any(r[2] is not None for r in rows) else 'masked'}")
        by_user[user] = sorted(values)
    return by_user


def load(workspace, kind: str, requests: list[_load.Request], count: int, in_flight: int) -> dict:
    # warm-up: the embedding model's and DuckDB's first calls, each user's view
    outcome = _load.blast(workspace.url, requests, count, in_flight, warm_up=in_flight * 2)
    latency = _results.summary(outcome.latencies, digits=2)
    return {
        "requests": count,
        "per_s": round(outcome.per_s, 1),
        "p50_ms": latency["median"],
        "p99_ms": latency["p99"],
        "statuses": {str(k): v for k, v in sorted(outcome.statuses.items())},
        "load_generator_cpu_share": round(outcome.cpu_share, 2),  # of one core: near 1.0, the client limits the figure
        "seen": seen(kind, outcome),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="Timed requests per row (SQL: a third).")
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--profile", action="store_true", help="Profile the workspace process during an extra vector-search run.")
    _results.add_output_option(parser, "workspace_throughput")
    args = parser.parse_args()
    results = {}
    with _results.Machine() as machine:
        with running_workspace() as workspace:
            results["vector search queries"] = load(workspace, "vector search", vector_search_requests(workspace), args.requests, args.in_flight)
            results["SQL statements"] = load(workspace, "SQL", statement_requests(workspace), max(48, args.requests // 3), args.in_flight)
    profile = None
    if args.profile:
        profile = profiled_vector_search(args)
    qps = results["vector search queries"]["per_s"]
    targets = {"vector_search_queries_per_s": {"target": TARGET_VECTOR_SEARCH_QPS, "measured": qps, "met": qps >= TARGET_VECTOR_SEARCH_QPS}}
    print(machine.say())
    print(f"{args.in_flight} requests in flight as {', '.join(USERS)} (row filters for bob and carol)")
    print(f"{'':<26}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}{'client CPU':>12}  statuses")
    for label, figures in results.items():
        print(
            f"{label:<26}{figures['per_s']:>9}{figures['p50_ms']:>9}{figures['p99_ms']:>9}"
            f"{figures['load_generator_cpu_share']:>11.0%}  {figures['statuses']}"
        )
        for user, values in figures["seen"].items():
            print(f"{'':<28}{user}: {', '.join(values)}")
    for name, target in targets.items():
        print(f"target {name}: {'met' if target['met'] else 'MISSED'} (measured {target['measured']}, target {target['target']})")
    if profile:
        print(profile)
    _results.write(
        args.output, {"requests": args.requests, "in_flight": args.in_flight, "machine": machine.record, "targets": targets, "results": results, "profile": profile}
    )


def profiled_vector_search(args) -> str:
    """The workspace's own time during a vector-search run, by function (cumulative, top 30)."""
    import multiprocessing

    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_profiled_workspace, args=(child,))
    process.start()
    announced = parent.recv()

    class Announced:
        url = announced["url"]
        tokens = announced["tokens"]
        warehouse_id = announced["warehouse_id"]

    load(Announced, "vector search", vector_search_requests(Announced), args.requests, args.in_flight)
    parent.send("stop")
    text = parent.recv()
    process.join(30)
    return text


def _profiled_workspace(pipe) -> None:
    """A workspace whose server thread (its event loop, where the routes run) runs under cProfile."""
    import sys
    import threading

    from obo_auth.local import LocalWorkspace

    profiler = cProfile.Profile()

    def start_in_server_thread(frame, event, arg) -> None:
        sys.setprofile(None)
        if threading.current_thread().name.startswith("obo-auth-server-"):
            profiler.enable()  # for this thread only

    threading.setprofile(start_in_server_thread)  # threads started from now on
    with LocalWorkspace(benchmark_seed()) as workspace:
        threading.setprofile(None)
        pipe.send(
            {
                "url": workspace.url,
                "tokens": {user: workspace.issue_token(user) for user in USERS},
                "warehouse_id": workspace.state.services["sql"].warehouses()[0].id,
            }
        )
        pipe.recv()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    pipe.send(out.getvalue())


if __name__ == "__main__":
    main()
