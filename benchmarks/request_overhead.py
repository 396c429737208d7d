"""What building a request's clients costs: HTTP calls and time, obo_auth vs the docs pattern.

Runs against a local workspace with this process made to look like Model Serving (the
runtime's token slot, credentials file and host variable), as REFERENCE.md measured it.
Per request, each pattern builds a user client and a system client and makes one call as
the user (``me()``); the next rows add a retriever tool, built per request or built once and
kept across requests (safe since tools act for the request they are used in), and one
query; the last row is obo_auth's own cost with no HTTP at all (decorator, invoker read,
both clients). Prints a table and writes the figures (_results.py says where).

    .venv/bin/python benchmarks/request_overhead.py [--requests 200] [--output PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
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


def docs_pattern(with_tool: bool) -> None:
    user = WorkspaceClient(credentials_strategy=ModelServingUserCredentials())
    WorkspaceClient()  # the agent's own client, built per request as the docs show
    if with_tool:
        VectorSearchRetrieverTool(index_name=INDEX, workspace_client=user, tool_description="handbook").execute(query="vacation")
    else:
        user.current_user.me()


@obo_auth.on_behalf_of_user
def obo_pattern(with_tool: bool) -> None:
    req = obo_auth.current_request()
    req.system_client
    if with_tool:
        req.require("handbook", lambda: VectorSearchRetrieverTool(index_name=INDEX, workspace_client=req.user_client, tool_description="handbook")).execute(query="vacation")
    else:
        req.user_client.current_user.me()


_kept_tool: list[VectorSearchRetrieverTool] = []


@obo_auth.on_behalf_of_user
def obo_kept_tool(with_tool: bool) -> None:
    req = obo_auth.current_request()
    if not _kept_tool:  # built in the first request, as an agent caching it on self would
        _kept_tool.append(VectorSearchRetrieverTool(index_name=INDEX, workspace_client=req.user_client, tool_description="handbook"))
    _kept_tool[0].execute(query="vacation")


@obo_auth.on_behalf_of_user
def obo_no_http(with_tool: bool) -> None:
    req = obo_auth.current_request()
    req.system_client
    req.user_client


def measure(workspace: LocalWorkspace, pattern, with_tool: bool, requests: int) -> dict:
    pattern(with_tool)  # warm-up: imports and per-process resolution
    before = len(workspace.audit())
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        pattern(with_tool)
        times.append((time.perf_counter() - start) * 1000)
    return {
        "http_calls_per_request": (len(workspace.audit()) - before) / requests,
        "median_ms": round(statistics.median(times), 3),
        "p90_ms": round(statistics.quantiles(times, n=10)[-1], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    _results.add_output_option(parser, "request_overhead")
    args = parser.parse_args()
    results = {}
    with LocalWorkspace() as workspace, tempfile.TemporaryDirectory() as credentials:
        os.environ["MLFLOW_TRACKING_URI"] = Path(credentials, "mlruns").as_uri()  # traces stay out of the way
        runtime.install(workspace.url, workspace.issue_token("obo-agent"), Path(credentials))
        os.environ["DATABRICKS_HOST"] = workspace.url  # as REFERENCE.md's 9-call measurement
        with runtime.invoker(workspace.issue_token("alice", scopes=SCOPES, actor="obo-agent")):
            for with_tool in (False, True):
                for name, pattern in (("docs pattern", docs_pattern), ("obo_auth", obo_pattern)):
                    label = f"{name}{' + retriever tool' if with_tool else ''}"
                    results[label] = measure(workspace, pattern, with_tool, args.requests if not with_tool else max(20, args.requests // 10))
            results["obo_auth + retriever tool kept"] = measure(workspace, obo_kept_tool, True, max(20, args.requests // 10))
            results["obo_auth, no HTTP (own overhead)"] = measure(workspace, obo_no_http, False, args.requests * 10)
    print(f"{'pattern':<36}{'HTTP calls/request':>20}{'median ms':>12}{'p90 ms':>10}")
    for label, figures in results.items():
        print(f"{label:<36}{figures['http_calls_per_request']:>20.1f}{figures['median_ms']:>12}{figures['p90_ms']:>10}")
    _results.write(args.output, {"requests": args.requests, "cpus": os.cpu_count(), "results": results})


if __name__ == "__main__":
    main()
