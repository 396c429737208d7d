"""obo_auth reads an agent's pip requirements from its imports (requirements.py)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys

from obo_auth.requirements import agent_requirements


def _pinned(name: str) -> str:
    return f"{name}=={importlib.metadata.version(name)}"


def test_imports_map_to_their_installed_distributions_pinned(tmp_path):
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import json, os.path\n"  # the standard library
        "from databricks.sdk import WorkspaceClient\n"  # a namespace shared by several distributions
        "import yaml\n"  # a module named unlike its distribution (PyYAML)
        "import helpers\n"  # the agent's own module, shipped with code_paths
        "import obo_auth\n"  # shipped by log_model itself
        "def later():\n    import httpx\n"  # imported lazily
        "import not_installed_anywhere\n"
    )
    (tmp_path / "helpers.py").write_text("from databricks_openai import VectorSearchRetrieverTool\n")
    requirements = agent_requirements(str(agent), [str(tmp_path / "helpers.py")])
    assert requirements == sorted(
        [_pinned(n) for n in ("databricks-sdk", "PyYAML", "httpx", "databricks-openai", "mlflow")]
    )


def test_a_split_package_pins_the_distribution_named_after_it(tmp_path):
    agent = tmp_path / "agent.py"
    agent.write_text("import mlflow.pyfunc\n")  # also in mlflow-skinny and mlflow-tracing
    assert agent_requirements(str(agent), []) == sorted([_pinned("databricks-sdk"), _pinned("mlflow")])


def test_an_agent_instance_is_read_from_its_class_file_and_a_code_paths_directory(tmp_path, monkeypatch):
    package = tmp_path / "tools"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "search.py").write_text("import httpx\n")
    source = tmp_path / "my_agent.py"
    source.write_text("import yaml\n\nclass Agent:\n    pass\n")
    spec = importlib.util.spec_from_file_location("my_agent", source)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "my_agent", module)  # as importing it would
    spec.loader.exec_module(module)

    requirements = agent_requirements(module.Agent(), [str(package)])
    assert _pinned("httpx") in requirements and _pinned("PyYAML") in requirements


def test_unreadable_or_broken_sources_add_nothing(tmp_path):
    broken = tmp_path / "agent.py"
    broken.write_text("def (:\n")
    assert agent_requirements(str(broken), [str(tmp_path / "missing.py")]) == sorted([_pinned("databricks-sdk"), _pinned("mlflow")])


def test_a_distribution_installed_from_a_local_path_is_not_pinned_by_name(tmp_path, monkeypatch, caplog):
    """Pinned by name, the serving image would install whatever the public index holds under it."""
    site = tmp_path / "site"
    (site / "corp_secret").mkdir(parents=True)
    (site / "corp_secret" / "__init__.py").write_text("")
    info = site / "corp_secret-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: corp-secret\nVersion: 0.1.0\n")
    (info / "top_level.txt").write_text("corp_secret\n")
    (info / "direct_url.json").write_text('{"url": "file:///src/corp-secret", "dir_info": {"editable": true}}')
    monkeypatch.syspath_prepend(str(site))
    agent = tmp_path / "agent.py"
    agent.write_text("import corp_secret\n")
    with caplog.at_level("WARNING", logger="obo_auth"):
        requirements = agent_requirements(str(agent), [])
    assert not any(r.startswith("corp-secret") for r in requirements)
    assert "not pinning corp-secret" in caplog.text and "code_paths=" in caplog.text
