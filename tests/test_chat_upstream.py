"""Bring your own model: a chat endpoint the seed backs with an OpenAI-compatible upstream, over real
HTTP. The upstream is a small stub served by uvicorn on loopback that records every request and
answers deterministically (whole and as SSE). The unmodified ``DatabricksOpenAI`` and databricks-sdk
call the local workspace as alice with a downscoped token (as Model Serving gives an agent for its
invoker); the workspace authenticates, checks the scope and CAN_QUERY, audits as alice, and relays
to the stub with the seed's API key, never alice's token nor any header of hers.

Siblings: tests/test_serving_endpoints.py (the local chat model), tests/test_connections.py (the
other place a seed credential goes upstream), tests/test_workspace_invocations.py (agents relayed).
"""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import threading
import time

import httpx
import openai
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.serving import ChatMessage, ChatMessageRole
from databricks_openai import DatabricksOpenAI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from obo_auth.local import LocalWorkspace, SeedError
from obo_auth.local.seed import load_seed
from obo_auth.local.server import BackgroundServer
from obo_auth.local.serving import relay
from obo_auth.local.serving.seed import chat_upstream
from seeds import default_seed

DEFAULT = default_seed()
SCOPE = ["serving.serving-endpoints"]
# The upstreams' API keys: fake, and never to show anywhere but in the stub's Authorization header.
API_KEY = "sk-upstream-key-3f9a1c77"
DEAD_KEY = "sk-dead-upstream-key-0b12"
LOCKED_KEY = "sk-locked-upstream-key-77de"
KEYS = [API_KEY, DEAD_KEY, LOCKED_KEY]
STREAMED = ["Hello", " from", " the", " stub"]
# What the relay may send upstream: its own request headers, none of the caller's.
RELAY_HEADERS = {"host", "content-type", "accept", "accept-encoding", "authorization", "content-length", "user-agent", "connection"}


# -- a recording OpenAI-compatible upstream ------------------------------------------------------------
class Stub:
    """Answers POST {base}/chat/completions and {base}/responses like an OpenAI-compatible server.

    Bases: /v1 answers; /slow waits until released; /locked refuses with 401 (echoing the key it
    was given, as some servers do); /v1 with the message "wait for the test" streams its first
    chunk, then waits for ``release`` before the rest (so a test sees whether chunks arrive unbuffered).
    """

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.release = threading.Event()
        self.released_in_time: bool | None = None
        self.app = Starlette(routes=[Route("/{path:path}", self._answer, methods=["POST"])])

    async def _answer(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.received.append({"path": request.url.path, "headers": dict(request.headers), "body": body})
        path, model = request.url.path, body.get("model")
        if path.startswith("/slow/"):
            while not self.release.is_set():
                await asyncio.sleep(0.01)
            return JSONResponse({"late": True})
        if path.startswith("/locked/"):
            given = request.headers.get("authorization", "")
            return JSONResponse({"error": {"message": f"Incorrect API key provided: {given}", "type": "invalid_request_error"}}, status_code=401)
        if path.endswith("/responses"):
            return JSONResponse(_response(model, f"stub response from {model}"))
        if path.endswith("/chat/completions"):
            question = body["messages"][-1]["content"]
            if model == "no-such-model":
                return JSONResponse({"error": {"message": f"model {model!r} not found", "type": "not_found_error"}}, status_code=404)
            if body.get("stream"):
                return StreamingResponse(self._chunks(model, question), media_type="text/event-stream")
            return JSONResponse(_completion(model, f"stub answer from {model} to: {question}"))
        return JSONResponse({"error": {"message": f"no route {path}"}}, status_code=404)

    async def _chunks(self, model: str, question: str):
        for i, piece in enumerate(STREAMED):
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            yield _sse(model, delta, None)
            if i == 0 and question == "wait for the test":
                deadline = time.monotonic() + 5
                while not self.release.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                self.released_in_time = self.release.is_set()
        yield _sse(model, {}, "stop")
        yield "data: [DONE]\n\n"


def _completion(model: str, text: str) -> dict:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
    }


def _sse(model: str, delta: dict, finish_reason: str | None) -> str:
    chunk = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 1700000000, "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
    return f"data: {json.dumps(chunk)}\n\n"


def _response(model: str, text: str) -> dict:
    return {
        "id": "resp_stub",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "model": model,
        "output": [{"type": "message", "id": "msg_stub", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": []}]}],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed_with(endpoints: list[dict], grants: list[tuple[str, str]]) -> dict:
    """The default seed plus these serving endpoints, with CAN_QUERY grants (principal, endpoint)."""
    seed = copy.deepcopy(DEFAULT)
    seed["serving_endpoints"] = seed["serving_endpoints"] + endpoints
    seed["grants"] = seed["grants"] + [{"principal": p, "privilege": "CAN_QUERY", "on": {"serving_endpoint": e}} for p, e in grants]
    return seed


@pytest.fixture(scope="module")
def stub():
    recorder = Stub()
    with BackgroundServer(recorder.app) as server:
        recorder.url = server.url
        yield recorder
    recorder.release.set()


@pytest.fixture(scope="module")
def seed(stub) -> dict:
    endpoints = [
        {"name": "my-llm", "kind": "chat", "upstream": {"url": f"{stub.url}/v1/", "model": "llama3.2", "api_key": API_KEY}},
        {"name": "keyless-llm", "kind": "chat", "upstream": {"url": f"{stub.url}/v1"}},  # no key; model: the endpoint's name
        {"name": "missing-model", "kind": "chat", "upstream": {"url": f"{stub.url}/v1", "model": "no-such-model"}},
        {"name": "dead-llm", "kind": "chat", "upstream": {"url": f"http://127.0.0.1:{free_port()}/v1", "api_key": DEAD_KEY}},
        {"name": "slow-llm", "kind": "chat", "upstream": {"url": f"{stub.url}/slow"}},
        {"name": "locked-llm", "kind": "chat", "upstream": {"url": f"{stub.url}/locked", "api_key": LOCKED_KEY}},
    ]
    # my-llm: alice only (bob and carol hold nothing on it); the others: every identity.
    others = [e["name"] for e in endpoints[1:]]
    return seed_with(endpoints, [("alice@example.com", "my-llm"), *(("users", name) for name in others)])


@pytest.fixture(scope="module")
def ws(seed):
    with LocalWorkspace(seed) as workspace:
        yield workspace


@pytest.fixture(autouse=True)
def fresh(request):
    """Each test sees only what its own requests did upstream."""
    if "stub" in request.fixturenames:
        request.getfixturevalue("stub").received.clear()


def agent_token(ws: LocalWorkspace, user: str = "alice") -> str:
    """What Model Serving hands an agent for its invoker: downscoped, the agent as actor."""
    return ws.issue_token(user, scopes=SCOPE, actor="obo-agent")


def llm(ws: LocalWorkspace, token: str) -> DatabricksOpenAI:
    # max_retries=0: the openai client retries 5xx, which would hide how quickly the workspace answered.
    return DatabricksOpenAI(workspace_client=WorkspaceClient(host=ws.url, token=token), max_retries=0)


def post(ws: LocalWorkspace, token: str, body: dict, path: str = "/serving-endpoints/chat/completions") -> httpx.Response:
    return httpx.post(ws.url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def assert_nothing_of_the_caller(seen: dict, token: str) -> None:
    """The stub got none of the caller's headers and nowhere the caller's token."""
    assert set(seen["headers"]) <= RELAY_HEADERS, f"caller headers went upstream: {set(seen['headers']) - RELAY_HEADERS}"
    assert not any(value == token or token in value for value in seen["headers"].values())
    assert token not in json.dumps(seen)
    assert "openai" not in seen["headers"].get("user-agent", "").lower() and "databricks" not in seen["headers"].get("user-agent", "").lower()


QUESTION = [{"role": "user", "content": "How many vacation days do I get?"}]


# -- alice reaches the upstream model, with the seed's key and nothing of hers -------------------------
def test_alice_gets_the_upstream_models_whole_answer_through_databricks_openai(ws, stub):
    token = agent_token(ws)

    answer = llm(ws, token).chat.completions.create(model="my-llm", messages=QUESTION)

    assert answer.choices[0].message.content == "stub answer from llama3.2 to: How many vacation days do I get?"
    (seen,) = stub.received
    assert seen["path"] == "/v1/chat/completions"
    assert seen["body"] == {"model": "llama3.2", "messages": QUESTION}
    assert seen["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert seen["headers"]["content-type"] == "application/json" and seen["headers"]["accept"] == "application/json"
    assert_nothing_of_the_caller(seen, token)


def test_alice_gets_the_upstream_models_stream_through_databricks_openai(ws, stub):
    token = agent_token(ws)

    stream = llm(ws, token).chat.completions.create(model="my-llm", messages=QUESTION, stream=True)
    pieces = [chunk.choices[0].delta.content for chunk in stream if chunk.choices and chunk.choices[0].delta.content]

    assert pieces == STREAMED
    (seen,) = stub.received
    assert seen["body"]["stream"] is True and seen["body"]["model"] == "llama3.2"
    assert seen["headers"]["accept"] == "text/event-stream" and seen["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert_nothing_of_the_caller(seen, token)


def test_the_stream_is_relayed_unbuffered(ws, stub):
    stub.release.clear()
    stream = llm(ws, agent_token(ws)).chat.completions.create(model="my-llm", messages=[{"role": "user", "content": "wait for the test"}], stream=True)
    pieces = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
            stub.release.set()  # the first chunk came while the stub still holds the rest back
    assert pieces == STREAMED
    assert stub.released_in_time is True


def test_chat_databricks_gets_the_upstream_models_answer_whole_and_streamed(ws, stub):
    from databricks_langchain import ChatDatabricks

    token = agent_token(ws)
    chat = ChatDatabricks(endpoint="my-llm", workspace_client=WorkspaceClient(host=ws.url, token=token))

    assert chat.invoke("hi").content == "stub answer from llama3.2 to: hi"
    assert "".join(chunk.content for chunk in chat.stream("hi")) == "".join(STREAMED)
    assert [seen["body"]["model"] for seen in stub.received] == ["llama3.2", "llama3.2"]
    for seen in stub.received:
        assert_nothing_of_the_caller(seen, token)


def test_the_model_defaults_to_the_endpoint_name_and_no_key_means_no_authorization(ws, stub):
    token = agent_token(ws, "bob")  # keyless-llm: every identity may query it

    answer = llm(ws, token).chat.completions.create(model="keyless-llm", messages=QUESTION)

    assert answer.choices[0].message.content.startswith("stub answer from keyless-llm")
    (seen,) = stub.received
    assert seen["body"]["model"] == "keyless-llm" and "authorization" not in seen["headers"]
    assert_nothing_of_the_caller(seen, token)


def test_the_audit_shows_alice_via_the_agent_and_where_the_call_went_never_the_key(ws, stub):
    token = agent_token(ws)
    llm(ws, token).chat.completions.create(model="my-llm", messages=QUESTION)

    record = ws.audit()[-1]
    assert (record.principal, record.actor, record.method, record.path) == ("alice@example.com", "obo-agent", "POST", "/serving-endpoints/chat/completions")
    assert (record.resource, record.decision, record.status, record.scopes) == ("serving_endpoint:my-llm", "allow", 200, tuple(SCOPE))
    assert f"relayed to the upstream model 'llama3.2' at {stub.url}/v1/chat/completions" in record.reason
    assert "CAN_QUERY" in record.reason
    assert API_KEY not in repr(record) and token not in repr(record)


# -- refused before the upstream is called ----------------------------------------------------------------
def test_bob_without_can_query_is_refused_before_the_upstream_is_called(ws, stub):
    with pytest.raises(openai.PermissionDeniedError, match="CAN_QUERY"):
        llm(ws, agent_token(ws, "bob")).chat.completions.create(model="my-llm", messages=QUESTION)

    assert stub.received == []
    record = ws.audit()[-1]
    assert (record.principal, record.actor, record.resource, record.decision, record.status) == ("bob@example.com", "obo-agent", "serving_endpoint:my-llm", "deny", 403)


def test_a_token_without_the_serving_scope_is_refused_before_the_upstream_is_called(ws, stub):
    token = ws.issue_token("alice", scopes=["sql.statement-execution"], actor="obo-agent")

    response = post(ws, token, {"model": "my-llm", "messages": QUESTION})

    assert response.status_code == 403 and "Invalid scope" in response.json()["message"] and "serving.serving-endpoints" in response.json()["message"]
    assert stub.received == []


def test_an_unauthenticated_caller_is_refused_before_the_upstream_is_called(ws, stub):
    response = post(ws, "dapi-not-a-token", {"model": "my-llm", "messages": QUESTION})
    assert response.status_code == 401 and stub.received == []


# -- the other routes ----------------------------------------------------------------------------------------
def test_the_responses_route_is_forwarded_to_the_upstreams_responses(ws, stub):
    token = agent_token(ws)

    response = llm(ws, token).responses.create(model="my-llm", input="hi")

    assert response.output_text == "stub response from llama3.2"
    (seen,) = stub.received
    assert seen["path"] == "/v1/responses" and seen["body"] == {"model": "llama3.2", "input": "hi"}
    assert seen["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert_nothing_of_the_caller(seen, token)
    assert f"at {stub.url}/v1/responses" in ws.audit()[-1].reason


def test_sdk_query_of_the_endpoints_invocations_is_forwarded_as_chat_completions(ws, stub):
    token = agent_token(ws)
    w = WorkspaceClient(host=ws.url, token=token)

    answer = w.serving_endpoints.query(name="my-llm", messages=[ChatMessage(role=ChatMessageRole.USER, content="hi")], max_tokens=20, extra_params={"top_k": "3"})

    assert answer.choices[0].message.content == "stub answer from llama3.2 to: hi"
    (seen,) = stub.received
    assert seen["path"] == "/v1/chat/completions"
    assert seen["body"] == {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20, "top_k": "3"}
    assert_nothing_of_the_caller(seen, token)
    record = ws.audit()[-1]
    assert record.path == "/serving-endpoints/my-llm/invocations" and record.principal == "alice@example.com" and "relayed to the upstream model" in record.reason


def test_invocations_without_messages_are_a_400_naming_the_routes_to_use(ws, stub):
    response = post(ws, agent_token(ws), {"dataframe_records": [{"q": "hi"}]}, path="/serving-endpoints/my-llm/invocations")
    assert response.status_code == 400
    assert "/serving-endpoints/chat/completions" in response.json()["message"] and stub.received == []


def test_the_endpoint_reads_as_an_external_chat_model(ws):
    w = WorkspaceClient(host=ws.url, token=agent_token(ws))
    endpoint = w.serving_endpoints.get("my-llm")
    assert endpoint.task == "llm/v1/chat"
    assert endpoint.config.served_entities[0].external_model.name == "llama3.2"
    assert API_KEY not in json.dumps(endpoint.as_dict())


def test_an_upstream_error_is_relayed_with_its_status(ws, stub):
    with pytest.raises(openai.NotFoundError, match="no-such-model"):
        llm(ws, agent_token(ws)).chat.completions.create(model="missing-model", messages=QUESTION)
    assert len(stub.received) == 1 and ws.audit()[-1].status == 404


# -- an upstream that cannot answer -------------------------------------------------------------------------
def test_an_unreachable_upstream_is_a_quick_502_naming_the_endpoint_and_url_never_the_key(ws, seed):
    started = time.monotonic()
    response = post(ws, agent_token(ws), {"model": "dead-llm", "messages": QUESTION})

    assert time.monotonic() - started < 5
    assert response.status_code == 502 and response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    dead_url = next(e for e in seed["serving_endpoints"] if e["name"] == "dead-llm")["upstream"]["url"]
    assert "'dead-llm'" in response.json()["message"] and dead_url in response.json()["message"]
    assert DEAD_KEY not in response.text
    assert ws.audit()[-1].status == 502 and DEAD_KEY not in repr(ws.audit()[-1])


def test_an_unreachable_upstream_through_databricks_openai_is_an_internal_server_error_not_a_hang(ws):
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError, match="dead-llm"):
        llm(ws, agent_token(ws)).chat.completions.create(model="dead-llm", messages=QUESTION)
    assert time.monotonic() - started < 5


def test_an_upstream_slower_than_the_limit_is_a_504(ws, stub, monkeypatch):
    monkeypatch.setattr(relay, "MODEL_TIMEOUT_SECONDS", 0.5)  # the limit is 300 s; the workspace runs in this process
    stub.release.clear()
    try:
        response = post(ws, agent_token(ws), {"model": "slow-llm", "messages": QUESTION})
    finally:
        stub.release.set()
    assert response.status_code == 504 and response.json()["error_code"] == "DEADLINE_EXCEEDED"
    assert "'slow-llm'" in response.json()["message"]


def test_an_upstream_refusing_the_seeds_key_is_a_502_that_never_shows_it(ws, stub):
    token = agent_token(ws)
    response = post(ws, token, {"model": "locked-llm", "messages": QUESTION})

    assert response.status_code == 502  # not the 401 that would blame the caller's valid token
    assert "api_key" in response.json()["message"] and "Incorrect API key" in response.json()["message"]
    assert LOCKED_KEY not in response.text and LOCKED_KEY not in repr(ws.audit()[-1])
    assert stub.received[0]["headers"]["authorization"] == f"Bearer {LOCKED_KEY}"


# -- the key: nowhere but upstream -----------------------------------------------------------------------------
def test_no_key_shows_in_answers_the_audit_reprs_or_dumps(ws, seed, stub, caplog):
    token = agent_token(ws)
    answers = [post(ws, token, {"model": name, "messages": QUESTION}) for name in ("my-llm", "dead-llm", "locked-llm", "missing-model")]
    answers.append(post(ws, agent_token(ws, "bob"), {"model": "my-llm", "messages": QUESTION}))
    answers.append(httpx.get(ws.url + "/api/2.0/serving-endpoints", headers={"Authorization": f"Bearer {token}"}))
    assert [a.status_code for a in answers] == [200, 502, 502, 404, 403, 200]

    backend = ws.state.services["serving"]
    loaded = load_seed(seed)
    shown = [a.text for a in answers] + [repr(r) for r in ws.audit()] + [caplog.text]
    shown += [repr(ws.state), repr(backend), repr(backend.endpoints()), repr(backend.endpoint("my-llm")), str(backend.endpoint("my-llm"))]
    shown += [repr(loaded), str(loaded), loaded.model_dump_json(), json.dumps(loaded.model_dump(mode="json"))]
    for key in KEYS:
        assert not any(key in text for text in shown), f"an upstream key shows in: {[t[:80] for t in shown if key in t]}"
    # A Python dump loads again, so it keeps the key as the seed wrote it (as connections' credentials do).
    assert load_seed(loaded.model_dump()).serving_endpoints[-1].upstream.api_key.get_secret_value() == LOCKED_KEY


# -- bad seeds: one line, never the key ---------------------------------------------------------------------------
def one_endpoint(**fields) -> dict:
    return seed_with([{"name": "byo", "kind": "chat", **fields}], [])


@pytest.mark.parametrize(
    ("endpoint", "where", "says"),
    [
        ({"upstream": {"url": "http://10.1.2.3:8000/v1", "api_key": API_KEY}}, "upstream.url", "in clear"),
        ({"upstream": {"url": "http://models.example.com/v1", "api_key": API_KEY}}, "upstream.url", "use https://"),
        ({"upstream": {"url": "ftp://127.0.0.1/v1", "api_key": API_KEY}}, "upstream.url", "base URL such as"),
        ({"upstream": {"url": "https://example.com/v1?key=k", "api_key": API_KEY}}, "upstream.url", "a query or a fragment"),
        ({"upstream": {"url": "https://example.com/a/../b", "api_key": API_KEY}}, "upstream.url", "no '.' or '..'"),
        ({"upstream": {"url": f"https://user:{API_KEY}@example.com/v1"}}, "upstream.url", "user info"),
        ({"kind": "embedding", "upstream": {"url": "http://127.0.0.1:11434/v1", "api_key": API_KEY}}, "upstream'", "only a chat endpoint"),
        ({"kind": "agent", "upstream": {"url": "http://127.0.0.1:11434/v1", "api_key": API_KEY}}, "upstream'", "only a chat endpoint"),
        ({"upstream": {"url": "http://127.0.0.1:11434/v1", "api_key": 31415926535}}, "upstream.api_key", "valid string"),
        ({"upstream": {"url": "http://127.0.0.1:11434/v1", "api_key": [API_KEY]}}, "upstream.api_key", "valid string"),
        ({"upstream": {"url": "http://127.0.0.1:11434/v1", "api_key": f"{API_KEY} x"}}, "upstream.api_key", "without spaces"),
        ({"upstream": f"http://127.0.0.1:11434/v1 {API_KEY}"}, "upstream'", "valid dictionary"),
        ({"upstream": {"url": "http://127.0.0.1:11434/v1", "model": "two words"}}, "upstream.model", "without spaces"),
        ({"upstream": {"url": "http://127.0.0.1:11434/v1", "key": API_KEY}}, "upstream.key'", "unknown field"),
    ],
    ids=[
        "http off the machine", "http to a host name", "not http", "a query", "a dot segment", "user info", "on an embedding endpoint",
        "on an agent endpoint", "key a number", "key a list", "key with a space", "upstream a string", "model with a space", "unknown field",
    ],
)
def test_a_bad_upstream_is_a_one_line_seed_error_without_the_key(endpoint, where, says):
    with pytest.raises(SeedError) as refused:
        load_seed(one_endpoint(**endpoint))
    message = str(refused.value)
    problems = message.splitlines()[1:]
    assert len(problems) == 1, message
    assert f"field 'serving_endpoints[2].{where}" in problems[0] and says in problems[0]
    assert API_KEY not in message and "31415926535" not in message


@pytest.mark.parametrize(
    "serving_endpoints",
    [{"name": "byo", "kind": "chat", "upstream": {"url": "x", "api_key": API_KEY}}, [f"byo chat {API_KEY}"]],
    ids=["section a mapping", "entry a string"],
)
def test_a_misshapen_serving_section_never_shows_a_key(serving_endpoints):
    seed = copy.deepcopy(DEFAULT)
    seed["serving_endpoints"] = serving_endpoints
    with pytest.raises(SeedError) as refused:
        load_seed(seed)
    assert "serving_endpoints" in str(refused.value) and API_KEY not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "rebuilt"),
    [
        ("http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1"),
        ("http://localhost:11434/v1/", "http://localhost:11434/v1"),
        ("http://[::1]:8000/v1", "http://[::1]:8000/v1"),
        ("https://adb-1234567890.12.azuredatabricks.net/serving-endpoints", "https://adb-1234567890.12.azuredatabricks.net/serving-endpoints"),
        ("https://API.example.com:8443/", "https://api.example.com:8443"),
    ],
)
def test_a_good_upstream_url_is_kept_rebuilt(url, rebuilt):
    loaded = load_seed(one_endpoint(upstream={"url": url, "api_key": API_KEY}))
    assert chat_upstream(loaded.serving_endpoints[-1]).url == rebuilt


def test_the_key_is_scrubbed_in_every_json_spelling_and_never_cut_in_half():
    """An upstream's error may echo the key JSON-escaped (PHP writes '/' as '\\/', others '\\u002b'),
    or the 1 MiB cut may fall inside it."""
    import asyncio

    import httpx as _httpx

    from obo_auth.local.serving.relay import MAX_ERROR_BYTES, _read_bounded, _scrubbed

    key = "sk-Upstream/Key+abc"
    for spelling in (key, "sk-Upstream\\/Key+abc", "sk-Upstream\\/Key\\u002babc", "sk-Upstream\\u002FKey\\u002Babc"):
        assert _scrubbed(f'{{"error": "bad key {spelling}"}}'.encode(), key) == b'{"error": "bad key [api_key]"}'
    body = b"x" * (MAX_ERROR_BYTES - 8) + key.encode() + b"tail"
    answer = _httpx.Response(500, stream=_httpx.ByteStream(body))
    kept = asyncio.run(_read_bounded(answer, key))
    assert len(kept) <= MAX_ERROR_BYTES and b"sk-" not in kept  # scrubbed before the cut: no piece of the key is left
