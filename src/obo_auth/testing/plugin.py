"""obo_auth's pytest plugin: test an agent as several users against a local workspace.

Loaded by every pytest run where obo_auth is installed (entry point ``pytest11``), so this
module imports only the standard library and pytest; the workspace, mlflow and the SDK are
imported when a test first uses a fixture.

Fixtures:
- ``obo_workspace``: the running ``LocalWorkspace`` of this test: one per seed for the whole
  session (default: ``--obo-seed``, else the ``obo_seed`` ini option, else the built-in seed).
- ``obo``: ``obo_auth.testing.harness.Obo`` on that workspace: ``as_user``, ``ask``,
  ``serve``, ``check_isolation``, and ``audit``, the calls of this test only (a warning at
  its end names an earlier test whose tokens were still in use).

Marker: ``@pytest.mark.obo_seed(seed, agent="obo-agent")``, a YAML path (relative to the
test's file) or a dict in the seed format, and the service principal the agent acts as.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_MARKER = "obo_seed"
_DEFAULT_AGENT = "obo-agent"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("obo_auth", "obo_auth: test agents as several users")
    group.addoption(
        "--obo-seed", metavar="PATH", help="the seed (YAML) of the obo fixtures' local workspace, unless a test's obo_seed marker says otherwise"
    )
    parser.addini("obo_seed", "the seed (YAML, relative to the ini file) of the obo fixtures' local workspace", default="")
    parser.addini("obo_agent", "the service principal agents act as in the obo fixtures' workspace", default=_DEFAULT_AGENT)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(seed, agent='{_DEFAULT_AGENT}'): the obo fixtures use a local workspace with this seed "
        "(a YAML path relative to the test's file, or a dict) and agent service principal",
    )


@pytest.fixture(scope="session")
def _obo_session(tmp_path_factory: pytest.TempPathFactory):
    """The workspaces, served models and MLflow store the obo fixtures share, stopped at the end."""
    from obo_auth.testing.session import SessionResources

    with SessionResources(tmp_path_factory.mktemp) as resources:
        yield resources


@pytest.fixture
def obo_workspace(request: pytest.FixtureRequest, _obo_session):
    """The local workspace this test runs against (``obo_auth.local.LocalWorkspace``), started
    once per seed for the session: the ``obo_seed`` marker's, else ``--obo-seed``, else the
    ``obo_seed`` ini option, else the built-in seed (alice, bob, carol, obo-agent)."""
    from obo_auth.local import SeedError

    try:
        return _obo_session.workspace(_seed(request))
    except SeedError as error:
        refused = str(error)
    pytest.fail(refused, pytrace=False)  # outside the except: its message, once, without a chained traceback


@pytest.fixture
def obo(request: pytest.FixtureRequest, obo_workspace, _obo_session):
    """Acts as this test's workspace users: ``obo.as_user("alice")``, ``obo.ask(agent, "bob", question)``,
    ``obo.serve(model_uri)``, ``obo.check_isolation(agent, questions)``, and ``obo.audit``, the
    calls of this test only. With no MLflow store chosen, traces and models go to a throwaway one.
    At the test's end, calls made with an earlier test's tokens (its agent's threads) are a warning."""
    from obo_auth.testing.harness import Obo

    _obo_session.mlflow_store()
    obo = Obo(obo_workspace, agent=_agent(request), session=_obo_session, test=request.node.nodeid)
    yield obo
    obo.close()


def _marker(request: pytest.FixtureRequest) -> pytest.Mark | None:
    marker = request.node.get_closest_marker(_MARKER)
    if marker is not None and (
        len(marker.args) != 1 or not isinstance(marker.args[0], (str, os.PathLike, dict)) or set(marker.kwargs) - {"agent"}
    ):
        pytest.fail(f"@pytest.mark.{_MARKER} takes one seed (a YAML path or a dict) and optionally agent='NAME'", pytrace=False)
    return marker


def _seed(request: pytest.FixtureRequest) -> Path | dict | None:
    """The seed for this test; paths are relative to where they were written."""
    marker = _marker(request)
    if marker is not None:
        seed = marker.args[0]
        return seed if isinstance(seed, dict) else request.path.parent / seed
    config = request.config
    if config.getoption("obo_seed"):
        return config.invocation_params.dir / config.getoption("obo_seed")
    if config.getini("obo_seed"):
        return (config.inipath.parent if config.inipath else config.rootpath) / config.getini("obo_seed")
    return None


def _agent(request: pytest.FixtureRequest) -> str:
    marker = _marker(request)
    if marker is not None and "agent" in marker.kwargs:
        return marker.kwargs["agent"]
    return request.config.getini("obo_agent")
