"""What a request costs before it does anything useful: the docs pattern, obo_auth and the floor.

Runs against a local workspace, in this process, with this process made to look like Model
Serving (the runtime's per-request token function and slot, credentials file and host
variable), as REFERENCE.md measured it. Per request, side by side in one run:

- **floor**: the client (or the retriever tool) built once, before the first request, with
  the user's token: the request is the useful call alone. No safe agent can do less.
- **docs pattern**: a user client with ``ModelServingUserCredentials`` and the agent's own
  ``WorkspaceClient()`` built per request, as the docs show (with the tool: built per request
  from the user client).
- **obo_auth**: ``@on_behalf_of_user``, ``req.system_client`` and ``req.user_client`` (with the
  tool: built per request with ``req.require``; or built in the first request and kept, which
  is safe because it acts for the request it is used in).

The useful call is ``current_user.me()`` without a tool, the index query with one; the table
gives the HTTP calls per request, how many come before the useful one, and the median and
p99 wall time. The rows without HTTP time obo_auth's own work (decorator, invoker read,
request context, the request-bound token formatted once as a tool's ``Authorization`` header
does) with each of the runtime's token sources, and with both clients handed out; the SDK's
client constructors are not in them (obo_auth builds each client once per process).

    .venv/bin/python benchmarks/request_overhead.py [--requests 1000] [--output PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

from databricks.sdk import WorkspaceClient
from databricks.sdk.credentials_provider import ModelServingUserCredentials
from databricks_openai import VectorSearchRetrieverTool

import _results
import obo_auth
from obo_auth.local import LocalWorkspace
from obo_auth.serving import runtime

INDEX = "main.docs.handbook_index"
SCOPES = ["serving.serving-endpoints", "vectorsearch.vector-search-endpoints", "vectorsearch.vector-search-indexes"]
USEFUL_PATHS = ("/api/2.0/preview/scim/v2/Me", f"/api/2.0/vector-search/indexes/{INDEX}/query")
TARGETS = {
    "own_overhead_median_us": 20,  # obo_auth's own work per request, no SDK constructors
    "both_clients_median_us": 100,  # the same with req.user_client and req.system_client
    "kept_tool_extra_calls": 0,  # a tool kept across requests: the query alone
}


def retriever(client: WorkspaceClient) -> VectorSearchRetrieverTool:
    return VectorSearchRetrieverTool(index_name=INDEX, workspace_client=client, tool_description="handbook")


# -- the floor: built once, the useful call alone ------------------------------------------------
class Floor:
    def __init__(self, host: str, token: str):
        self.client = WorkspaceClient(host=host, token=token)
        self.tool = retriever(self.client)

    def __call__(self, with_tool: bool) -> None:
        if with_tool:
            self.tool.execute(query="vacation")
        else:
            self.client.current_user.me()


# -- the docs pattern -----------------------------------------------------------------------------
def docs_pattern(with_tool: bool) -> None:
    user = WorkspaceClient(credentials_strategy=ModelServingUserCredentials())
    WorkspaceClient()  # the agent's own client, built per request as the docs show
    if with_tool:
        retriever(user).execute(query="vacation")
    else:
        user.current_user.me()


# -- obo_auth -------------------------------------------------------------------------------------
@obo_auth.on_behalf_of_user
def obo_pattern(with_tool: bool) -> None:
    req = obo_auth.current_request()
    req.system_client
    if with_tool:
        req.require("handbook", lambda: retriever(req.user_client)).execute(query="vacation")
    else:
        req.user_client.current_user.me()


_kept_tool: list[VectorSearchRetrieverTool] = []


@obo_auth.on_behalf_of_user
def obo_kept_tool(with_tool: bool) -> None:
    req = obo_auth.current_request()
    req.system_client
    if not _kept_tool:  # built in the first request, as an agent caching it on self would
        _kept_tool.append(retriever(req.user_client))
    _kept_tool[0].execute(query="vacation")


# -- no HTTP: obo_auth's own work -----------------------------------------------------------------
def plain_call() -> None:
    """The floor of the rows without HTTP: calling a function."""


@obo_auth.on_behalf_of_user
def obo_own_overhead() -> None:
    """Decorator, invoker read, request context, and the request-bound token formatted once."""
    f"Bearer {obo_auth.current_request().user_client.config.token}"


@obo_auth.on_behalf_of_user
def obo_both_clients() -> None:
    """The same with both clients handed out (built once per process, so no constructor runs)."""
    req = obo_auth.current_request()
    req.system_client
    f"Bearer {req.user_client.config.token}"


def timed(call, requests: int) -> list[float]:
    seconds = []
    for _ in range(requests):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def measure_http(workspace: LocalWorkspace, pattern, with_tool: bool, requests: int) -> dict:
    with contextlib.redirect_stdout(io.StringIO()):  # the vector-search client prints a notice per construction
        pattern(with_tool)  # warm-up: imports and per-process resolution
        before = len(workspace.audit())
        seconds = timed(lambda: pattern(with_tool), requests)
    records = workspace.audit()[before:]
    per_request = len(records) / requests
    before_useful = calls_before_useful(records, requests)
    return {"http_calls_per_request": per_request, "calls_before_useful": before_useful, **_results.summary(seconds), "unit": "ms"}


def calls_before_useful(records, requests: int) -> float:
    """Per request, how many calls came before the useful one (each request makes exactly one)."""
    useful = [i for i, record in enumerate(records) if record.path in USEFUL_PATHS]
    if len(useful) != requests:
        raise RuntimeError(f"expected one useful call per request, saw {len(useful)} in {requests} requests")
    starts = [0] + [i + 1 for i in useful[:-1]]
    return sum(u - s for s, u in zip(starts, useful)) / requests


def measure_local(call, requests: int) -> dict:
    call()
    seconds = timed(call, requests)
    return {"http_calls_per_request": 0.0, "calls_before_useful": 0.0, **_results.summary(seconds, scale=1e6, digits=2), "unit": "us"}


@contextlib.contextmanager
def older_runtime():
    """A runtime without ``mlflowserving``: the invoker's token only in the process-wide slot."""
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name.split(".")[0] == "mlflowserving"}
    try:
        yield
    finally:
        sys.modules.update(saved)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="Requests per row with HTTP (tool rows: half); x50 without.")
    parser.add_argument("--no-http", action="store_true", help="Only the rows without HTTP (obo_auth's own work): a few seconds.")
    _results.add_output_option(parser, "request_overhead")
    args = parser.parse_args()
    http_requests, tool_requests, local_requests = args.requests, max(20, args.requests // 2), args.requests * 50
    results: dict[str, dict] = {}
    with _results.Machine() as machine, LocalWorkspace() as workspace, tempfile.TemporaryDirectory() as credentials:
        os.environ["MLFLOW_TRACKING_URI"] = Path(credentials, "mlruns").as_uri()  # traces stay out of the way
        runtime.install(workspace.url, workspace.issue_token("obo-agent"), Path(credentials))
        os.environ["DATABRICKS_HOST"] = workspace.url  # as REFERENCE.md's 9-call measurement
        token = workspace.issue_token("alice", scopes=SCOPES, actor="obo-agent")
        floor = Floor(workspace.url, token)
        with runtime.invoker(token):
            for with_tool in () if args.no_http else (False, True):
                suffix = " + retriever tool" if with_tool else ""
                requests = tool_requests if with_tool else http_requests
                results[f"floor (built once, the query alone){suffix}"] = measure_http(workspace, floor, with_tool, requests)
                results[f"docs pattern{suffix}"] = measure_http(workspace, docs_pattern, with_tool, requests)
                results[f"obo_auth{suffix}"] = measure_http(workspace, obo_pattern, with_tool, requests)
            if not args.no_http:
                results["obo_auth + retriever tool kept across requests"] = measure_http(workspace, obo_kept_tool, True, tool_requests)
            results["no HTTP: a plain function call (floor)"] = measure_local(plain_call, local_requests)
            results["no HTTP: obo_auth own overhead (per-request token function)"] = measure_local(obo_own_overhead, local_requests)
            with older_runtime():
                results["no HTTP: obo_auth own overhead (process-wide slot only)"] = measure_local(obo_own_overhead, local_requests)
        with obo_auth.as_user(token, host=workspace.url):
            results["no HTTP: obo_auth own overhead (as_user)"] = measure_local(obo_own_overhead, local_requests)
        with runtime.invoker(token):
            results["no HTTP: obo_auth with both clients"] = measure_local(obo_both_clients, local_requests)
    own = results["no HTTP: obo_auth own overhead (per-request token function)"]["median"]
    own_slot = results["no HTTP: obo_auth own overhead (process-wide slot only)"]["median"]
    both = results["no HTTP: obo_auth with both clients"]["median"]
    kept = results.get("obo_auth + retriever tool kept across requests")
    floor_tool = results.get("floor (built once, the query alone) + retriever tool")
    targets = {
        "own_overhead_median_us": {"target": TARGETS["own_overhead_median_us"], "measured": max(own, own_slot), "met": max(own, own_slot) <= TARGETS["own_overhead_median_us"]},
        "both_clients_median_us": {"target": TARGETS["both_clients_median_us"], "measured": both, "met": both <= TARGETS["both_clients_median_us"]},
    }
    if kept and floor_tool:
        targets["kept_tool_extra_calls"] = {
            "target": 0,
            "measured": kept["http_calls_per_request"] - floor_tool["http_calls_per_request"],
            "met": kept["http_calls_per_request"] == floor_tool["http_calls_per_request"] and kept["calls_before_useful"] == 0,
        }
    print(machine.say())
    print(f"{'per request':<62}{'HTTP calls':>11}{'before useful':>14}{'median':>12}{'p99':>12}")
    for label, figures in results.items():
        unit = figures.get("unit", "ms")
        print(
            f"{label:<62}{figures['http_calls_per_request']:>11.1f}{figures['calls_before_useful']:>14.1f}"
            f"{figures['median']:>9} {unit}{figures['p99']:>9} {unit}"
        )
    for name, target in targets.items():
        print(f"target {name}: {'met' if target['met'] else 'MISSED'} (measured {target['measured']}, target {target['target']})")
    _results.write(args.output, {"requests": args.requests, "machine": machine.record, "targets": targets, "results": results})


if __name__ == "__main__":
    main()
