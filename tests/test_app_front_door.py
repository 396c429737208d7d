"""`obo-auth serve-app` end to end: an ASGI app served as a Databricks App in its own process,
behind the front door that plays the Apps proxy, called over real HTTP.

The App is tests/fixtures/apps/echo_app.py (Starlette with ``obo_auth.OboAppMiddleware``), its
user_api_scopes in the databricks.yml beside it. The front door authenticates each caller,
requires CAN_USE on the App, forwards the caller's token downscoped to the App's scopes and
revokes it when the request ends; the App only ever sees the proxy's own x-forwarded-* headers.
The workspace's audit log is the witness of which token acted, as whom and with which scopes.
(The agent side, OboAppMiddleware itself, is tested in test_apps.py; the Apps API in
test_apps_service.py.)
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from databricks.sdk import WorkspaceClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from obo_auth.local import LocalWorkspace
from obo_auth.serving import ServedApp, ServingFailed, serve_app
from obo_auth.serving.revocation import REQUEST_ENDED
from seeds import default_seed

APPS = Path(__file__).resolve().parent / "fixtures" / "apps"
sys.path.insert(0, str(APPS))
import echo_app  # noqa: E402  (its constants only: the App itself runs in the App process)

sys.path.remove(str(APPS))

NAME = "echo-app"
SCOPES = ("files", "serving.serving-endpoints")  # databricks.yml beside echo_app.py
USERS = ("alice", "bob", "carol")
ME = "/api/2.0/preview/scim/v2/Me"


# Each calls the App in one test only: that test alone can cause the revocation of their tokens.
STREAMERS = ("erin", "frank", "gina")


def _seed() -> dict:
    """The default seed, plus dave, who may not use the App, erin and frank, who may, and the App
    with its grants."""
    seed = default_seed()
    seed["users"] += [{"user_name": f"{user}@example.com", "display_name": user.title()} for user in ("dave", *STREAMERS)]
    seed["apps"] = [{"name": NAME, "service_principal": "obo-agent"}]
    seed["grants"] += [{"principal": f"{user}@example.com", "privilege": "CAN_USE", "on": {"app": NAME}} for user in (*USERS, *STREAMERS)]
    return seed


def revoked_at_request_end(workspace, user: str) -> int:
    return len([r for r in workspace.audit() if REQUEST_ENDED in r.reason and f"{user}@example.com" in r.reason])


@pytest.fixture(scope="module")
def workspace():
    with LocalWorkspace(_seed()) as ws:
        yield ws


@pytest.fixture(scope="module")
def app(workspace) -> ServedApp:
    with serve_app("echo_app:app", workspace, NAME, app_dir=APPS) as served:
        yield served


def call(app: ServedApp, path: str, token: str | None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(f"{app.url}{path}", headers=headers, timeout=60, trust_env=False)


def wait_for(condition, what: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen within {timeout} s")


# -- who the App runs for ------------------------------------------------------------------------
def test_serve_app_reads_the_apps_scopes_from_the_bundle_beside_it(app, workspace):
    assert (app.name, app.app_ref, app.user_api_scopes, app.service_principal) == (NAME, "echo_app:app", SCOPES, "obo-agent")
    assert app.bundle == str(APPS / "databricks.yml") and app.workspace_url == workspace.url


@pytest.mark.parametrize("user", USERS)
def test_each_user_gets_their_own_identity(app, workspace, user):
    answer = call(app, "/whoami", workspace.issue_token(user))
    assert answer.status_code == 200
    assert answer.json() == {"user": f"{user}@example.com", "email": f"{user}@example.com"}


def test_a_client_cannot_speak_for_the_proxy(app, workspace):
    """A client's own x-forwarded-* headers never reach the App, even a valid token of another user."""
    spoofed = {
        "x-forwarded-access-token": workspace.issue_token("bob"),
        "X-Forwarded-Email": "bob@example.com",
        "x-forwarded-user": "bob",
        "x-forwarded-for": "10.0.0.1",
        "x-real-ip": "10.0.0.1",
        "x-request-id": "mine",
    }
    answer = call(app, "/whoami", workspace.issue_token("alice"), **spoofed)
    assert answer.json() == {"user": "alice@example.com", "email": "alice@example.com"}


def test_the_app_gets_the_proxys_headers_and_never_the_callers_credential(app, workspace):
    answer = call(
        app, "/headers", workspace.issue_token("carol"),
        **{"x-forwarded-access-token": echo_app.FAKE_SPOOFED_TOKEN, "x-forwarded-email": "bob@example.com", "x-request-id": "mine"},
    ).json()  # fmt: skip
    me = WorkspaceClient(host=workspace.url, token=workspace.issue_token("carol")).current_user.me()
    assert answer["tokens"] == 1 and not answer["token_is_the_spoofed_one"]
    assert not answer["authorization"]  # the caller's own token stays with the proxy
    assert answer["email"] == ["carol@example.com"] and answer["preferred_username"] == "carol@example.com"
    assert answer["user"] == f"{me.id}@{workspace.state.workspace_id}"
    assert answer["real_ip"] == "127.0.0.1" and answer["host"] == app.url.removeprefix("http://")
    (request_id,) = answer["request_id"]
    assert request_id != "mine" and uuid.UUID(request_id)
    assert "x-forwarded-for" not in answer["names"]


def test_no_spelling_of_a_proxy_header_gets_through(app, workspace):
    """WSGI servers read x_forwarded_access_token as x-forwarded-access-token: a name with "_" is
    dropped (as nginx and gunicorn do), as are RFC 7239's Forwarded and every case of the proxy's own."""
    sent = {
        "x_forwarded_access_token": workspace.issue_token("bob"),
        "X_Forwarded_Email": "bob@example.com",
        "X-FORWARDED-ACCESS-TOKEN": echo_app.FAKE_SPOOFED_TOKEN,
        "Forwarded": "for=10.0.0.1;host=evil.example",
        "X-Forwarded-Host": "evil.example",
        "my_header": "x",
    }
    answer = call(app, "/headers", workspace.issue_token("alice"), **sent).json()
    assert not [name for name in answer["names"] if "_" in name or name == "forwarded"]
    assert answer["tokens"] == 1 and not answer["token_is_the_spoofed_one"]
    assert answer["email"] == ["alice@example.com"] and answer["host"] == app.url.removeprefix("http://")


def test_every_request_gets_a_fresh_request_id(app, workspace):
    token = workspace.issue_token("alice")
    ids = {call(app, "/headers", token).json()["request_id"][0] for _ in range(3)}
    assert len(ids) == 3


# -- who may call it -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="}, {"x-forwarded-access-token": "dapi" + "1" * 32}],
    ids=["none", "empty", "basic", "only-a-forwarded-token"],
)
def test_no_bearer_token_is_a_401(app, headers):
    answer = call(app, "/headers", None, **headers)
    assert answer.status_code == 401
    assert answer.json()["error_code"] == "UNAUTHENTICATED"
    assert "Authorization: Bearer <token>" in answer.json()["message"]


def test_a_token_the_workspace_did_not_issue_is_a_401(app):
    answer = call(app, "/headers", "dapi" + "0" * 32)
    assert answer.status_code == 401 and answer.json()["error_code"] == "UNAUTHENTICATED"


def test_a_revoked_token_is_a_401(app, workspace):
    token = workspace.issue_token("alice")
    workspace.revoke(token)
    assert call(app, "/whoami", token).status_code == 401


def test_a_user_without_can_use_on_the_app_is_a_403(app, workspace):
    answer = call(app, "/whoami", workspace.issue_token("dave"))
    assert answer.status_code == 403
    assert answer.json()["error_code"] == "PERMISSION_DENIED"


def test_a_downscoped_token_needs_the_apps_scope(app, workspace, invoker_token):
    """An agent calling the App for its user: only with a token that may call Apps."""
    denied = call(app, "/whoami", invoker_token(workspace, "alice"))
    assert denied.status_code == 403 and "apps.apps" in denied.json()["message"]
    allowed = call(app, "/whoami", workspace.issue_token("alice", ["apps"], actor="obo-agent"))
    assert allowed.json()["user"] == "alice@example.com"


# -- the forwarded token ---------------------------------------------------------------------------
def test_the_forwarded_token_is_downscoped_to_the_apps_scopes_and_acts_through_the_app(app, workspace):
    seen = len(workspace.audit())
    assert call(app, "/whoami", workspace.issue_token("carol")).status_code == 200
    # The App's call with the forwarded token: carol's, through the App's service principal, with the App's scopes only.
    (used,) = [r for r in workspace.audit()[seen:] if r.path == ME and r.actor is not None]
    assert (used.principal, used.actor, used.scopes, used.status) == ("carol@example.com", "obo-agent", SCOPES, 200)


def test_the_forwarded_token_is_revoked_when_its_request_ends(app, workspace):
    answer = call(app, "/escape", workspace.issue_token("bob")).json()
    assert answer["during"] == 200
    escaped = wait_for(lambda: call(app, "/state", workspace.issue_token("alice")).json()["escapes"].get(answer["request_id"]), "the kept token's next call")
    assert escaped == {"after": 401, "because_the_request_ended": True}


def test_an_app_without_user_api_scopes_gets_no_token(workspace, tmp_path):
    """User authorization off: the proxy forwards who the user is, never a token; the middleware refuses."""
    bundle = tmp_path / "databricks.yml"
    bundle.write_text(yaml.safe_dump({"resources": {"apps": {"plain": {"name": "echo-plain"}}}}))
    token = workspace.issue_token("alice")
    with serve_app("echo_app:app", workspace, "echo-plain", app_dir=APPS, bundle=bundle) as plain:
        assert plain.user_api_scopes is None and plain.bundle == str(bundle)
        client = WorkspaceClient(host=workspace.url, token=token)
        assert client.apps.get("echo-plain").url == plain.url
        headers = call(plain, "/headers", token).json()
        whoami = call(plain, "/whoami", token)
    assert headers["tokens"] == 0 and headers["email"] == ["alice@example.com"]
    assert whoami.status_code == 401 and "x-forwarded-access-token" in whoami.json()["message"]
    assert client.apps.get("echo-plain").url is None  # stopped: the workspace sends nobody to its freed port


# -- streams and websockets --------------------------------------------------------------------------
def test_a_stream_runs_as_its_user_to_the_end(app, workspace):
    with httpx.stream("GET", f"{app.url}/stream", headers={"Authorization": f"Bearer {workspace.issue_token('bob')}"}, timeout=60) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = [line for line in answer.iter_lines() if line]
    assert events == [f"data: {n} bob@example.com" for n in range(3)]


def test_a_stream_passes_through_unbuffered_and_its_token_is_revoked_when_the_client_leaves(app, workspace):
    before = call(app, "/state", workspace.issue_token("alice")).json()
    with httpx.stream("GET", f"{app.url}/forever", headers={"Authorization": f"Bearer {workspace.issue_token('erin')}"}, timeout=60) as answer:
        assert next(answer.iter_lines()) == "data: tick"  # an endless stream: only unbuffered does any of it arrive
    wait_for(lambda: revoked_at_request_end(workspace, "erin") == 1, "the revocation")
    wait_for(lambda: call(app, "/state", workspace.issue_token("alice")).json()["forever_stopped"] == before["forever_stopped"] + 1, "the stream's end")


def test_a_client_leaving_ends_the_request_at_once_even_while_the_app_only_sends(app, workspace):
    """The front door reads ahead of the app, so it sees the client go even if the app never asks."""
    with httpx.stream("GET", f"{app.url}/raw", headers={"Authorization": f"Bearer {workspace.issue_token('frank')}"}, timeout=60) as answer:
        assert next(answer.iter_lines()) == "data: tick"
    wait_for(lambda: revoked_at_request_end(workspace, "frank") == 1, "the revocation")
    assert call(app, "/state", workspace.issue_token("alice")).json()["raw_running"]  # the app still sends, to nobody


def test_a_client_leaving_in_the_middle_of_its_upload_ends_the_request_at_once(app, workspace):
    """An unfinished body the app never reads does not hide the client's going from the front door."""
    host, port = app.url.removeprefix("http://").split(":")
    token = workspace.issue_token("gina")
    with socket.create_connection((host, int(port)), timeout=30) as client:
        client.sendall(
            f"POST /raw HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Length: 100000\r\n\r\n".encode() + b"x" * 10
        )
        assert client.recv(15) == b"HTTP/1.1 200 OK"  # the app answers, and streams, without reading the body
    wait_for(lambda: revoked_at_request_end(workspace, "gina") == 1, "the revocation", timeout=2.5)  # /raw itself runs 3 s


def test_a_websocket_is_authenticated_as_http_is(app, workspace):
    url = app.url.replace("http://", "ws://") + "/ws"
    with connect(url, additional_headers={"Authorization": f"Bearer {workspace.issue_token('alice')}"}) as socket_:
        assert socket_.recv(timeout=30) == "alice@example.com"
    for headers in ({}, {"Authorization": f"Bearer {workspace.issue_token('dave')}"}):
        with pytest.raises(InvalidStatus):
            connect(url, additional_headers=headers)


# -- the App's process -----------------------------------------------------------------------------
def test_the_app_runs_with_a_databricks_apps_environment(app, workspace):
    env = call(app, "/env", workspace.issue_token("alice")).json()
    client_id, _ = workspace.client_credentials("obo-agent")
    assert env == {
        "DATABRICKS_HOST": workspace.url,
        "DATABRICKS_WORKSPACE_ID": workspace.state.workspace_id,
        "DATABRICKS_CLIENT_ID": client_id,
        "DATABRICKS_APP_NAME": NAME,
        "DATABRICKS_APP_PORT": app.url.rsplit(":", 1)[1],
        "DATABRICKS_APP_URL": app.url,
        "client_secret_set": True,
        "tracking_uri_set": True,
        "token_variables": [],
        "cwd": str(APPS),
        "lifespan": True,
        "app_itself": client_id,  # WorkspaceClient() acts as the App's own service principal
    }


def test_the_workspace_knows_where_the_app_runs(app, workspace):
    found = WorkspaceClient(host=workspace.url, token=workspace.issue_token("alice")).apps.get(NAME)
    assert found.url == app.url
    assert sorted(found.user_api_scopes) == list(SCOPES) and found.service_principal_name == "obo-agent"


def test_a_restarted_workspace_gets_callers_a_503_not_a_401():
    first = LocalWorkspace(_seed()).__enter__()
    url = first.url
    try:
        with serve_app("echo_app:app", first, NAME, app_dir=APPS, show_output=True) as served:
            assert call(served, "/whoami", first.issue_token("alice")).status_code == 200
            first.__exit__(None, None, None)
            with LocalWorkspace(_seed(), port=int(url.rsplit(":", 1)[1])) as second:
                answer = call(served, "/whoami", second.issue_token("alice"))
    finally:
        first.__exit__(None, None, None)
    assert answer.status_code == 503 and answer.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert "no longer accepts this App front door's credential" in answer.json()["message"]


# -- what it refuses to serve ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("app_ref", "says"),
    [
        ("echo_app", "is not an import string"),
        ("echo_app:", "is not an attribute name"),
        ("echo-app:app", "is not a module name"),
        ("missing.py:app", "there is no file"),
    ],
)
def test_a_bad_import_string_is_refused_before_anything_starts(workspace, app_ref, says):
    with pytest.raises(ServingFailed, match=says), serve_app(app_ref, workspace, "refused", app_dir=APPS):
        pass


@pytest.mark.parametrize(
    ("app_ref", "says"),
    [
        ("no_such_module:app", "cannot import the App's module 'no_such_module': no such module"),
        ("not_an_app:settings", "not_an_app:settings is dict, not an ASGI app"),
        ("not_an_app:wsgi_app", "not_an_app:wsgi_app is function, not an ASGI app"),
    ],
)
def test_what_the_app_process_cannot_import_is_one_line(workspace, app_ref, says):
    with pytest.raises(ServingFailed) as failed, serve_app(app_ref, workspace, "refused", app_dir=APPS):
        pass
    assert says in str(failed.value) and "\n" not in str(failed.value)


def test_a_path_names_the_module_and_its_directory(workspace):
    with pytest.raises(ServingFailed, match="module 'not_an_app' has no attribute 'missing'"), serve_app(str(APPS / "not_an_app.py") + ":missing", workspace, "refused"):
        pass


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("resources: [unclosed", "is not valid YAML"),
        ("bundle: {name: x}\n", "declares no App"),
        ("resources: {apps: {a: {name: one}, b: {name: two}}}\n", "declares no App named 'refused' (it declares one, two)"),
        ("resources: {apps: {a: {name: refused, user_api_scopes: [sql.warehouses]}}}\n", "not what Databricks Apps accept"),
    ],
)
def test_a_bundle_that_makes_no_sense_is_refused(workspace, tmp_path, content, says):
    bundle = tmp_path / "databricks.yml"
    bundle.write_text(content)
    with pytest.raises(ServingFailed, match=re.escape(says)), serve_app("echo_app:app", workspace, "refused", app_dir=APPS, bundle=bundle):
        pass


def test_a_missing_bundle_is_refused(workspace, tmp_path):
    with pytest.raises(ServingFailed, match="no bundle file"), serve_app("echo_app:app", workspace, "refused", app_dir=APPS, bundle=tmp_path / "nope.yml"):
        pass


def test_a_taken_port_is_refused(workspace):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServingFailed, match=f"port {port} is in use"), serve_app("echo_app:app", workspace, "refused", app_dir=APPS, port=port):
            pass


def test_an_unknown_service_principal_is_refused(workspace):
    with pytest.raises(ServingFailed, match="no service principal 'nobody-sp'"), serve_app(
        "echo_app:app", workspace, "refused", app_dir=APPS, app_principal="nobody-sp"
    ):
        pass


def test_a_name_the_workspace_refuses_is_said_before_the_app_is_imported(workspace):
    with pytest.raises(ServingFailed, match="Invalid App name"), serve_app("echo_app:app", workspace, "Not_A_Name", app_dir=APPS):
        pass


# -- the command ------------------------------------------------------------------------------------
CLI = [sys.executable, "-c", "from obo_auth.cli.main import cli; cli()"]


def test_the_command_announces_the_app_and_serves_it(tmp_path):
    environment = {**os.environ, "OBO_AUTH_HOME": str(tmp_path / "home")}
    workspace = subprocess.Popen([*CLI, "workspace", "--quiet"], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = wait_for(lambda: re.search(r"running at (http://127\.0\.0\.1:\d+)", workspace.stdout.readline()), "the workspace's start", 60).group(1)
        served = subprocess.Popen(
            [*CLI, "serve-app", "echo_app:app", "--name", "echo-cli", "--workspace", url],
            env=environment, cwd=APPS, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            lines = [served.stdout.readline() for _ in range(5)]
            app_url = re.search(r"App URL: (http://127\.0\.0\.1:\d+)", lines[1]).group(1)
            token = subprocess.run([*CLI, "workspace", "token", "alice", "--port", url.rsplit(":", 1)[1]], env=environment, capture_output=True, text=True, check=True).stdout.strip()
            answer = httpx.get(f"{app_url}/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=60, trust_env=False)
        finally:
            served.send_signal(signal.SIGINT)
            served.wait(timeout=60)
    finally:
        workspace.terminate()
        workspace.wait(timeout=60)
    assert answer.json()["user"] == "alice@example.com"
    assert lines[0].startswith("Serving echo_app:app as the Databricks App echo-cli, running as obo-agent")
    assert "files, serving.serving-endpoints" in lines[2]
    assert f"workspace token alice --port {url.rsplit(':', 1)[1]}" in lines[3]
    assert 'responses.create(model="apps/echo-cli"' in lines[4]
    assert token not in "".join(lines)
