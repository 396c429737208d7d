"""Serving refuses a model whose declared resources do not exist in the workspace, as the
platform refuses it at deploy: every missing one at once, each with the nearest existing name.

The declarations are read from the MLmodel only: obo_auth's declaration record, the system auth
policy's resources, and mlflow's own ``resources``. End to end, a logged model with typos is
refused by ``serve()`` before the serving process mints anything or runs the model's code.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlflow.models import Model
from mlflow.models.auth_policy import AuthPolicy, SystemAuthPolicy
from mlflow.models.resources import DatabricksServingEndpoint, DatabricksVectorSearchIndex

import obo_auth
from obo_auth.serving import ServingFailed, serve
from obo_auth.serving.model_checks import check_resources, declared_resources, read_model

AGENT = Path(__file__).resolve().parent / "agents" / "failing_stream_agent.py"
URL = "http://127.0.0.1:1"
EXISTING = {
    "serving_endpoint": ["chat-model", "databricks-gte-large-en"],
    "vector_search_index": ["main.docs.handbook_index"],
    "vector_search_endpoint": ["docs-endpoint"],
    "table": [],
    "function": [],
    "genie_space": [],
    "sql_warehouse": [],
    "uc_connection": [],
}


def _record(*resources: tuple[str, str, bool]) -> dict:
    return {"obo_auth": {"version": 1, "resources": [{"type": t, "name": n, "on_behalf_of_user": u} for t, n, u in resources]}}


def test_every_source_of_declarations_is_read_each_resource_once():
    model = Model(
        metadata=_record(("vector_search_index", "main.docs.handbook_index", True), ("serving_endpoint", "chat-model", False)),
        auth_policy=AuthPolicy(system_auth_policy=SystemAuthPolicy(resources=[DatabricksServingEndpoint("chat-model")])),
        resources=[DatabricksServingEndpoint("databricks-gte-large-en")],
    )
    assert declared_resources(model) == [
        ("vector_search_index", "main.docs.handbook_index"),
        ("serving_endpoint", "chat-model"),
        ("serving_endpoint", "databricks-gte-large-en"),
    ]


def test_a_policy_written_without_mlflows_databricks_level_is_read_too():
    model = Model(metadata={})
    model.auth_policy = {"system_auth_policy": {"resources": {"api_version": "1", "serving_endpoint": [{"name": "chat-modle"}]}}}
    assert declared_resources(model) == [("serving_endpoint", "chat-modle")]


def test_one_missing_resource_is_named_with_the_nearest_existing_name():
    model = Model(metadata=_record(("vector_search_index", "main.docs.handbok_index", True)))
    with pytest.raises(ServingFailed) as refused:
        check_resources(model, EXISTING, URL)
    assert str(refused.value) == (
        f"the model declares vector search index main.docs.handbok_index, which does not exist in the workspace at {URL} "
        "(nearest: main.docs.handbook_index); seed it, or fix the declaration and log the model again"
    )


def test_all_missing_resources_are_named_in_one_message():
    model = Model(
        metadata=_record(("vector_search_index", "main.docs.handbok_index", True), ("genie_space", "01ef-sales", True)),
        resources=[DatabricksServingEndpoint("chat-modle"), DatabricksVectorSearchIndex("main.docs.handbook_index")],
    )
    with pytest.raises(ServingFailed) as refused:
        check_resources(model, EXISTING, URL)
    message = str(refused.value)
    assert message.startswith(f"the model declares 3 resources that do not exist in the workspace at {URL}: ")
    assert "vector search index main.docs.handbok_index (nearest: main.docs.handbook_index)" in message
    assert "Genie space 01ef-sales (it has none)" in message
    assert "serving endpoint chat-modle (nearest: chat-model)" in message
    assert message.endswith("seed them, or fix the declarations and log the model again") and "\n" not in message


def test_declared_resources_that_exist_and_kinds_the_workspace_does_not_hold_pass():
    model = Model(metadata=_record(("vector_search_index", "main.docs.handbook_index", True), ("app", "some-app", False)))
    check_resources(model, EXISTING, URL)  # no error: apps are left to the platform


@pytest.fixture
def store(tmp_path, own_mlflow_store):
    with own_mlflow_store(tmp_path, "resources") as uri:
        yield uri


def test_serving_refuses_a_logged_model_with_typos_before_minting_anything(workspace, store):
    resources = [
        obo_auth.VectorSearchIndex("main.docs.handbok_index"),
        obo_auth.ServingEndpoint("chat-modle", on_behalf_of_user=False),
        obo_auth.ServingEndpoint("databricks-gte-large-en"),
    ]
    info = obo_auth.log_model(str(AGENT), resources=resources, pip_requirements=["mlflow"])
    before = len(workspace.audit())
    with pytest.raises(ServingFailed) as refused, serve(info.model_uri, workspace, "typos"):
        pass
    message = str(refused.value)
    assert f"2 resources that do not exist in the workspace at {workspace.url}" in message
    assert "vector search index main.docs.handbok_index (nearest: main.docs.handbook_index)" in message
    assert "serving endpoint chat-modle (nearest: chat-model)" in message
    assert "databricks-gte-large-en" not in message
    # Refused before anything was minted or registered: the workspace saw only the name lookup.
    assert [r.path for r in workspace.audit()[before:]] == ["/api/2.0/obo-auth/admin/resources"]


def test_serving_reads_a_declaration_record_written_by_plain_mlflow(workspace, store):
    from mlflow.models.auth_policy import UserAuthPolicy

    policy = AuthPolicy(user_auth_policy=UserAuthPolicy(api_scopes=["serving.serving-endpoints"]), system_auth_policy=SystemAuthPolicy(resources=[]))
    with obo_auth.as_user(workspace.issue_token("alice"), host=workspace.url):  # mlflow runs predict while logging
        info = mlflow.pyfunc.log_model(
            name="agent", python_model=str(AGENT), pip_requirements=["mlflow"], auth_policy=policy,
            metadata=_record(("serving_endpoint", "databricks-gte-large-en", True), ("vector_search_index", "main.docs.hr_index", True)),
        )  # fmt: skip
    with pytest.raises(ServingFailed) as refused, serve(info.model_uri, workspace, "plain-mlflow"):
        pass
    assert str(refused.value).startswith("the model declares vector search index main.docs.hr_index, which does not exist")


# -- an MLmodel anyone may have edited: one line, never a traceback ------------------------------------
MALFORMED = "the model's MLmodel is malformed: "
ENDPOINT = {"type": "serving_endpoint", "name": "chat-model"}


def _model(**attributes) -> Model:
    """A loaded MLmodel holding whatever its YAML held (Model.from_dict keeps it as it is; only
    a string ``resources`` is read as a file's path, which read_model covers)."""
    model = Model(metadata={})
    for name, value in attributes.items():
        setattr(model, "_resources" if name == "resources" else name, value)
    return model


@pytest.mark.parametrize(
    ("attributes", "where"),
    [
        ({"metadata": "obo_auth"}, "metadata is the string 'obo_auth', not a mapping"),
        ({"metadata": ["obo_auth"]}, "metadata is a list, not a mapping"),
        ({"metadata": {"obo_auth": "resources"}}, "metadata.obo_auth is the string"),
        ({"metadata": {"obo_auth": {"resources": ENDPOINT}}}, "metadata.obo_auth.resources is a mapping, not a list"),
        ({"metadata": {"obo_auth": {"resources": ["chat-model"]}}}, "metadata.obo_auth.resources[0] is the string 'chat-model', not a mapping"),
        ({"metadata": {"obo_auth": {"resources": [ENDPOINT, {"type": "serving_endpoint"}]}}}, "metadata.obo_auth.resources[1] has no 'name'"),
        ({"metadata": {"obo_auth": {"resources": [{"name": "chat-model"}]}}}, "metadata.obo_auth.resources[0] has no 'type'"),
        ({"metadata": {"obo_auth": {"resources": [{"type": "serving_endpoint", "name": ["a", "b"]}]}}}, "metadata.obo_auth.resources[0].name is a list"),
        ({"metadata": {"obo_auth": {"resources": [{"type": {"x": 1}, "name": "a"}]}}}, "metadata.obo_auth.resources[0].type is a mapping"),
        ({"metadata": {"obo_auth": {"resources": [{"type": "serving_endpoint", "name": 7}]}}}, "metadata.obo_auth.resources[0].name is a number"),
        ({"resources": ["chat-model"]}, "resources is a list, not a mapping"),
        ({"resources": {"databricks": [ENDPOINT]}}, "resources.databricks is a list, not a mapping"),
        ({"resources": {"databricks": {"serving_endpoint": {"name": "chat-model"}}}}, "resources.databricks.serving_endpoint is a mapping, not a list"),
        ({"resources": {"databricks": {"serving_endpoint": [{"nom": "chat-model"}]}}}, "resources.databricks.serving_endpoint[0] has no 'name'"),
        ({"resources": {"serving_endpoint": ["chat-model"]}}, "resources.serving_endpoint[0] is the string"),
        ({"resources": {"serving_endpoint": [{"name": None}]}}, "resources.serving_endpoint[0].name is empty"),
        ({"auth_policy": [1]}, "auth_policy is a list, not a mapping"),
        ({"auth_policy": {"system_auth_policy": "all"}}, "auth_policy.system_auth_policy is the string 'all'"),
        ({"auth_policy": {"system_auth_policy": {"resources": [ENDPOINT]}}}, "auth_policy.system_auth_policy.resources is a list, not a mapping"),
        (
            {"auth_policy": {"system_auth_policy": {"resources": {"databricks": {"vector_search_index": [{"name": {"a": 1}}]}}}}},
            "auth_policy.system_auth_policy.resources.databricks.vector_search_index[0].name is a mapping",
        ),
    ],
)
def test_a_malformed_mlmodel_is_one_line_naming_the_field(attributes, where):
    model = _model(**attributes)
    for check in (declared_resources, lambda m: check_resources(m, EXISTING, URL)):
        with pytest.raises(ServingFailed) as refused:
            check(model)
        message = str(refused.value)
        assert message.startswith(MALFORMED + where), message
        assert message.isprintable() and message.endswith("log the model again (obo_auth.log_model writes it)")


JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["obo_auth", "resources", "type", "name", "databricks", "system_auth_policy", "serving_endpoint", "api_version"]) | st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)
ENTRIES = st.lists(st.dictionaries(st.sampled_from(["type", "name"]), JSON_LIKE | st.sampled_from(["serving_endpoint", "chat-model"])) | JSON_LIKE, max_size=3)


@given(
    metadata=JSON_LIKE | st.fixed_dictionaries({"obo_auth": JSON_LIKE | st.fixed_dictionaries({"resources": ENTRIES | JSON_LIKE})}),
    auth_policy=JSON_LIKE | st.fixed_dictionaries({"system_auth_policy": st.fixed_dictionaries({"resources": JSON_LIKE | st.fixed_dictionaries({"databricks": st.dictionaries(st.sampled_from(["serving_endpoint", "api_version", "app"]), ENTRIES | JSON_LIKE)})})}),
    resources=JSON_LIKE | st.dictionaries(st.sampled_from(["serving_endpoint", "vector_search_index", "api_version"]), ENTRIES | JSON_LIKE),
)
def test_any_mlmodel_gives_resources_or_one_line(metadata, auth_policy, resources):
    model = _model(metadata=metadata, auth_policy=auth_policy, resources=resources)
    try:
        found = declared_resources(model)
    except ServingFailed as refused:
        assert str(refused).startswith(MALFORMED) and str(refused).isprintable()
    else:
        assert all(isinstance(kind, str) and isinstance(name, str) and name for kind, name in found)
        try:
            check_resources(model, EXISTING, URL)
        except ServingFailed as refused:
            assert str(refused).startswith("the model declares") and "\n" not in str(refused)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- flavors\n- python_function\n", "the model's MLmodel of {uri} is malformed: it is a list, not a mapping"),
        ("flavors: [unclosed\n", "the model's MLmodel of {uri} is malformed: it is not YAML ("),
        ("just a string\n", "the model's MLmodel of {uri} is malformed: it is the string 'just a string', not a mapping"),
        ("signature: {inputs: 7}\n", "the model's MLmodel of {uri} is malformed: mlflow cannot read it ("),
    ],
)
def test_an_mlmodel_that_is_not_a_mapping_is_one_line(tmp_path, text, expected):
    (tmp_path / "MLmodel").write_text(text)
    with pytest.raises(ServingFailed) as refused:
        read_model(str(tmp_path), "sqlite:///unused.db")
    assert str(refused.value).startswith(expected.format(uri=tmp_path)) and str(refused.value).isprintable()


def test_an_mlmodel_naming_a_resources_file_is_refused_without_reading_it(tmp_path):
    # mlflow would read such a path, anywhere on the machine; a model's resources belong in its MLmodel.
    (tmp_path / "MLmodel").write_text("flavors: {}\nresources: /etc/passwd\n")
    with pytest.raises(ServingFailed, match=r"^the model's MLmodel of .* is malformed: its resources names another file; "):
        read_model(str(tmp_path), "sqlite:///unused.db")


def test_another_mlflow_error_loading_the_model_is_one_line(store):
    with pytest.raises(ServingFailed) as refused:
        read_model("models:/a/b/c", store)
    message = str(refused.value)
    assert message.startswith(f"cannot read the MLmodel of models:/a/b/c (MLflow store {store}): Not a proper models:/ URI")
    assert message.isprintable() and refused.value.__cause__ is None and refused.value.__suppress_context__


def test_serve_refuses_a_malformed_mlmodel_in_one_line(workspace, tmp_path):
    (tmp_path / "MLmodel").write_text("flavors: {python_function: {loader_module: mlflow.pyfunc.model}}\nmetadata: {obo_auth: {resources: [{type: serving_endpoint}]}}\n")
    with pytest.raises(ServingFailed) as refused, serve(str(tmp_path), workspace, "malformed"):
        pass
    assert str(refused.value) == f"{MALFORMED}metadata.obo_auth.resources[0] has no 'name'; log the model again (obo_auth.log_model writes it)"
