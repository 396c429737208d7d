"""Generated bad requests thrown at a running local workspace over real HTTP (hypothesis + httpx).

For every request: never a 5xx, every error is JSON in the Databricks shape (the OAuth token
endpoint: the OAuth shape), no traceback text, exactly one audit record, and no state changed
by a rejected request (valid tokens and the answer to a fixed query stay the same).

Siblings: tests/test_auth.py sends the well-formed 401/403 cases; tests/test_seed.py bad seeds.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from obo_auth.http_edge import MAX_BODY_BYTES
from obo_auth.local._base import UC_NAME_PATTERN
from obo_auth.local.admin.routes import ADMIN_PREFIX
from obo_auth.local.registry import services

TOKEN_ENDPOINT = "/oidc/v1/token"
# Routes whose success mints a token: the only accepted requests here that may change state.
MINTING = {TOKEN_ENDPOINT, f"{ADMIN_PREFIX}/tokens"}
ROUTE_TEMPLATES = sorted({route.path for service in services() for route in service.routes})
INDEX = "main.docs.handbook_index"
QUERY = f"/api/2.0/vector-search/indexes/{INDEX}/query"
FIXED_QUERY = {"columns": ["id", "chunk"], "query_text": "vacation days", "num_results": 5}
# Headers that frame the HTTP message itself: random values test the HTTP library, not the workspace.
FRAMING_HEADERS = {"content-length", "transfer-encoding", "host", "connection", "upgrade", "expect", "te", "trailer", "keep-alive"}
# Whose tokens a generated request may carry (Probe.tokens; resolved in the test body).
TOKEN_HOLDERS = ["alice", "bob", "downscoped", "admin", "revoked"]

# Hypothesis budget: an example is two requests (its own and the fixed query), ~3,000 in all on
# loopback, sized so that the file stays well under a minute on two cores.
FUZZ = settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TARGETED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Tokens(dict):
    """Names to tokens; prints only the names, so a failing example does not print tokens."""

    def __repr__(self) -> str:
        return f"Tokens({', '.join(self)})"


class Probe:
    """Sends requests to the workspace and checks what every answer must satisfy.

    It also holds what no rejected request may change: how many tokens authenticate, and the
    answer to a fixed query, observed once at the start and after every request.
    """

    def __init__(self, workspace, http: httpx.Client):
        self.workspace, self.http = workspace, http
        self.tokens = Tokens(
            alice=workspace.issue_token("alice"),
            bob=workspace.issue_token("bob"),
            downscoped=workspace.issue_token("alice", scopes=["model-serving"], actor="obo-agent"),
            admin=workspace.state.admin_token,
            revoked=workspace.issue_token("carol"),
        )
        workspace.revoke(self.tokens["revoked"])
        self.valid_tokens, self.answer = self._observe()

    def bearer(self, holder: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[holder]}"}

    def _observe(self) -> tuple[int, object]:
        query = self.http.post(QUERY, json=FIXED_QUERY, headers=self.bearer("alice"))
        assert query.status_code == 200, query.text
        return self.workspace.state.identity.active_tokens(), query.json()

    def send(self, method: str, path: str, *, content=None, headers=None) -> httpx.Response:
        records_before = len(self.workspace.audit())

        response = self.http.request(method, path, content=content, headers=headers)

        assert response.status_code < 500, response.text[:500]
        assert "Traceback" not in response.text and 'File "' not in response.text
        if response.status_code >= 400 and method != "HEAD":
            assert response.headers["content-type"] == "application/json", response.text[:300]
            error = response.json()
            oauth = method == "POST" and response.request.url.path == TOKEN_ENDPOINT
            for key in ("error", "error_description") if oauth else ("error_code", "message"):
                assert isinstance(error.get(key), str) and error[key], error
        records = self.workspace.audit()
        assert len(records) == records_before + 1, "exactly one audit record per request"
        assert records[-1].method == method and records[-1].status == response.status_code
        self.valid_tokens += response.status_code < 300 and response.request.url.path in MINTING
        assert self._observe() == (self.valid_tokens, self.answer), "the request changed the workspace's state"
        return response


@pytest.fixture(scope="module")
def probe(workspace):
    with httpx.Client(base_url=workspace.url, timeout=30) as http:
        yield Probe(workspace, http)


# -- strategies ---------------------------------------------------------------------------------
text = st.text(st.characters(codec="utf-8"), max_size=24)
# Long names: long ASCII, and long non-ASCII (up to 4 UTF-8 bytes, 12 once percent-encoded),
# kept under the HTTP server's 16 KiB limit for a request head (beyond it uvicorn answers itself).
long_name = st.one_of(
    st.builds(str.__mul__, st.sampled_from(["a", "main.", "x-", "_"]), st.integers(200, 2000)),
    st.builds(str.__mul__, st.characters(codec="utf-8", min_codepoint=0x80), st.integers(100, 500)),
)
name = st.one_of(text, long_name, st.sampled_from([INDEX, "chat-model", "docs-endpoint", "a.b", "a.b.c.d", f"{INDEX}\n", "..", "%2e"]))
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=6,  # small: generating JSON is most of an example's time
)
KNOWN_FIELDS = [
    "columns", "query_text", "query_vector", "num_results", "filters_json", "model", "messages", "stream", "tools", "input", "n",
    "principal", "scopes", "ttl", "actor", "statement", "warehouse_id", "wait_timeout", "content", "connection_name", "method", "path", "params",
]  # fmt: skip
# Bodies json.loads chokes on in ways other than JSONDecodeError, and other classics.
PATHOLOGICAL = [b"[" * 100_000, b"1" * 5000, b'{"num_results": ' + b"9" * 5000 + b"}", b"\xff\xfe{}", b"\x00", b"{" * 50_000 + b"}" * 50_000, b'{"a": NaN}']
# Lone surrogate escapes: valid JSON, not text (an adversarial review found them failing later, unencodable).
PATHOLOGICAL += [b'{"content": "hi \\udfff", "statement": "\\ud800", "connection_name": "echo", "method": "GET", "path": "/", "json": "\\"\\\\ud800\\""}']
body = st.one_of(
    st.none(),
    st.binary(max_size=200),
    json_value.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(KNOWN_FIELDS), json_value, min_size=1).map(lambda d: json.dumps(d).encode()),
    st.dictionaries(st.sampled_from(["grant_type", "client_id", "client_secret", "scope"]), text).map(lambda d: urlencode(d).encode()),
    st.sampled_from(PATHOLOGICAL),
)
method = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "CONNECT"]),
    st.from_regex(r"\A[A-Z]{1,12}\Z"),
)
path = st.one_of(
    st.builds(lambda template, n: re.sub(r"\{[^}]+\}", quote(n, safe=""), template), st.sampled_from(ROUTE_TEMPLATES), name),
    st.builds(lambda template, suffix: template.split("{")[0].rstrip("/") + "/" + quote(suffix, safe="/"), st.sampled_from(ROUTE_TEMPLATES), text),
    text.map(lambda t: "/" + quote(t, safe="/")),
)
# Header values as HTTP allows them: visible ASCII and obs-text (latin-1), spaces inside only.
header_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60).map(
    lambda v: v.strip(" ").encode("latin-1")
)
header_name = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,24}\Z").filter(lambda h: h.lower() not in FRAMING_HEADERS)
content_type = st.sampled_from(
    ["application/json", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-16", "multipart/form-data; boundary=x", ""]
)
authorization = st.one_of(
    st.none(),
    st.sampled_from(TOKEN_HOLDERS),  # a real token: resolve() swaps the name for Probe.tokens[name]
    header_value.map(lambda v: (b"Bearer " + v).strip()),
    header_value,
    st.binary(max_size=40).map(lambda b: (b"Basic " + base64.b64encode(b)).strip()),
)
headers = st.fixed_dictionaries(
    {"authorization": authorization, "content-type": content_type},
    optional={"extra": st.dictionaries(header_name, header_value, max_size=4)},
)


def resolve(headers: dict, tokens: dict) -> dict:
    """The generated headers, with a token holder's name replaced by their real token."""
    resolved = {key: value for key, value in headers.items() if key != "extra" and value is not None}
    if isinstance(headers["authorization"], str):
        resolved["authorization"] = f"Bearer {tokens[headers['authorization']]}"
    for key, value in headers.get("extra", {}).items():
        resolved.setdefault(key, value)
    return resolved


# -- the tests ----------------------------------------------------------------------------------------
@FUZZ
@given(method=method, path=path, content=body, headers=headers)
@example(method="PROPFIND", path="/api/2.0/preview/scim/v2/Me", content=None, headers={"authorization": "alice", "content-type": ""})
@example(method="POST", path=QUERY, content=PATHOLOGICAL[0], headers={"authorization": "alice", "content-type": "application/json"})
@example(method="POST", path=TOKEN_ENDPOINT, content=b"grant_type=client_credentials", headers={"authorization": b"Basic !!", "content-type": ""})
def test_generated_requests_never_break_the_workspace(probe, method, path, content, headers):
    probe.send(method, path, content=content, headers=resolve(headers, probe.tokens))


# Routes that read a JSON body, a valid body for each, and who may send it.
JSON_ROUTES = {
    "vector search query": (QUERY, "alice", {"columns": ["id", "chunk"], "query_text": "vacation", "num_results": 3}),
    "chat completions": (
        "/serving-endpoints/chat/completions",
        "alice",
        {"model": "chat-model", "messages": [{"role": "user", "content": "hi"}], "stream": False, "n": 1},
    ),
    "embedding invocations": ("/serving-endpoints/databricks-gte-large-en/invocations", "alice", {"input": "hello"}),
    "admin token": (f"{ADMIN_PREFIX}/tokens", "admin", {"principal": "alice", "scopes": ["vector-search"], "ttl": 86400, "actor": "obo-agent"}),
}
# The JSON types each field of those bodies accepts (null means "absent" to these APIs, never wrong).
FIELD_TYPES = {
    "columns": list, "query_text": str, "num_results": int, "model": str, "messages": list, "stream": bool, "n": int,
    "input": (str, list), "principal": str, "scopes": list, "ttl": (int, float), "actor": str,
}  # fmt: skip


# A strategy per JSON type (bool apart from int, as JSON has it; null is never wrong, see above).
JSON_TYPES = {
    bool: st.booleans(),
    int: st.integers(),
    float: st.floats(allow_nan=False, allow_infinity=False),  # JSON numbers; 3.0 included: a float is never an integer to these APIs
    str: text,
    list: st.lists(json_value, max_size=3),
    dict: st.dictionaries(text, json_value, max_size=3),
}


def wrong_for(kind) -> st.SearchStrategy:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return st.one_of(*(strategy for json_type, strategy in JSON_TYPES.items() if json_type not in kinds))


def test_the_valid_bodies_are_valid(probe):
    # Else the wrong-type test below could pass on bodies that fail for another reason.
    for path, holder, valid in JSON_ROUTES.values():
        response = probe.send("POST", path, content=json.dumps(valid).encode(), headers=probe.bearer(holder))
        assert response.status_code == 200, response.text


@TARGETED
@given(data=st.data(), route=st.sampled_from(sorted(JSON_ROUTES)))
def test_a_wrong_json_type_for_a_known_field_is_a_400_naming_it(probe, data, route):
    path, holder, valid = JSON_ROUTES[route]
    field = data.draw(st.sampled_from(sorted(valid)), label="field")
    wrong = data.draw(wrong_for(FIELD_TYPES[field]), label="value")
    response = probe.send("POST", path, content=json.dumps({**valid, field: wrong}).encode(), headers=probe.bearer(holder))
    assert response.status_code == 400
    assert f"'{field}'" in response.json()["message"]


def not_a_json_object(raw: bytes) -> bool:
    try:
        return not isinstance(json.loads(raw), dict)
    except (ValueError, RecursionError):
        return True


@TARGETED
@given(
    route=st.sampled_from(sorted(JSON_ROUTES)),
    content=st.one_of(st.binary(max_size=300), json_value.map(lambda v: json.dumps(v).encode()), st.sampled_from(PATHOLOGICAL)).filter(
        not_a_json_object
    ),
)
def test_a_body_that_is_not_a_json_object_is_a_400(probe, route, content):
    path, holder, _ = JSON_ROUTES[route]
    response = probe.send("POST", path, content=content, headers=probe.bearer(holder))
    assert response.status_code == 400
    assert response.json()["error_code"] == "MALFORMED_REQUEST"
    assert "request body" in response.json()["message"]


@TARGETED
@given(value=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=16, max_size=200), scheme=st.sampled_from(["Bearer", "bearer", "BEARER"]))
def test_a_random_bearer_is_a_401_that_never_echoes_it(probe, value, scheme):
    response = probe.send("GET", "/api/2.0/preview/scim/v2/Me", headers={"Authorization": f"{scheme} {value}"})
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert value not in response.text


INDEX_NAME_ROUTES = [("GET", "/api/2.0/vector-search/indexes/{}"), ("POST", "/api/2.0/vector-search/indexes/{}/query"), ("GET", "/api/2.1/unity-catalog/tables/{}")]
# Not catalog.schema.name; without "/" (it would route elsewhere) or only dots (httpx resolves dot segments).
bad_index_name = st.one_of(text, long_name, st.sampled_from(["handbook", "docs.handbook", "a.b.c.d", f"{INDEX}\n", "a..b", " a.b.c", "é.b.c"])).filter(
    lambda n: n.strip(".") and "/" not in n and not re.fullmatch(UC_NAME_PATTERN, n)
)


@TARGETED
@given(route=st.sampled_from(INDEX_NAME_ROUTES), index_name=bad_index_name)
def test_an_index_name_that_is_not_catalog_schema_name_is_a_400_showing_the_form(probe, route, index_name):
    method, template = route
    response = probe.send(method, template.format(quote(index_name, safe="")), content=b'{"columns": ["id"]}', headers=probe.bearer("alice"))
    assert response.status_code == 400
    assert "'catalog.schema.name'" in response.json()["message"]


# The routes that read the body, and so find a chunked (undeclared) body too large.
BODY_READERS = {("GET", QUERY), ("POST", QUERY), ("POST", "/serving-endpoints/chat/completions"), ("POST", TOKEN_ENDPOINT)}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "PUT"]),
    path=st.sampled_from([QUERY, "/serving-endpoints/chat/completions", TOKEN_ENDPOINT, "/api/2.0/preview/scim/v2/Me", "/nope"]),
    extra=st.integers(1, 64 * 1024),
    chunked=st.booleans(),
)
def test_an_oversized_body_is_refused_and_changes_nothing(probe, method, path, extra, chunked):
    oversized = b"{" + b" " * (MAX_BODY_BYTES + extra)
    # A generator has no length: httpx sends it chunked, and only reading it shows its size.
    content = iter([oversized[i : i + 65536] for i in range(0, len(oversized), 65536)]) if chunked else oversized
    response = probe.send(method, path, content=content, headers=probe.bearer("alice"))
    if not chunked or (method, path) in BODY_READERS:
        assert response.status_code == 400
        error = response.json()
        assert f"the limit is {MAX_BODY_BYTES} bytes" in (error.get("message") or error["error_description"])


@pytest.mark.parametrize("ttl", [b"0", b"-5", b"1e999", b"1" * 400, b"true", b'"60"', b"[]"])
def test_the_admin_api_refuses_an_unusable_token_lifetime(probe, ttl):
    content = b'{"principal": "alice", "ttl": ' + ttl + b"}"
    response = probe.send("POST", f"{ADMIN_PREFIX}/tokens", content=content, headers=probe.bearer("admin"))
    assert response.status_code == 400
    assert "ttl" in response.json()["message"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json_and_are_refused_in_one_line(workspace, constant):
    """Python's json accepts them; echoed back (a Responses answer repeats temperature and tools),
    they would make an answer no JSON encoder writes: a 500."""
    token = workspace.issue_token("alice")
    body = f'{{"model": "chat-model", "input": [{{"role": "user", "content": "hi"}}], "temperature": {constant}}}'
    answer = httpx.post(f"{workspace.url}/serving-endpoints/responses", content=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400
    assert answer.json()["message"] == f"The request body is not valid JSON ({constant} is not a JSON value)."
