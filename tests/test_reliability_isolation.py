"""Isolation at load (issue 14): many requests of three users, 16 in flight, through local serving
and through a local Databricks App, streaming and not; no call attributed to the wrong user, no
answer holding another user's rows.

Every request asks the same handbook question with a marker of its own appended
(``... ref q00042``). The workspace is in this process, so the test sees each vector-search
query as it arrives: the marker in its ``query_text`` names the request it came from, the token
it carries names who it ran as. Then, per request:

- its answer holds what that user may read and nothing else: alice (group ``hr``) gets the
  HR-only chunk ``parental-leave#5``, carol handbook sources without it, bob no source and a
  ``permission_denied`` note;
- every query carrying its marker ran as its user, via the agent (never as another user, never
  as the agent itself); bob's markers reach no query at all;
- in the audit log, every call made with a token minted for a request is attributed to one
  principal, each request used exactly one minted token, and the agent's own identity only
  called ``chat-model``; every minted token is revoked once its answer has arrived.

CI runs a few hundred requests (well under two minutes on two cores). For the figures in the
README, run a larger load and read the printed line::

    OBO_AUTH_RELIABILITY_REQUESTS=10000 OBO_AUTH_RELIABILITY_APP_REQUESTS=2000 \\
        pytest -q -s tests/test_reliability_isolation.py

(no timing is asserted: the figures are printed, never checked).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from obo_auth.http_edge import bearer_token
from obo_auth.serving import serve, serve_app

REQUESTS = int(os.environ.get("OBO_AUTH_RELIABILITY_REQUESTS", "600"))
APP_REQUESTS = int(os.environ.get("OBO_AUTH_RELIABILITY_APP_REQUESTS", "150"))
IN_FLIGHT = 16
USERS = ("alice", "bob", "carol")
QUESTION = "How does parental leave pay work?"
ALICE_ONLY = "parental-leave#5"  # the handbook's HR-only chunk: alice (hr) may read it; bob and carol never
HR_ONLY = ("#5", "#17")  # the chunks whose audience is hr
INDEX = "main.docs.handbook_index"
INDEX_PATH = f"/api/2.0/vector-search/indexes/{INDEX}"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "handbook_agent"
MARKER = re.compile(r"ref (q\d{6})")
# The module (the package's ``routes`` attribute is its list of routes).
vector_search_routes = importlib.import_module("obo_auth.local.vectorsearch.routes")


@dataclass
class Seen:
    """The vector-search queries the workspace answered, as (marker, principal, actor, token fingerprint)."""

    queries: list[tuple[str | None, str, str | None, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def seen_queries(workspace, monkeypatch) -> Seen:
    """Records, for each vector-search query the workspace reads, its marker and who sent it."""
    seen = Seen()
    read_json = vector_search_routes.read_json

    async def reading(request, **kwargs):
        body = await read_json(request, **kwargs)
        token = workspace.state.identity.lookup(bearer_token(request) or "")
        if token is not None and isinstance(body.get("query_text"), str):
            found = MARKER.search(body["query_text"])
            with seen.lock:
                seen.queries.append((found.group(1) if found else None, token.principal.name, token.actor and token.actor.name, token.fingerprint))
        return body

    monkeypatch.setattr(vector_search_routes, "read_json", reading)
    return seen


@dataclass(frozen=True)
class Outcome:
    marker: str
    user: str
    how: str  # "direct", "relayed", "direct-stream", ...
    status: int
    text: str
    sources: tuple[str, ...]
    unavailable: tuple[str, ...]  # the reasons of the tools the user could not use


def plan(count: int) -> list[tuple[str, str, bool]]:
    """(marker, user, streamed) for ``count`` requests: the users in turn, every other one streamed
    (a different pairing each round, so each user gets both)."""
    return [(f"q{i:06d}", USERS[i % 3], (i // 3 + i) % 2 == 1) for i in range(count)]


def run_load(send, requests: list[tuple[str, str, bool]]) -> tuple[list[Outcome], float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
        outcomes = list(pool.map(lambda r: send(*r), requests))
    return outcomes, time.perf_counter() - started


def sse_events(text: str) -> list[dict]:
    return [json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ") and line != "data: [DONE]"]


def check_outcomes(outcomes: list[Outcome]) -> dict[str, int]:
    """Each answer holds its user's rows only; returns how many answers were wrong, by way."""
    wrong: Counter[str] = Counter()
    for o in outcomes:
        assert o.status == 200, (o.marker, o.user, o.how, o.status, o.text[:300])
        if o.user == "alice":
            ok = any(s.endswith(ALICE_ONLY) for s in o.sources) and not o.unavailable
        elif o.user == "carol":
            ok = bool(o.sources) and not any(s.endswith(HR_ONLY) for s in o.sources) and ALICE_ONLY not in o.text and not o.unavailable
        else:  # bob may not read the index: no source, and the answer says why
            ok = o.sources == () and o.unavailable == ("permission_denied",) and ALICE_ONLY not in o.text
        wrong[o.how] += not ok
        assert ok, f"request {o.marker} of {o.user} ({o.how}) got another user's view: sources {o.sources}, unavailable {o.unavailable}"
    return dict(wrong)


def check_attribution(workspace, seen: Seen, outcomes: list[Outcome], audit_before: int) -> int:
    """Every query ran as the user whose request carried its marker; every minted token's calls are
    one principal's; each request used one token. Returns the number of misattributed calls (0)."""
    user_of = {o.marker: f"{o.user}@example.com" for o in outcomes}
    misattributed = [(m, p, a) for m, p, a, _ in seen.queries if m is None or user_of.get(m) != p or a != "obo-agent"]
    assert not misattributed, f"queries that ran as someone other than the user who asked: {misattributed[:10]}"
    queried = Counter(m for m, *_ in seen.queries)
    for o in outcomes:
        if o.user == "bob":
            assert queried[o.marker] == 0, f"bob's request {o.marker} reached the index as someone"
        else:
            assert queried[o.marker] >= 1, f"{o.user}'s request {o.marker} never queried the index"
    # One token per request: the fingerprints of each request's queries are one, and never another request's.
    tokens_of: dict[str, set[str]] = defaultdict(set)
    markers_of: dict[str, set[str]] = defaultdict(set)
    for marker, _, _, token in seen.queries:
        tokens_of[marker].add(token)
        markers_of[token].add(marker)
    assert all(len(tokens) == 1 for tokens in tokens_of.values()), "a request queried with two tokens"
    assert all(len(markers) == 1 for markers in markers_of.values()), "a token served two requests"

    records = workspace.audit()[audit_before:]
    on_behalf = [r for r in records if r.actor == "obo-agent"]
    principals_of: dict[str, set[str]] = defaultdict(set)
    for record in on_behalf:
        principals_of[record.token_fingerprint].add(record.principal)
    mixed = {token: principals for token, principals in principals_of.items() if len(principals) != 1}
    assert not mixed, f"tokens whose calls were attributed to several principals: {mixed}"
    requests_of = Counter(o.user for o in outcomes)
    tokens_per_user = Counter(next(iter(p)).split("@")[0] for p in principals_of.values())
    assert tokens_per_user == requests_of, f"minted tokens used per user {dict(tokens_per_user)} != requests per user {dict(requests_of)}"
    for marker, tokens in tokens_of.items():  # the workspace attributed each query's token to the request's user
        assert principals_of[next(iter(tokens))] == {user_of[marker]}
    # (An App's service principal also signs in with its client credentials: /oidc/v1/token.)
    own = {r.resource for r in records if r.principal == "obo-agent" and r.path != "/oidc/v1/token"}
    assert own <= {"serving_endpoint:chat-model"}, f"the agent's own identity reached {own}"
    return len(misattributed) + len(mixed)


@dataclass(frozen=True)
class Load:
    """A load run, checked: its outcomes, wall time, misattributed calls and answers holding
    another user's rows (both 0 once checked), and where the audit stood before it."""

    outcomes: list[Outcome]
    wall: float
    misattributed: int
    leaked: int
    audit_before: int


def report(capsys, what: str, load: Load) -> None:
    count = len(load.outcomes)
    line = (
        f"{what}: {count} requests ({dict(Counter(o.how for o in load.outcomes))}), {IN_FLIGHT} in flight, 3 users: "
        f"{load.wall:.1f} s wall, {count / load.wall:.1f} requests/s; misattributed calls: {load.misattributed}; "
        f"answers with another user's rows: {load.leaked}"
    )
    with capsys.disabled():
        print(f"\n{line}")


def answered(marker: str, user: str, how: str, text: str, outputs: dict) -> Outcome:
    """The outcome of a request answered 200 with ``text`` and the agent's ``custom_outputs``."""
    unavailable = tuple(t["reason"] for t in outputs.get("unavailable_tools", []))
    return Outcome(marker, user, how, 200, text, tuple(outputs.get("sources", [])), unavailable)


def load_and_check(workspace, seen: Seen, send, count: int, ways: set[str]) -> Load:
    """``count`` requests sent 16 at a time, each answer and every query checked."""
    audit_before = len(workspace.audit())
    outcomes, wall = run_load(send, plan(count))
    wrong = check_outcomes(outcomes)
    misattributed = check_attribution(workspace, seen, outcomes, audit_before)
    assert set(wrong) == ways and not any(wrong.values())
    return Load(outcomes, wall, misattributed, sum(wrong.values()), audit_before)


# -- local serving ------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["example", "kept-tool"])
def chat_endpoint(request, workspace):
    """The example agent as shipped (its retriever built per request), and the same agent with its
    retriever kept in a module global across requests and users: the natural mistake, served."""
    logged = request.getfixturevalue("logged_handbook_agent" if request.param == "example" else "logged_kept_tool_agent")
    with serve(logged.model_uri, workspace, f"reliability-{request.param}") as endpoint:
        yield endpoint


def test_thousands_of_requests_of_three_users_through_local_serving_never_mix(workspace, chat_endpoint, seen_queries, minted, live_request_tokens, capsys):
    tokens = {user: workspace.issue_token(user) for user in USERS}
    direct = f"{chat_endpoint.url}/invocations"
    relayed = f"{workspace.url}/serving-endpoints/{chat_endpoint.endpoint}/invocations"  # as a Databricks client calls it
    http = httpx.Client(timeout=120, trust_env=False, limits=httpx.Limits(max_connections=2 * IN_FLIGHT))

    def send(marker: str, user: str, streamed: bool) -> Outcome:
        way = "relayed" if int(marker[1:]) % 4 >= 2 else "direct"
        body = {"messages": [{"role": "user", "content": f"{QUESTION} ref {marker}"}], "stream": streamed}
        response = http.post(relayed if way == "relayed" else direct, json=body, headers={"Authorization": f"Bearer {tokens[user]}"})
        how = f"{way}-stream" if streamed else way
        if response.status_code != 200:
            return Outcome(marker, user, how, response.status_code, response.text, (), ())
        if streamed:
            chunks = sse_events(response.text)
            text = "".join(c["delta"]["content"] for c in chunks if "delta" in c)
            outputs = chunks[-1].get("custom_outputs") or {}
        else:
            answer = response.json()
            text, outputs = answer["messages"][-1]["content"], answer.get("custom_outputs") or {}
        return answered(marker, user, how, text, outputs)

    with http:
        ways = {"direct", "relayed", "direct-stream", "relayed-stream"}
        load = load_and_check(workspace, seen_queries, send, REQUESTS, ways)
    # The kept tool really was kept: its index read (the tool's construction) in the first wave of
    # requests only, not per request as the example does.
    built = sum(r.method == "GET" and r.path == INDEX_PATH and r.actor == "obo-agent" for r in workspace.audit()[load.audit_before:])
    readers = sum(o.user != "bob" for o in load.outcomes)  # the requests whose user may read the index
    assert built < 2 * IN_FLIGHT if chat_endpoint.endpoint.endswith("kept-tool") else built >= readers, built
    assert len(minted) == len(load.outcomes) and not live_request_tokens(workspace, minted), "a token minted for a request outlived it"
    report(capsys, f"local serving (ChatAgent, examples/handbook_agent, {chat_endpoint.endpoint})", load)


# -- a Databricks App ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(workspace):
    with serve_app("app:app", workspace, "reliability-app", app_dir=EXAMPLE) as served:
        yield served


def test_hundreds_of_requests_of_three_users_through_a_local_app_never_mix(workspace, app, seen_queries, minted, live_request_tokens, capsys):
    tokens = {user: workspace.issue_token(user) for user in USERS}
    http = httpx.Client(base_url=app.url, timeout=120, trust_env=False, limits=httpx.Limits(max_connections=2 * IN_FLIGHT))

    def send(marker: str, user: str, streamed: bool) -> Outcome:
        body = {"input": [{"role": "user", "content": f"{QUESTION} ref {marker}"}], "stream": streamed}
        response = http.post("/responses", json=body, headers={"Authorization": f"Bearer {tokens[user]}"})
        how = "app-stream" if streamed else "app"
        if response.status_code != 200:
            return Outcome(marker, user, how, response.status_code, response.text, (), ())
        if streamed:
            done = [e for e in sse_events(response.text) if e.get("type") == "response.output_item.done"]
            text = done[-1]["item"]["content"][0]["text"]
            outputs = done[-1].get("custom_outputs") or {}
        else:
            answer = response.json()
            text, outputs = answer["output"][0]["content"][0]["text"], answer.get("custom_outputs") or {}
        return answered(marker, user, how, text, outputs)

    with http:
        load = load_and_check(workspace, seen_queries, send, APP_REQUESTS, {"app", "app-stream"})
    assert len(minted) == len(load.outcomes) and not live_request_tokens(workspace, minted), "a token forwarded for a request outlived it"
    report(capsys, "local Databricks App (mlflow agent server, examples/handbook_agent/app.py)", load)
