"""``obo-auth review --app``: a Databricks App reviewed from its bundle (databricks.yml) and code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from obo_auth.cli.main import cli
from obo_auth.review import ReviewError, review_app

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "handbook_agent"

FALLBACK_APP = '''
import os
from databricks.sdk import WorkspaceClient
from fastapi import FastAPI, Request

app = FastAPI()

@app.get("/rows")
def rows(request: Request):
    token = request.headers.get("x-forwarded-access-token")
    if token:
        client = WorkspaceClient(token=token, auth_type="pat")
    else:
        client = WorkspaceClient()
    return client.current_user.me().user_name
'''


def bundle(tmp_path: Path, app: str, code: str = "") -> Path:
    (tmp_path / "databricks.yml").write_text(app)
    if code:
        (tmp_path / "app.py").write_text(code)
    return tmp_path


def test_the_example_app_is_reviewed_from_its_bundle_and_code():
    result = review_app(EXAMPLE).to_dict()
    assert [s["scope"] for s in result["scopes"]] == [
        "serving.serving-endpoints",
        "vectorsearch.vector-search-endpoints",
        "vectorsearch.vector-search-indexes",
    ]
    assert result["as_agent"] == [{"type": "serving_endpoint", "name": "chat-model", "source": "app_resources"}]
    assert "app.py" in result["code"]["checked"] and result["code"]["findings"] == []
    assert [c["id"] for c in result["callouts"]] == ["scopes-from-bundle"]
    assert result["end_user_summary"].startswith("This App can, as you: query any model serving endpoint")


def test_a_scope_apps_refuse_is_a_high_callout(tmp_path):
    path = bundle(tmp_path, "resources:\n  apps:\n    a:\n      name: a\n      user_api_scopes: [sql, unity-catalog]\n")
    callouts = review_app(path).to_dict()["callouts"]
    assert {"id": "unknown-scope", "severity": "high", "text": "'unity-catalog' is not a Databricks Apps user API scope: deploying the App fails."} in callouts


def test_an_app_without_user_authorization_and_with_a_fallback_is_flagged(tmp_path):
    yml = "resources:\n  apps:\n    a:\n      name: a\n      resources:\n        - name: wh\n          sql_warehouse: {id: abc, permission: CAN_USE}\n"
    result = review_app(bundle(tmp_path, yml, FALLBACK_APP)).to_dict()
    assert [(c["id"], c["severity"]) for c in result["callouts"]] == [("no-user-authorization", "high")]
    assert result["as_agent"] == [{"type": "sql_warehouse", "name": "abc", "source": "app_resources"}]
    assert "apps-identity-fallback" in {f["rule"] for f in result["code"]["findings"]}
    assert result["end_user_summary"].startswith("This App does not act as you")


def test_a_bundle_with_several_apps_needs_a_name(tmp_path):
    path = bundle(tmp_path, "resources:\n  apps:\n    a: {name: first}\n    b: {name: second}\n")
    with pytest.raises(ReviewError, match="2 Apps .*--name"):
        review_app(path)
    with pytest.raises(ReviewError, match="no App named 'third'; it has: first, second"):
        review_app(path, "third")
    assert review_app(path, "second").to_dict()["model"].startswith("app second")


@pytest.mark.parametrize(
    "text, message",
    [("resources: {}\n", "declares no App"), (": : :\n", "not valid YAML"), ("resources:\n  apps:\n    a: {name: a, user_api_scopes: sql}\n", "not a list")],
)
def test_an_unreadable_bundle_is_one_line(tmp_path, text, message):
    with pytest.raises(ReviewError, match=message):
        review_app(bundle(tmp_path, text))


def test_the_cli_reviews_an_app_and_refuses_both_or_neither():
    runner = CliRunner()
    answer = runner.invoke(cli, ["review", "--app", str(EXAMPLE), "--format", "json"])
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.output)["model"].startswith("app handbook-app")
    assert runner.invoke(cli, ["review"]).exit_code == 2
    assert runner.invoke(cli, ["review", "models:/x/1", "--app", str(EXAMPLE)]).exit_code == 2
    assert runner.invoke(cli, ["review", "--app", str(EXAMPLE), "--run", "q.yaml"]).exit_code == 2
