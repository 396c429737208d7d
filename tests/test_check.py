"""``obo-auth check``: the static check for mistakes that leak one user's data to another.

Fixtures in tests/fixtures/check/ are data (README there): the check parses them, nothing
imports them. A trailing ``# expect: RULE-ID`` marks each line a fixture must be reported on.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from obo_auth.check import RULES, CheckError, Finding, check_paths, check_source, python_files
from obo_auth.check import rules as rules_module
from obo_auth.check.rules import BY_ID
from obo_auth.cli.check import check

FIXTURES = Path(__file__).parent / "fixtures" / "check"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "handbook_agent"
OBO_AUTH = Path(sys.executable).with_name("obo-auth")


def _files(folder: str) -> list[Path]:
    return sorted((FIXTURES / folder).glob("*.py"))


def _expected(path: Path) -> set[tuple[str, int]]:
    """The (rule, line) pairs a fixture marks with ``# expect: RULE-ID``."""
    with path.open() as file:
        comments = [t for t in tokenize.generate_tokens(file.readline) if t.type == tokenize.COMMENT]
    return {(m.group(1), t.start[0]) for t in comments if (m := re.search(r"# expect: ([a-z-]+)", t.string))}


def _found(path: Path) -> set[tuple[str, int]]:
    return {(f.rule, f.line) for f in check_paths([path])}


def _rule_of(path: Path) -> str:
    return path.stem.removesuffix("_streamlit").replace("_", "-")


# -- the fixtures: every rule's true positives, near misses, clean agents, unsafe agents --------


@pytest.mark.parametrize("path", _files("unsafe"), ids=lambda p: p.stem)
def test_unsafe_fixture_is_reported_on_exactly_its_marked_lines(path):
    expected = _expected(path)
    assert expected, "a fixture without markers proves nothing"
    assert _found(path) == expected


def test_every_rule_has_true_positives():
    marked = {rule for path in _files("unsafe") for rule, _ in _expected(path)}
    assert marked == set(RULES)
    assert {_rule_of(path) for path in _files("unsafe")} == set(RULES)


@pytest.mark.parametrize("path", _files("near_miss"), ids=lambda p: p.stem)
def test_near_miss_is_not_reported(path):
    assert check_paths([path]) == []


def test_every_rule_has_a_near_miss():
    assert {_rule_of(path) for path in _files("near_miss")} == set(RULES)


@pytest.mark.parametrize("path", [*_files("clean"), *sorted(EXAMPLE.glob("*.py"))], ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_idiomatic_agents_and_the_example_are_clean(path):
    assert check_paths([path]) == []


def test_the_example_agent_directory_is_clean():
    assert len(python_files([EXAMPLE])) == 5  # the agent, its two interfaces, its logic and its Databricks App
    assert check_paths([EXAMPLE]) == []


def test_the_example_without_its_decorators_is_flagged_through_the_helper_it_imports(tmp_path):
    """predict reaches the user only through handbook_logic.answer, a file beside it (or, in a
    logged model, in its code/ folder)."""
    for path in EXAMPLE.glob("*.py"):
        (tmp_path / path.name).write_text(path.read_text().replace("    @obo_auth.on_behalf_of_user\n", ""))
    findings = check_paths([tmp_path])
    assert {(Path(f.path).name, f.rule) for f in findings} == {
        ("chat_agent.py", "predict-not-decorated"),
        ("responses_agent.py", "predict-not-decorated"),
    }
    assert len(findings) == 4
    assert "(current_request() through answer(), line 21)" in findings[0].message
    assert check_paths([tmp_path / "chat_agent.py"]) == []  # the helper's file not checked: not seen
    (tmp_path / "code").mkdir()
    (tmp_path / "handbook_logic.py").rename(tmp_path / "code" / "handbook_logic.py")
    assert len(check_paths([tmp_path / "chat_agent.py", tmp_path / "code"])) == 2


@pytest.mark.parametrize("path", _files("unsafe_agents"), ids=lambda p: p.stem)
def test_unsafe_agent_is_a_models_from_code_agent_flagged_by_its_rule(path):
    tree = ast.parse(path.read_text())
    last = tree.body[-1]
    assert isinstance(last, ast.Expr) and ast.unparse(last.value.func) == "mlflow.models.set_model"
    bases = {ast.unparse(base) for node in tree.body if isinstance(node, ast.ClassDef) for base in node.bases}
    assert bases & {"ChatAgent", "ResponsesAgent"}
    expected = _expected(path)
    # A platform-pattern agent under the decorator also reads the runtime's slot: that rule may join.
    assert _rule_of(path) in {rule for rule, _ in expected} <= {_rule_of(path), "slot-read-in-request"}
    assert _found(path) == expected


def test_there_is_one_unsafe_agent_per_rule():
    assert sorted(_rule_of(path) for path in _files("unsafe_agents")) == sorted(RULES)


# -- taint, specificity, import spellings ----------------------------------------------------

CHAIN = """\
from databricks.sdk import WorkspaceClient
from databricks.sdk.credentials_provider import ModelServingUserCredentials
from databricks_openai import VectorSearchRetrieverTool


class Agent:
    def refresh(self):
        creds = ModelServingUserCredentials()
        w = WorkspaceClient(credentials_strategy=creds)
        tool = VectorSearchRetrieverTool(index_name="main.docs.handbook_index", workspace_client=w)
        {last}
"""


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        ("self.tool = tool", [("user-client-on-self", 11)]),
        ("self.tools = [tool]", [("user-client-on-self", 11)]),
        ("return tool", []),  # used locally
        ("self.name = 'handbook'", []),
    ],
)
def test_taint_follows_names_to_the_line_that_keeps_the_tool(last, expected):
    assert [(f.rule, f.line) for f in check_source(CHAIN.format(last=last))] == expected


def test_a_system_client_chain_is_not_tainted():
    source = CHAIN.format(last="self.tool = tool").replace("ModelServingUserCredentials()", "None")
    assert check_source(source) == []


@pytest.mark.parametrize(
    "build",
    [
        "GenieAgent(genie_space_id='s', client=user)",
        "DatabricksFunctionClient(client=user)",
        "DatabricksOpenAI(workspace_client=user)",
        "VectorSearchClient(credential_strategy=user.config)",
        "make_agent(tools=[GenieAgent('s', client=user)])",
    ],
)
def test_whatever_is_built_from_a_user_client_is_user_scoped(build):
    source = (
        "from databricks.sdk import WorkspaceClient\nfrom databricks.sdk.credentials_provider import ModelServingUserCredentials\n"
        "class Agent:\n    def predict_helper(self):\n"
        f"        user = WorkspaceClient(credentials_strategy=ModelServingUserCredentials())\n        self.tool = {build}\n"
    )
    assert [(f.rule, f.line) for f in check_source(source)] == [("user-client-on-self", 6)]
    assert check_source(source.replace("credentials_strategy=ModelServingUserCredentials()", "")) == []


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        # in __init__ and on self: built with no user is the more specific
        (
            (
                "from databricks.sdk.credentials_provider import ModelServingUserCredentials as C\n"
                "class A:\n    def __init__(self):\n        self.c = C()\n"
            ),
            "user-client-in-init",
        ),
        # a kept MCP server, and current_request() where no request exists: the call is the root
        (
            (
                "import obo_auth\nfrom databricks_openai.agents import McpServer\n"
                "MCP = McpServer(url='u', workspace_client=obo_auth.current_request().user_client)\n"
            ),
            "current-request-no-request",
        ),
        # a fallback stored on self: the fallback
        (
            (
                "from databricks.sdk import WorkspaceClient\nclass A:\n    def handle(self, request):\n"
                "        tok = request.headers.get('X-Forwarded-Access-Token')\n"
                "        self.w = WorkspaceClient(token=tok) if tok else WorkspaceClient()\n"
            ),
            "apps-identity-fallback",
        ),
    ],
)
def test_a_line_gets_one_finding_with_the_most_specific_rule(source, rule):
    findings = check_source(source)
    assert [f.rule for f in findings] == [rule]


HELPERS = """\
import obo_auth
from databricks.sdk import WorkspaceClient
from databricks.sdk.credentials_provider import ModelServingUserCredentials


def _make_client():
    return WorkspaceClient(credentials_strategy=ModelServingUserCredentials())


CLIENT = _make_client()


def _shared():
    return CLIENT


def answer():
    return obo_auth.current_request().user_client.current_user.me()


class Agent:
    def __init__(self):
        self.shared = _shared()

    def predict(self, request):
        return answer()
"""


def test_helpers_are_summarised_with_the_module_names_they_fill_and_read():
    findings = check_source(HELPERS)
    assert [(f.rule, f.line) for f in findings] == [
        ("user-client-module-level", 10),
        ("user-client-in-init", 23),
        ("predict-not-decorated", 25),
    ]
    assert "predict uses the end user's identity (current_request() through answer(), line 26)" in findings[-1].message


def _chain(length: int, link: str, last: str) -> str:
    return "".join(link.format(i=i, next=i + 1) for i in range(length)) + last.format(i=length)


@pytest.mark.parametrize(
    ("body", "rule", "count", "last_line"),
    [
        # the reviewer's chain of names, at module level: every name holds the credentials
        (_chain(3000, "a{i} = a{next}\n", "a{i} = C()\n"), "user-client-module-level", 3001, 3002),
        # the same in a method, kept on self at the end
        (
            "class A:\n    def refresh(self):\n" + _chain(3000, "        a{i} = a{next}\n", "        a{i} = C()\n") + "        self.c = a0\n",
            "user-client-on-self",
            1,
            3005,
        ),
        # helpers returning the next helper's value
        (
            _chain(3000, "def f{i}():\n    return f{next}()\n", "def f{i}():\n    return C()\n")
            + "class A:\n    def __init__(self):\n        self.c = f0()\n",
            "user-client-in-init",
            1,
            6006,
        ),
        # module names and helpers in turn
        (_chain(1000, "X{i} = g{i}()\ndef g{i}():\n    return X{next}\n", "X{i} = C()\n"), "user-client-module-level", 1001, 3002),
    ],
    ids=["names-at-module-level", "names-in-a-method", "helpers", "names-and-helpers"],
)
def test_long_chains_are_followed_to_the_credentials(body, rule, count, last_line):
    """Each takes well under a second: the fixed point is a worklist over what each value reads."""
    findings = check_source("from databricks.sdk.credentials_provider import ModelServingUserCredentials as C\n" + body)
    assert ({f.rule for f in findings}, len(findings), findings[-1].line) == ({rule}, count, last_line)


def test_an_undecorated_predict_calling_current_request_gets_both_findings_on_their_lines():
    source = "import obo_auth\nclass A:\n    def predict(self, request):\n        return obo_auth.current_request()\n"
    assert [(f.rule, f.line) for f in check_source(source)] == [("predict-not-decorated", 3), ("current-request-no-request", 4)]


@pytest.mark.parametrize(
    ("imports", "statement", "rule"),
    [
        ("import databricks.sdk.credentials_provider as cp", "X = cp.ModelServingUserCredentials()", "user-client-module-level"),
        ("from databricks_ai_bridge import ModelServingUserCredentials as Creds", "X = Creds()", "user-client-module-level"),
        ("import databricks_ai_bridge", "X = databricks_ai_bridge.ModelServingUserCredentials()", "user-client-module-level"),
        ("import obo_auth as oa", "X = oa.current_request()", "current-request-no-request"),
        ("from obo_auth.context import current_request as cr", "X = cr()", "current-request-no-request"),
        ("from mlflowserving.scoring_server import agent_utils", "X = agent_utils.fetch_obo_token()", "user-client-module-level"),
        ("import threading", "X = threading.main_thread().__dict__['invokers_token']", "user-client-module-level"),
        ("import threading", "X = threading.main_thread().__dict__.get('invokers_token')", "user-client-module-level"),
        ("import threading", "X = getattr(threading.main_thread(), 'invokers_token', None)", "user-client-module-level"),
        ("import threading", "X = threading.main_thread().invokers_token", "user-client-module-level"),
        ("import functools, databricks_ai_bridge", "X = functools.partial(databricks_ai_bridge.ModelServingUserCredentials)", "user-client-module-level"),
    ],
)
def test_import_spellings_resolve(imports, statement, rule):
    assert [(f.rule, f.line) for f in check_source(f"{imports}\n{statement}\n")] == [(rule, 2)]


@pytest.mark.parametrize(
    "decorator",
    ["from functools import cache as memo\n@memo", "import functools as ft\n@ft.lru_cache(maxsize=None)", "import streamlit\n@streamlit.cache_resource"],
)
def test_cache_decorator_spellings_resolve(decorator):
    source = (
        "from databricks.sdk.credentials_provider import ModelServingUserCredentials\n"
        f"{decorator}\ndef client():\n    return ModelServingUserCredentials()\n"
    )
    assert [f.rule for f in check_source(source)] == ["user-client-cached"]


@pytest.mark.parametrize(
    "decorator", ["@obo_auth.on_behalf_of_user", "@obo_auth.on_behalf_of_user(strict=True)", "@obo", "@act_as_user", "@obo_auth.decorator.on_behalf_of_user"]
)
def test_decorator_spellings_resolve(decorator):
    source = (
        "import obo_auth\nimport obo_auth.decorator\nfrom obo_auth import on_behalf_of_user as obo\n"
        "act_as_user = obo_auth.on_behalf_of_user\n"
        f"class A:\n    {decorator}\n    def predict(self, request):\n        return obo_auth.current_request()\n"
    )
    assert check_source(source) == []
    undecorated = check_source(source.replace(decorator, "@staticmethod"))
    assert [(f.rule, f.line) for f in undecorated] == [("predict-not-decorated", 7), ("current-request-no-request", 8)]


def test_a_kept_unsafe_class_is_matched_by_its_name_however_imported():
    source = (
        "import obo_auth\nimport databricks_ai_bridge.lakebase as lb\nfrom databricks_mcp import DatabricksOAuthClientProvider as P\n"
        "class A:\n    @obo_auth.on_behalf_of_user\n    def predict(self, request):\n"
        "        client = obo_auth.current_request().user_client\n"
        "        self.pool = lb.AsyncLakebasePool(instance_name='m', workspace_client=client)\n"
        "        self.provider = P(client)\n"
        "        self.plain = lb.LakebasePool(instance_name='m')\n"
    )
    assert [(f.rule, f.line) for f in check_source(source)] == [("kept-unsafe-tool", 8), ("kept-unsafe-tool", 9)]


def test_module_level_of_a_streamlit_script_is_per_session():
    source = (
        "import streamlit as st\nfrom databricks.sdk import WorkspaceClient\n"
        "token = st.context.headers.get('X-Forwarded-Access-Token')\nw = WorkspaceClient(token=token, auth_type='pat')\n"
    )
    assert check_source(source) == []
    assert [f.rule for f in check_source(source.replace("import streamlit as st", "import mystreamlit as st"))] == [
        "user-client-module-level",
        "user-client-module-level",
    ]


# -- suppression -----------------------------------------------------------------------------

SUPPRESSIBLE = "from databricks.sdk.credentials_provider import ModelServingUserCredentials\nC = ModelServingUserCredentials(){comment}\n"


@pytest.mark.parametrize(
    ("comment", "rules"),
    [
        ("", ["user-client-module-level"]),
        ("  # obo-auth: ignore[user-client-module-level]", []),
        ("  # obo-auth: ignore[user-client-on-self, user-client-module-level]", []),
        ("  # obo-auth: ignore", []),
        ("  # obo-auth:ignore[ user-client-module-level ]", []),
        ("  # noqa: E501  # obo-auth: ignore[user-client-module-level]", []),
        ("  # obo-auth: ignore[user-client-on-self]", ["user-client-module-level"]),
        ("  # obo-auth: ignore[]", ["user-client-module-level"]),
        ("; MARKER = '# obo-auth: ignore'", ["user-client-module-level"]),  # a string, not a comment
        ("  # obo-auth: ignore[user-client-module-level]  # noqa: E501", []),
        ("  # obo-auth: ignore  # legacy agent, rewritten in Q3", []),
        # the marker must be all of its section, and its section the comment's start or a directive of its own
        ("  # obo-auth: ignore [user-client-module-level]", ["user-client-module-level"]),
        ("  # obo-auth: ignored-by-nobody", ["user-client-module-level"]),
        ("  # obo-auth: ignore[user-client-module-level] because", ["user-client-module-level"]),
        ("  # reviewers: never add #obo-auth:ignore to this line", ["user-client-module-level"]),
        ("  # reviewers: never add # obo-auth: ignore", ["user-client-module-level"]),
        ("  # noqa: E501 # obo-auth: ignore", ["user-client-module-level"]),
        # an id no rule has suppresses nothing, and does not stand for every rule
        ("  # obo-auth: ignore[user-client-modul-level]", ["user-client-module-level"]),
        ("  # obo-auth: ignore[no-such-rule, user-client-module-level]", []),
    ],
)
def test_a_trailing_comment_suppresses_the_rules_it_names_on_its_line(comment, rules):
    assert [f.rule for f in check_source(SUPPRESSIBLE.format(comment=comment))] == rules


def test_a_suppression_applies_to_its_own_line_only():
    source = "from databricks.sdk.credentials_provider import ModelServingUserCredentials\n# obo-auth: ignore\nC = ModelServingUserCredentials()\n"
    assert [(f.rule, f.line) for f in check_source(source)] == [("user-client-module-level", 3)]


def test_suppressing_the_most_specific_rule_shows_the_next_one_on_the_line():
    source = (
        "import obo_auth\nfrom databricks_openai.agents import McpServer\n"
        "MCP = McpServer(url='u', workspace_client=obo_auth.current_request().user_client)  # obo-auth: ignore[current-request-no-request]\n"
    )
    assert [(f.rule, f.line) for f in check_source(source)] == [("kept-unsafe-tool", 3)]


# -- findings, rules, errors -----------------------------------------------------------------


def test_a_finding_is_a_frozen_record_with_a_one_based_character_column():
    source = "from databricks.sdk.credentials_provider import ModelServingUserCredentials\nnom_é = 1; C = ModelServingUserCredentials()\n"
    (finding,) = check_source(source, "agent.py")
    assert finding.to_dict() == {
        "rule": "user-client-module-level",
        "path": "agent.py",
        "line": 2,
        "column": 12,
        "message": BY_ID["user-client-module-level"].message,
        "fix": BY_ID["user-client-module-level"].fix,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.line = 3


def test_every_message_and_fix_is_one_line():
    findings = check_paths([FIXTURES / "unsafe", FIXTURES / "unsafe_agents"])
    assert {f.rule for f in findings} == set(RULES)
    for finding in findings:
        assert "\n" not in finding.message and "\n" not in finding.fix and "{" not in finding.message


def test_the_rules_table_documents_exactly_the_rules():
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)+", rule) for rule in RULES)
    documented = re.findall(r"^\| ([a-z]+(?:-[a-z]+)+) \|", rules_module.__doc__, re.MULTILINE)
    assert documented == list(RULES)  # in precedence order, as the table says
    assert all(description.endswith(".") and "\n" not in description for description in RULES.values())


@pytest.mark.parametrize(
    ("source", "start"),
    [
        ("def f(:\n    pass\n", "agent.py:1: not valid Python"),
        ("x = 1\n  y = 2\n", "agent.py:2: not valid Python"),
        ("x = 1\0\n", "agent.py: not valid Python"),
        ("x = '\ud800'\n", "agent.py: not valid Python"),
        ("x = " + "-" * 100_000 + "1\n", "agent.py: nested too deeply"),
    ],
)
def test_source_that_is_not_valid_python_raises_one_line_check_error(source, start):
    with pytest.raises(CheckError) as raised:
        check_source(source, "agent.py")
    assert isinstance(raised.value, ValueError)
    assert str(raised.value).startswith(start)
    assert "\n" not in str(raised.value)


def test_the_check_never_runs_the_code(tmp_path):
    marker = tmp_path / "ran"
    source = f"import os\nopen({str(marker)!r}, 'w').write('x')\nos._exit(3)\nraise SystemExit(4)\n"
    assert check_source(source) == []
    assert not marker.exists()


def test_importing_the_check_loads_neither_databricks_sdk_nor_mlflow():
    code = "import obo_auth.check, sys; assert 'databricks.sdk' not in sys.modules and 'mlflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


FRAGMENTS = [
    "import obo_auth",
    "import functools, os",
    "from databricks.sdk import WorkspaceClient",
    "from databricks.sdk.credentials_provider import ModelServingUserCredentials as C",
    "w = WorkspaceClient(credentials_strategy=C())",
    "class A:\n    def __init__(self):\n        self.w = C()\n    def predict(self, r):\n        return obo_auth.current_request()",
    "@functools.cache\ndef f():\n    return C()",
    "def g(request):\n    t = request.headers.get('x-forwarded-access-token')\n    return WorkspaceClient(token=t) if t else WorkspaceClient()",
    "try:\n    t = h['x-forwarded-access-token']\nexcept KeyError:\n    t = os.environ['DATABRICKS_TOKEN']",
    "def h():\n    v = 1\n    def i():\n        nonlocal v\n        v = C()\n    return i",
    "match v:\n    case 1 if C():\n        pass",
    "async def a(self):\n    async with C() as c:\n        self.c, *rest = c, await c",
    "x = [y for y in z if (q := C())]",
    "global q",
    "lambda: C()",
    "x = 1  # obo-auth: ignore[",
    "'''# obo-auth: ignore'''",
    "    indented = 1",
    "(",
    "\\",
]


@given(st.one_of(st.text(), st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=8).map("\n".join)))
def test_check_source_raises_nothing_but_check_error_and_imports_nothing(source):
    before = set(sys.modules)
    try:
        findings = check_source(source)
    except CheckError as error:
        assert "\n" not in str(error)
    else:
        assert all(isinstance(f, Finding) and f.rule in RULES for f in findings)
    assert set(sys.modules) == before


# -- files and paths -------------------------------------------------------------------------


def test_python_files_walks_directories_skipping_what_is_not_the_agents_own(tmp_path):
    for name in [
        "agent.py",
        "notes.txt",
        ".hidden.py",
        "pkg/tools.py",
        "pkg/__pycache__/tools.py",
        ".git/hook.py",
        ".venv/lib/x.py",
        "venv/lib/x.py",
        "env/lib/python3.11/site-packages/x.py",
        "ui/node_modules/x.py",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    agent = tmp_path / "agent.py"
    assert python_files([tmp_path]) == [str(agent), str(tmp_path / "pkg" / "tools.py")]
    assert python_files([agent, tmp_path, tmp_path / "notes.txt"]) == [str(agent), str(tmp_path / "pkg" / "tools.py"), str(tmp_path / "notes.txt")]


def test_check_paths_sorts_by_path_then_line(tmp_path):
    unsafe = "from databricks.sdk.credentials_provider import ModelServingUserCredentials as C\nA = C()\nB = C()\n"
    (tmp_path / "b.py").write_text(unsafe)
    (tmp_path / "a.py").write_text(unsafe)
    findings = check_paths([tmp_path / "b.py", str(tmp_path / "a.py")])
    assert [(Path(f.path).name, f.line) for f in findings] == [("a.py", 2), ("a.py", 3), ("b.py", 2), ("b.py", 3)]


def test_check_paths_refuses_a_path_that_does_not_exist(tmp_path):
    missing = tmp_path / "no_agent.py"
    with pytest.raises(CheckError, match=re.escape(f"{missing}: no such file or directory")):
        check_paths([tmp_path, missing])


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"x = '\xff'\n", "not UTF-8 text"), (b"a = 1\nb = 2\nc = '\xff'\n", "not utf-8 text (byte 0xff at offset 17)")],
)
def test_check_paths_refuses_a_file_that_is_not_utf8(tmp_path, data, message):
    path = tmp_path / "agent.py"
    path.write_bytes(data)
    with pytest.raises(CheckError, match=re.escape(f"{path}: {message}")):
        check_paths([path])


def test_check_paths_honours_a_coding_comment_and_names_the_line_of_a_syntax_error(tmp_path):
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"# -*- coding: latin-1 -*-\nname = '\xe9'\n")
    assert check_paths([latin]) == []
    broken = tmp_path / "broken.py"
    broken.write_text("x = 1\nif x\n")
    with pytest.raises(CheckError, match=re.escape(f"{broken}:2: not valid Python")):
        check_paths([broken])


# -- the command -----------------------------------------------------------------------------

ON_SELF_AGENT = FIXTURES / "unsafe_agents" / "user_client_on_self.py"


def _invoke(*args: str):
    return CliRunner().invoke(check, [str(arg) for arg in args])


def test_text_output_is_one_line_per_finding_and_a_summary():
    result = _invoke(ON_SELF_AGENT)
    rule, slot = BY_ID["user-client-on-self"], BY_ID["slot-read-in-request"]
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{ON_SELF_AGENT}:23:21: slot-read-in-request {slot.message.format(use='ModelServingUserCredentials', name='predict')}"
        f"  (fix: {slot.fix})",
        f"{ON_SELF_AGENT}:26:13: user-client-on-self {rule.message}  (fix: {rule.fix})",
        "2 findings in 1 file",
    ]


def test_text_output_counts_files_and_findings():
    assert _invoke(EXAMPLE).stdout.splitlines() == ["no findings in 5 files"]
    assert _invoke(EXAMPLE).exit_code == 0
    two = _invoke(FIXTURES / "unsafe_agents" / "user_client_global.py", FIXTURES / "unsafe_agents" / "user_client_cached.py", EXAMPLE)
    assert two.stdout.splitlines()[-1] == "2 findings in 7 files"
    assert two.exit_code == 1


def test_json_output_has_the_schema_the_file_count_and_the_findings():
    result = _invoke("--format", "json", ON_SELF_AGENT, EXAMPLE)
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document == {
        "schema": "obo-auth-check/1",
        "files_checked": 6,
        "findings": [finding.to_dict() for finding in check_paths([ON_SELF_AGENT])],
    }
    clean = _invoke("--format", "json", EXAMPLE)
    assert (clean.exit_code, json.loads(clean.stdout)["findings"]) == (0, [])


def test_list_rules_prints_every_rule_and_its_description():
    result = _invoke("--list-rules")
    assert result.exit_code == 0
    assert [line.split(None, 1) for line in result.stdout.splitlines()] == [[rule, text] for rule, text in RULES.items()]


@pytest.mark.parametrize("args", [[], ["--format", "xml", str(EXAMPLE)]])
def test_usage_errors_exit_2(args):
    assert _invoke(*args).exit_code == 2


def test_input_it_cannot_check_is_one_error_line_and_exit_2(tmp_path):
    broken = tmp_path / "agent.py"
    broken.write_text("def predict(:\n")
    for path, message in [(tmp_path / "missing.py", "no such file or directory"), (broken, "1: not valid Python")]:
        result = _invoke(path)
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr.startswith(f"Error: {path}:") and message in result.stderr
        assert len(result.stderr.splitlines()) == 1


def test_control_characters_in_a_syntax_errors_path_and_message_never_reach_the_terminal(tmp_path):
    evil = tmp_path / "agent\x1b]0;x\x07\r\u202e.py"
    evil.write_text("x = 1\nname\u202e = 2\n")
    for result in (_invoke(evil), _invoke(tmp_path), _invoke("--format", "json", evil)):
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr.isprintable() or result.stderr.endswith("\n") and result.stderr[:-1].isprintable()
        assert "agent\\x1b]0;x\\x07\\x0d\\u202e.py:2: not valid Python" in result.stderr
        assert "U+202E" in result.stderr


def test_control_characters_in_paths_never_reach_the_terminal(tmp_path):
    evil = tmp_path / "agent\x1b[2J\u202e.py"
    evil.write_text("from databricks.sdk.credentials_provider import ModelServingUserCredentials as C\nA = C()\n")
    result = _invoke(tmp_path)
    assert result.exit_code == 1
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert "agent\\x1b[2J\\u202e.py:2:1: user-client-module-level" in result.stdout
    missing = _invoke(tmp_path / "gone\x1b]0;title\x07.py")
    assert missing.exit_code == 2
    assert "\x1b" not in missing.stderr and "\x07" not in missing.stderr and "gone\\x1b]0;title\\x07.py" in missing.stderr


def test_the_installed_command_checks_and_exits_with_its_status():
    found = subprocess.run([OBO_AUTH, "check", "--format", "json", ON_SELF_AGENT], capture_output=True, text=True, timeout=60, check=False)
    assert found.returncode == 1, found.stderr
    assert [f["rule"] for f in json.loads(found.stdout)["findings"]] == ["slot-read-in-request", "user-client-on-self"]
    missing = subprocess.run([OBO_AUTH, "check", "no/such/agent.py"], capture_output=True, text=True, timeout=60, check=False)
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr == "Error: no/such/agent.py: no such file or directory; give the agent's .py files or the directories holding them\n"
