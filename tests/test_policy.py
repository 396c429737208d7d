"""Integration tests for obo_auth.policy: auth policies logged with mlflow into a temporary store.

Unit sibling: tests/test_resources.py (declarations, scope table, scope validation).
Logging costs seconds (mlflow runs the agent on its input example and infers requirements),
so the module logs one model and reads it back; every other test stops before mlflow logs.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.models.auth_policy import AuthPolicy
from mlflow.models.model import ModelInfo
from mlflow.models.resources import (
    DatabricksApp,
    DatabricksFunction,
    DatabricksGenieSpace,
    DatabricksServingEndpoint,
    DatabricksSQLWarehouse,
    DatabricksTable,
    DatabricksUCConnection,
    DatabricksVectorSearchIndex,
)
from mlflow.pyfunc import ChatAgent
from mlflow.types.agent import ChatAgentMessage, ChatAgentResponse

import obo_auth
from obo_auth.errors import ArgumentTypeError, InvalidScopeError, ResourceDeclarationError
from obo_auth.policy import _installed, _pin, _ship_obo_auth, auth_policy, log_model
from obo_auth.resources import (
    GenieSpace,
    ServingEndpoint,
    SqlWarehouse,
    UCConnection,
    UCFunction,
    UCTable,
    VectorSearchIndex,
)

PACKAGE_DIR = str(Path(obo_auth.__file__).resolve().parent)
PIN = "obo-auth==1.2.3"

RESOURCES = [
    VectorSearchIndex("main.docs.handbook_index"),
    GenieSpace("01ef0123456789abcdef0123456789ab"),
    ServingEndpoint("chat-model", on_behalf_of_user=False),
    SqlWarehouse("abcdef1234567890", on_behalf_of_user=False),
    ServingEndpoint("chat-model", on_behalf_of_user=False),  # declared twice, logged once
]
EXPECTED_AUTH_POLICY = {
    "user_auth_policy": {
        "api_scopes": [
            "dashboards.genie",
            "serving.serving-endpoints",
            "unity-catalog",
            "vectorsearch.vector-search-endpoints",
            "vectorsearch.vector-search-indexes",
        ]
    },
    "system_auth_policy": {
        "resources": {
            "api_version": "1",
            "databricks": {
                "serving_endpoint": [{"name": "chat-model", "on_behalf_of_user": False}],
                "sql_warehouse": [{"name": "abcdef1234567890", "on_behalf_of_user": False}],
            },
        }
    },
}


class EchoAgent(ChatAgent):
    def predict(self, messages, context=None, custom_inputs=None):
        return ChatAgentResponse(messages=[ChatAgentMessage(id="1", role="assistant", content=messages[-1].content)])


@pytest.fixture(scope="module", autouse=True)
def store(tmp_path_factory):
    """A throwaway tracking store for the module, so nothing lands in the checkout."""
    root = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")  # mlflow 3.17 refuses file:// stores
    # Artifacts follow the experiment; the default one would put them in ./mlruns.
    experiment_id = mlflow.create_experiment("obo-auth-tests", artifact_location=(root / "artifacts").as_uri())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
        yield root
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def logged(store) -> tuple[ModelInfo, Path]:
    info = log_model(EchoAgent(), resources=RESOURCES, extra_scopes=["unity-catalog"])
    return info, Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(store / "model")))


def test_the_mlmodel_file_holds_the_exact_auth_policy(logged):
    info, model_dir = logged
    assert isinstance(info, ModelInfo)
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    assert mlmodel["auth_policy"] == EXPECTED_AUTH_POLICY
    assert "resources" not in mlmodel  # mlflow's legacy field, exclusive with auth_policy
    assert auth_policy(*RESOURCES, extra_scopes=["unity-catalog"]).to_dict() == EXPECTED_AUTH_POLICY


def test_the_logged_model_can_import_obo_auth(logged):
    _, model_dir = logged
    requirements = (model_dir / "requirements.txt").read_text().splitlines()
    pin = _pin(_installed())
    if pin:  # installed from an index: pinned at the installed version
        assert pin in requirements
        assert not (model_dir / "code" / "obo_auth").exists()
    else:  # editable checkout (as in this repository) or local build: the source travels with the model
        assert (model_dir / "code" / "obo_auth" / "policy.py").is_file()
        assert not [line for line in requirements if re.match(r"obo[-_.]auth\b", line, re.IGNORECASE)]


# -- auth_policy -------------------------------------------------------------------------


def test_obo_only_and_system_only_policies_leave_the_other_side_empty():
    obo = auth_policy(ServingEndpoint("chat-model")).to_dict()
    assert obo == {"system_auth_policy": {}, "user_auth_policy": {"api_scopes": ["serving.serving-endpoints"]}}
    system = auth_policy(UCConnection("github_api", on_behalf_of_user=False)).to_dict()
    assert system["user_auth_policy"] == {}
    assert system["system_auth_policy"]["resources"]["databricks"] == {"uc_connection": [{"name": "github_api", "on_behalf_of_user": False}]}


@pytest.mark.parametrize(
    ("declaration", "resource"),
    [
        (VectorSearchIndex("main.docs.handbook_index"), DatabricksVectorSearchIndex("main.docs.handbook_index", True)),
        (ServingEndpoint("chat-model", on_behalf_of_user=False), DatabricksServingEndpoint("chat-model", False)),
        (GenieSpace("01ef"), DatabricksGenieSpace("01ef", True)),
        (SqlWarehouse("abcdef1234567890"), DatabricksSQLWarehouse("abcdef1234567890", True)),
        (UCConnection("github_api"), DatabricksUCConnection("github_api", True)),
        (UCTable("main.sales.orders"), DatabricksTable("main.sales.orders", True)),
        (UCFunction("main.tools.lookup_order"), DatabricksFunction("main.tools.lookup_order", True)),
    ],
)
def test_each_declaration_maps_to_its_mlflow_resource(declaration, resource):
    assert declaration.to_mlflow() == resource  # mlflow compares type, name and on_behalf_of_user


def test_an_unknown_extra_scope_is_refused_at_log_time_naming_the_nearest():
    with pytest.raises(InvalidScopeError, match=re.escape("'vectorsearch.vector-search-index' (did you mean 'vectorsearch.vector-search-indexes'?)")):
        log_model(EchoAgent(), resources=RESOURCES, extra_scopes=["vectorsearch.vector-search-index"])


def test_a_resource_declared_both_as_the_user_and_as_the_agent_is_refused():
    with pytest.raises(ResourceDeclarationError, match=r"ServingEndpoint\('chat-model'\) is declared both"):
        auth_policy(ServingEndpoint("chat-model"), ServingEndpoint("chat-model", on_behalf_of_user=False))


def test_an_empty_policy_is_refused():
    with pytest.raises(ResourceDeclarationError, match="at least one"):
        auth_policy()


# -- log_model's contradictory and mistyped arguments ------------------------------------------


def test_an_explicit_auth_policy_beside_declarations_is_refused():
    with pytest.raises(ArgumentTypeError, match="builds auth_policy from resources="):
        log_model(EchoAgent(), resources=RESOURCES, auth_policy=AuthPolicy())


def test_an_empty_resource_list_is_refused():
    with pytest.raises(ResourceDeclarationError, match="resources= is empty"):
        log_model(EchoAgent(), resources=[])


@pytest.mark.parametrize(
    ("resources", "hint"),
    [
        ("main.docs.handbook_index", "resources= takes a list of declarations"),
        (VectorSearchIndex("main.docs.handbook_index"), "resources= takes a list of declarations"),
        (["main.docs.handbook_index"], "e.g. VectorSearchIndex('main.docs.handbook_index')"),
        (
            [DatabricksVectorSearchIndex("main.docs.handbook_index", on_behalf_of_user=True)],
            "mlflow resource, not a declaration: use obo_auth.VectorSearchIndex('main.docs.handbook_index', on_behalf_of_user=...)",
        ),
        ([ServingEndpoint("chat-model"), DatabricksApp("hr-app")], "obo_auth has no declaration for mlflow's DatabricksApp"),
    ],
)
def test_mistyped_resources_are_refused_with_what_to_use(resources, hint):
    with pytest.raises(ArgumentTypeError, match=re.escape(hint)):
        log_model(EchoAgent(), resources=resources)


@pytest.mark.parametrize(
    ("python_model", "hint"),
    [(EchoAgent, "takes an instance: EchoAgent()"), (object(), "ChatAgent or ResponsesAgent instance")],
)
def test_a_python_model_that_is_not_an_agent_is_refused(python_model, hint):
    with pytest.raises(ArgumentTypeError, match=re.escape(hint)):
        log_model(python_model, resources=RESOURCES)


# -- how obo_auth travels with the model ------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, {"extra_pip_requirements": [PIN]}),
        ({"extra_pip_requirements": ["pandas"]}, {"extra_pip_requirements": ["pandas", PIN]}),
        ({"pip_requirements": ["mlflow"]}, {"pip_requirements": ["mlflow", PIN]}),
        ({"pip_requirements": ["mlflow", "obo_auth>=1.0"]}, {"pip_requirements": ["mlflow", "obo_auth>=1.0"]}),
        ({"conda_env": {"dependencies": []}}, {"conda_env": {"dependencies": []}, "code_paths": [PACKAGE_DIR]}),
        ({"pip_requirements": "requirements.txt"}, {"pip_requirements": "requirements.txt", "code_paths": [PACKAGE_DIR]}),
    ],
)
def test_an_index_install_is_pinned_unless_the_caller_cannot_take_a_pin(kwargs, expected):
    assert _ship_obo_auth(kwargs, PIN) == expected


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, {"code_paths": [PACKAGE_DIR]}),
        ({"code_paths": ["helpers.py"]}, {"code_paths": ["helpers.py", PACKAGE_DIR]}),
        ({"code_paths": [PACKAGE_DIR]}, {"code_paths": [PACKAGE_DIR]}),
        ({"extra_pip_requirements": ["obo-auth @ file:///wheels/obo_auth-0.1.0-py3-none-any.whl"]}, None),
    ],
)
def test_a_local_install_ships_its_source(kwargs, expected):
    assert _ship_obo_auth(kwargs, None) == (kwargs if expected is None else expected)


def _dist(tmp_path: Path, direct_url: dict | None) -> importlib.metadata.Distribution:
    info = tmp_path / "obo_auth-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: obo-auth\nVersion: 1.2.3\n")
    if direct_url is not None:  # PEP 610, as pip and uv write it
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return importlib.metadata.PathDistribution(info)


def test_only_an_install_from_an_index_is_pinned(tmp_path):
    assert _pin(_dist(tmp_path / "index", None)) == PIN
    editable = {"url": "file:///work/obo-auth", "dir_info": {"editable": True}}
    assert _pin(_dist(tmp_path / "editable", editable)) is None
    assert _pin(None) is None
