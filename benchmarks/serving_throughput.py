"""Local serving under load: requests/s and latency of the example agent, with OBO and without.

Three processes, as in production: the local workspace (benchmarks/_workspace.py, with bob
granted the index too, so all three users are answered and two go through the row filter),
the served agent (``obo_auth.serving.serve``), and this one, which keeps ``--in-flight``
requests (default 16) going from alice, bob and carol in turn (_load.py: keep-alive
connections, pre-encoded requests) and times each. Rows:

- **OBO**: the example agent (examples/handbook_agent/chat_agent.py), logged with
  ``obo_auth.log_model``: per request local serving mints the invoker's downscoped token and
  revokes it when the request ends; the agent reads the index as the user.
- **no OBO**: the same agent reading the index as its own identity
  (benchmarks/fixtures/no_obo_chat_agent.py), logged with mlflow alone and no user policy:
  serving only authenticates the caller.
- **..., chat client kept**: both again with the agent's chat client (its own identity)
  built once instead of per request (benchmarks/fixtures/kept_chat_client.py). The example
  builds it per request, and that construction (a new SSL context each time) is about half of
  the served agent's CPU, which hides what OBO costs; these rows show it.

Each is asked directly (``POST {serving}/invocations``) and through the workspace's relay
(``POST {workspace}/serving-endpoints/NAME/invocations``, as a Databricks client calls it).
Each user's cited sources are kept: with OBO only alice is cited the HR-only passage on the
question, without OBO every user is. The target is OBO costing at most 10% of the throughput
without it.

    .venv/bin/python benchmarks/serving_throughput.py [--requests 480] [--in-flight 16] [--no-relay] [--variants ...] [--output PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import _load
import _results
from _workspace import USERS, running_workspace

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
QUESTION = "How does parental leave pay work?"  # alice may read an hr-only passage on it; bob and carol may not
TARGET_MAX_OBO_COST = 0.10  # OBO may cost at most 10% of the throughput


# variant -> (the model file, whether it is the OBO agent); the pairs compared share a suffix
VARIANTS = {
    "OBO": ("examples/handbook_agent/chat_agent.py", True),
    "no OBO": ("benchmarks/fixtures/no_obo_chat_agent.py", False),
    "OBO, chat client kept": ("benchmarks/fixtures/obo_chat_agent_kept_client.py", True),
    "no OBO, chat client kept": ("benchmarks/fixtures/no_obo_chat_agent_kept_client.py", False),
}


def log_agents(workspace, variants: list[str]) -> dict[str, str]:
    """Logs the agents to the current MLflow store; their model URIs by variant."""
    import mlflow
    from mlflow.models.resources import DatabricksServingEndpoint, DatabricksVectorSearchIndex

    sys.path.insert(0, str(ROOT))
    from examples import handbook_agent

    import obo_auth

    code = [str(handbook_agent.LOGIC), str(handbook_agent.CHAT_AGENT), *(str(f) for f in FIXTURES.glob("*.py"))]
    # mlflow loads a models-from-code file while logging it without its code_paths on sys.path
    sys.path[:0] = [str(handbook_agent.HERE), str(FIXTURES)]
    uris = {}
    for variant in variants:
        model_file, obo = VARIANTS[variant]
        name = "handbook_" + variant.replace(" ", "_").replace(",", "").lower()
        if obo:  # as the example logs itself; its log-time predict gets obo_auth's stand-in
            if model_file == "examples/handbook_agent/chat_agent.py":
                uris[variant] = handbook_agent.log(handbook_agent.CHAT_AGENT, name=name).model_uri
            else:
                uris[variant] = obo_auth.log_model(str(ROOT / model_file), resources=handbook_agent_resources(), name=name, code_paths=code).model_uri
            continue
        # Without OBO: mlflow alone, no user auth policy; its log-time predict runs as the agent itself.
        saved = {key: os.environ.get(key) for key in workspace.agent_environment}
        os.environ.update(workspace.agent_environment)
        try:
            uris[variant] = mlflow.pyfunc.log_model(
                name=name,
                python_model=str(ROOT / model_file),
                code_paths=code,
                pip_requirements=["mlflow"],
                resources=[DatabricksVectorSearchIndex(index_name="main.docs.handbook_index"), DatabricksServingEndpoint(endpoint_name="chat-model")],
            ).model_uri
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return uris


def new_mlflow_store(root: Path) -> str:
    """A new MLflow store under ``root``, its artifacts beside it (mlflow's default root is ./mlruns)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{root / 'mlflow.db'}"
    SqlAlchemyStore(uri, (root / "artifacts").as_uri()).engine.dispose()
    return uri


def handbook_agent_resources():
    sys.path.insert(0, str(ROOT / "examples" / "handbook_agent"))
    try:
        from handbook_logic import RESOURCES
    finally:
        sys.path.pop(0)
    return RESOURCES


def load(url: str, tokens: dict[str, str], requests: int, in_flight: int, warm_up: int) -> dict:
    """``requests`` POSTs to ``url``, ``in_flight`` at a time, from the users in turn, after ``warm_up`` untimed ones."""
    body = json.dumps({"messages": [{"role": "user", "content": QUESTION}]}).encode()
    path = urlsplit(url).path
    outcome = _load.blast(url, [_load.Request("POST", path, token, body, user) for user, token in tokens.items()], requests, in_flight, warm_up)
    latency = _results.summary(outcome.latencies, digits=1)
    return {
        "requests": requests,
        "requests_per_s": round(outcome.per_s, 1),
        "statuses": {str(k): v for k, v in sorted(outcome.statuses.items())},
        "p50_ms": latency["median"],
        "p99_ms": latency["p99"],
        "load_generator_cpu_share": round(outcome.cpu_share, 2),
        "sources_seen": {user: sorted({uri for raw in bodies for uri in _sources(raw)}) for user, bodies in sorted(outcome.samples.items())},
    }


def _sources(raw: bytes) -> list[str]:
    try:
        return json.loads(raw).get("custom_outputs", {}).get("sources", [])
    except ValueError:
        return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=480, help="Timed requests per row (default 480: 160 per user).")
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--no-relay", action="store_true", help="Skip the rows through the workspace's relay.")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    _results.add_output_option(parser, "serving_throughput")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # mlflow's and obo_auth's log lines at logging time are not what is measured
    from obo_auth.serving import serve
    from obo_auth.serving.workspace_link import WorkspaceAccess

    results: dict[str, dict] = {}
    checkout = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="obo-auth-bench-") as scratch:
        os.environ["OBO_AUTH_HOME"] = str(Path(scratch, "home"))
        os.environ["MLFLOW_TRACKING_URI"] = new_mlflow_store(Path(scratch))
        os.environ["MLFLOW_RECORD_ENV_VARS_IN_MODEL_LOGGING"] = "false"
        os.chdir(scratch)  # nothing of mlflow's lands in the checkout (its defaults are relative: ./mlruns)
        with running_workspace() as workspace:
            print(f"logging {len(args.variants)} agents...", flush=True)
            models = log_agents(workspace, args.variants)
            with _results.Machine() as machine:
                for variant, model_uri in models.items():
                    name = "handbook-" + variant.replace(" ", "-").replace(",", "").lower()
                    with serve(model_uri, WorkspaceAccess(workspace.url, workspace.admin_token), endpoint=name) as endpoint:
                        assert endpoint.concurrent, f"{variant}: local serving would serve it one request at a time"
                        targets = {"direct": f"{endpoint.url}/invocations"}
                        if not args.no_relay:
                            targets["workspace relay"] = f"{workspace.url}/serving-endpoints/{name}/invocations"
                        for path, url in targets.items():
                            label = f"{variant}, {path}"
                            print(f"{label}...", flush=True)
                            results[label] = load(url, workspace.tokens, args.requests, args.in_flight, warm_up=args.in_flight)
        os.chdir(checkout)
    targets = {}
    for agent in ("", ", chat client kept"):
        for path in ("direct", "workspace relay"):
            with_obo, without = results.get(f"OBO{agent}, {path}"), results.get(f"no OBO{agent}, {path}")
            if with_obo and without:
                cost = 1 - with_obo["requests_per_s"] / without["requests_per_s"]
                key = f"obo_throughput_cost{agent.replace(',', '').replace(' ', '_')}_{path.replace(' ', '_')}"
                targets[key] = {"target": TARGET_MAX_OBO_COST, "measured": round(cost, 3), "met": cost <= TARGET_MAX_OBO_COST}
    print(machine.say())
    print(f"{args.in_flight} requests in flight from {', '.join(USERS)}; {args.requests} timed requests per row")
    print(f"{'agent, path':<44}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}  statuses")
    for label, figures in results.items():
        print(f"{label:<44}{figures['requests_per_s']:>12}{figures['p50_ms']:>10}{figures['p99_ms']:>10}  {figures['statuses']}")
    for label, figures in results.items():
        seen = figures["sources_seen"]
        only = sorted(set(seen.get("alice", [])) - set(seen.get("bob", [])) - set(seen.get("carol", [])))
        print(f"{label}: cited to alice only (an hr-only passage): {', '.join(u.rsplit('/', 1)[-1] for u in only) or 'none: every user got the same'}")
    for name, target in targets.items():
        print(f"target {name}: {'met' if target['met'] else 'MISSED'} (OBO costs {target['measured']:.1%} of the throughput; at most {target['target']:.0%})")
    _results.write(args.output, {"requests": args.requests, "in_flight": args.in_flight, "machine": machine.record, "targets": targets, "results": results})


if __name__ == "__main__":
    main()
