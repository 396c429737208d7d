"""obo_auth's pytest plugin for agent authors (obo_auth.testing): the fixtures, marker and
options through the entry point in fresh pytest runs, each test's own audit, acting as users,
and check_isolation, which passes for the example agent and fails for agents that leak
across users, by their answers and by the audit alone.

Sibling: test_example_agent.py, the example's ResponsesAgent tested through the fixtures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import pytest
from databricks.sdk import WorkspaceClient
from mlflow.pyfunc import ChatAgent
from mlflow.types.agent import ChatAgentMessage, ChatAgentResponse

import obo_auth
from obo_auth.local._base import NotFound
from obo_auth.redact import fingerprint
from obo_auth.serving import ServedEndpoint
from obo_auth.testing.asking import Reply
from obo_auth.testing.audit import AuditCall, AuditView
from obo_auth.testing.findings import Asked, call_problems
from obo_auth.testing.isolation import IsolationError

pytest_plugins = ["pytester"]

QUESTION = "How does parental leave pay work?"
TOKEN_SHAPED = re.compile(r"(dapi|dose)[0-9a-f]{32}")

# An agent as an inner pytest run sees it: answers with the name of the user it acts for.
WHOAMI = '''
import uuid

import obo_auth
from mlflow.pyfunc import ChatAgent
from mlflow.types.agent import ChatAgentMessage, ChatAgentResponse


class WhoAmI(ChatAgent):
    @obo_auth.on_behalf_of_user
    def predict(self, messages, context=None, custom_inputs=None):
        name = obo_auth.current_request().user_client.current_user.me().user_name
        return ChatAgentResponse(messages=[ChatAgentMessage(id=str(uuid.uuid4()), role="assistant", content=name)])
'''


@pytest.fixture(scope="module")
def handbook_agent(handbook_example):
    """The example's ChatAgent class (its module imports handbook_logic from beside it)."""
    sys.path.insert(0, str(handbook_example.HERE))
    try:
        from chat_agent import HandbookChatAgent
    finally:
        sys.path.remove(str(handbook_example.HERE))
    return HandbookChatAgent


@pytest.fixture(scope="module")
def caching_agent(handbook_agent):
    """The example with a per-question answer cache on self: the first user's answer is everyone's."""

    class CachingHandbookAgent(handbook_agent):
        def __init__(self):
            self._answers = {}

        @obo_auth.on_behalf_of_user
        def predict(self, messages, context=None, custom_inputs=None):
            question = messages[-1].content
            if question not in self._answers:
                self._answers[question] = super().predict(messages, context, custom_inputs)
            return self._answers[question]

    return CachingHandbookAgent


class KeptClientAgent(ChatAgent):
    """Keeps a client built from its first request's token, formatted into a plain string
    (what README says a library must not do): later requests act as that first user."""

    _client = None

    @obo_auth.on_behalf_of_user
    def predict(self, messages, context=None, custom_inputs=None):
        config = obo_auth.current_request().user_client.config
        if self._client is None:
            self._client = WorkspaceClient(host=config.host, token=f"{config.token}", auth_type="pat")
        name = self._client.current_user.me().user_name
        return ChatAgentResponse(messages=[ChatAgentMessage(id=str(uuid.uuid4()), role="assistant", content=f"Hello {name}")])


def test_the_plugin_module_imports_only_the_standard_library_and_pytest():
    # Every pytest run where obo_auth is installed imports it: nothing heavy, nothing of the workspace.
    code = (
        "import json, sys, pytest; before = set(sys.modules); import obo_auth.testing.plugin; "
        "new = set(sys.modules) - before; "
        "print(json.dumps([sorted({m.split('.')[0] for m in new} - set(sys.stdlib_module_names)), sorted(m for m in new if m.startswith('obo_auth'))]))"
    )
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(printed) == [["obo_auth"], ["obo_auth", "obo_auth.testing", "obo_auth.testing.plugin"]]


def test_a_fresh_pytest_run_gets_the_fixtures_through_the_entry_point(pytester):
    pytester.makepyfile(
        WHOAMI
        + '''
import os

URLS = []


def test_alice(obo, obo_workspace):
    assert obo.workspace is obo_workspace
    assert obo.ask(WhoAmI(), "alice", "who am I?").text == "alice@example.com"
    obo.audit.where(on_behalf_of_user=True).assert_all_as("alice", actor="obo-agent")
    URLS.append(obo_workspace.url)


def test_bob_in_a_block_with_only_this_tests_calls(obo, obo_workspace):
    assert obo_workspace.url == URLS[0]  # one workspace for the session's default seed
    assert not obo.audit  # alice's calls were the other test's
    before = os.environ.get("DATABRICKS_CLIENT_ID")
    with obo.as_user("bob") as bob:
        assert os.environ["DATABRICKS_CLIENT_ID"] != before  # the agent's own identity, for req.system_client
        assert WhoAmI().predict([ChatAgentMessage(role="user", content="who am I?")]).messages[0].content == "bob@example.com"
    assert os.environ.get("DATABRICKS_CLIENT_ID") == before
    bob.audit.where(on_behalf_of_user=True).assert_all_as("bob", actor="obo-agent")
    assert repr(bob) == f"UserBlock(bob@example.com, {len(bob.audit)} calls)"
'''
    )
    pytester.runpytest("-p", "no:cacheprovider", "--strict-markers").assert_outcomes(passed=2)
    listing = pytester.runpytest("-p", "no:cacheprovider", "--fixtures")
    listing.stdout.fnmatch_lines_random(["obo_workspace -- *", "obo -- *"])


def test_the_marker_chooses_the_seed_and_the_options_choose_the_default(pytester):
    pytester.makefile(".yaml", **{"seeds/erin": "users:\n  - {user_name: erin@example.com}\n"})
    pytester.makefile(".yaml", frank="users:\n  - {user_name: frank@example.com}\n", grace="users:\n  - {user_name: grace@example.com}\n")
    pytester.makeini("[pytest]\nobo_seed = frank.yaml\n")
    tests = pytester.makepyfile(
        '''
import pytest


@pytest.mark.obo_seed({"users": [{"user_name": "dave@example.com"}], "service_principals": [{"name": "helper"}]}, agent="helper")
def test_a_dict(obo, obo_workspace):
    assert obo_workspace.users() == ["dave@example.com"] and obo.agent == "helper"


@pytest.mark.obo_seed("seeds/erin.yaml")
def test_a_path_beside_the_test(obo_workspace):
    assert obo_workspace.users() == ["erin@example.com"]


def test_the_default(request, obo_workspace):
    expected = "grace@example.com" if request.config.getoption("obo_seed") else "frank@example.com"
    assert obo_workspace.users() == [expected]


@pytest.mark.obo_seed()
def test_a_marker_without_a_seed(obo_workspace):
    pass


@pytest.mark.obo_seed({"users": [{"name": "x"}]})
def test_a_bad_seed(obo_workspace):
    pass
'''
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=3, errors=2)
    assert "During handling" not in result.stdout.str()  # each refusal said once
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.obo_seed takes one seed (a YAML path or a dict) and optionally agent='NAME'",
            "seed dict: invalid seed:",
            "  field 'users?0?.user_name': required field is missing*",
        ]
    )
    pytester.runpytest("-p", "no:cacheprovider", "--obo-seed", "grace.yaml", f"{tests.name}::test_the_default").assert_outcomes(passed=1)


def test_failures_report_the_user_the_question_and_the_difference_and_never_a_token(pytester):
    pytester.makepyfile(
        WHOAMI
        + '''

class RemembersItsFirstAnswer(WhoAmI):
    """Answers every request with the first answer it gave, kept on self."""

    first = None

    def predict(self, messages, context=None, custom_inputs=None):
        if self.first is None:
            self.first = super().predict(messages, context, custom_inputs)
        return self.first


def test_isolation(obo):
    obo.check_isolation(RemembersItsFirstAnswer, "who am I?", users=["alice", "bob"], rounds=2, concurrency=2)


class Broken(WhoAmI):
    def predict(self, messages, context=None, custom_inputs=None):
        super().predict(messages, context, custom_inputs)
        raise RuntimeError("the tool broke")


def test_a_broken_agent(obo):
    obo.ask(Broken(), "alice", "who am I?")
'''
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--showlocals")  # the frames holding tokens are hidden
    result.assert_outcomes(failed=2)
    # Which user's answer the agent keeps depends on which request finished first: either way, one is named.
    result.stdout.fnmatch_lines(
        [
            "*check_isolation found 1 problem(s) in 6 requests: 2 users x 1 question, each asked alone, then 2 rounds 2 at a time:",
            "E       - * asked 'who am I?' with other users at once (round*) and got the answer * got alone, not *'s own:",
            "E           with others: '*@example.com'",
            "E           alone:       '*@example.com'",
        ]
    )
    assert not TOKEN_SHAPED.search(result.stdout.str())


def test_without_a_chosen_mlflow_store_nothing_is_left_behind(pytester, monkeypatch, tmp_path):
    # A fresh process with no store chosen: mlflow would trace the agent's calls to ./mlflow.db.
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("OBO_AUTH_HOME", str(tmp_path / "home"))
    pytester.makepyfile(
        WHOAMI
        + '''
import os


def test_alice(obo):
    assert obo.ask(WhoAmI(), "alice", "who am I?").text == "alice@example.com"
    assert os.environ["MLFLOW_TRACKING_URI"].startswith("sqlite:///")
'''
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert not {"mlflow.db", "mlruns"} & {p.name for p in pytester.path.iterdir()}
    assert not (tmp_path / "home" / "mlflow").exists()  # nor obo_auth's default store


def test_as_user_and_ask_name_the_workspaces_users_and_take_only_agents(obo, handbook_agent):
    with pytest.raises(NotFound, match=r"^No user or service principal named 'dave' in this workspace; known: alice, bob, carol"):
        obo.ask(handbook_agent(), "dave", QUESTION)
    with pytest.raises(NotFound, match="named 'dave'"):
        obo.check_isolation(handbook_agent, QUESTION, users=["alice", "dave"])
    for not_an_agent, shown in ((object(), "an object"), (handbook_agent, "the class HandbookChatAgent")):
        with pytest.raises(TypeError) as refused:
            obo.ask(not_an_agent, "alice", QUESTION)
        assert str(refused.value) == f"expected an agent object (an mlflow ChatAgent or ResponsesAgent) or a served agent, got {shown}"
    with pytest.raises(TypeError, match="got a dict$"):
        obo.check_isolation(lambda: {}, QUESTION)
    elsewhere = ServedEndpoint("http://127.0.0.1:9", "agent", None, True, "http://127.0.0.1:8", "chat_agent")
    with pytest.raises(ValueError, match=rf"^the endpoint at http://127.0.0.1:9 serves the workspace at http://127.0.0.1:8, not this test's at {obo.workspace.url}$"):
        obo.ask(elsewhere, "alice", QUESTION)
    assert not obo.audit  # refused before anything was asked


def test_the_example_agent_passes_the_isolation_check(obo, handbook_agent):
    result = obo.check_isolation(handbook_agent(), [QUESTION, "How many vacation days do I get?"], rounds=2)
    assert (result.users, result.requests) == (("alice", "bob", "carol"), 18)
    assert result.ok and str(result).startswith("check_isolation passed, 18 requests: 3 users x 2 questions")
    assert "HR only" in result.answers["alice"][QUESTION]
    assert result.answers["bob"][QUESTION].endswith("I could not use: the company handbook (you do not have permission).")
    assert "HR only" not in result.answers["carol"][QUESTION]
    on_behalf = result.audit.where(on_behalf_of_user=True)
    assert result.calls == len(on_behalf) > 0 and on_behalf.principals() == {f"{u}@example.com" for u in result.users}
    assert repr(result) == "IsolationResult(3 users, 2 questions, 18 requests, 0 problems)"


def test_an_agent_that_caches_answers_across_users_fails_the_isolation_check(obo, caching_agent):
    with pytest.raises(IsolationError) as failed:
        obo.check_isolation(caching_agent(), QUESTION, rounds=2)
    # Each user's answer alone came from a fresh copy; in round 2 the cache held one user's answer for all.
    problems = failed.value.result.problems
    assert problems and all(re.match(rf"\w+ asked '{re.escape(QUESTION)}' with other users at once \(rounds? [\d, ]+\) and got the answer \w+ got alone", p) for p in problems)
    assert "    custom_outputs['sources']: with others" in str(failed.value)
    assert not TOKEN_SHAPED.search(str(failed.value))


def test_an_agent_that_keeps_a_users_token_fails_the_isolation_check_on_the_audit_alone(obo):
    # compare= sees no difference in any answer: only the audit can fail the check.
    with pytest.raises(IsolationError) as failed:
        obo.check_isolation(KeptClientAgent(), "who am I?", rounds=2, compare=lambda reply: None)
    # Round 2 at least used a client built in round 1 (which one depends on the threads' timing).
    problems = failed.value.result.problems
    assert problems and all(
        re.fullmatch(
            r"\d+ calls? used the token of \w+'s request 'who am I\?' \(in round 1\) after that request had ended, "
            r"e\.g\. \w+@example\.com via obo-agent GET /api/2\.0/preview/scim/v2/Me -> (allow 200|deny 401)",
            problem,
        )
        for problem in problems
    )
    assert any("token of a request that ended" in c.reason for c in obo.audit.denied)
    assert not TOKEN_SHAPED.search(str(failed.value) + repr(failed.value.result) + repr(obo))


def test_served_attribution_needs_one_request_of_the_tokens_user_to_span_its_calls():
    # Served, serving mints each request's token unseen: the check has only the audit's fingerprints.
    def asked(user, start, end):
        return Asked(user, f"{user}@example.com", "q", 1, Reply(200, "", {}), start, end, None)

    def call(time, user, token, actor="obo-agent"):
        return AuditCall.of(
            {"time": time, "principal": f"{user}@example.com", "actor": actor, "method": "GET", "path": "/api/2.0/preview/scim/v2/Me",
             "decision": "allow", "status": 200, "token_fingerprint": fingerprint(token)}
        )  # fmt: skip

    requests = [asked("alice", 0, 10), asked("alice", 20, 30), asked("bob", 5, 25)]
    users = {"alice@example.com", "bob@example.com"}
    fine = AuditView([call(1, "alice", "a1"), call(9, "alice", "a1"), call(21, "alice", "a2"), call(6, "bob", "b1")])
    assert call_problems(requests, fine, users, "obo-agent", tokens_known=False) == []
    escaped = AuditView([call(1, "alice", "a1"), call(22, "alice", "a1")])  # one token, two of alice's requests
    (problem,) = call_problems(requests, escaped, users, "obo-agent", tokens_known=False)
    assert problem.startswith("2 calls ran as alice@example.com with one token at times that no single request of theirs spans")
    not_minted = AuditView([call(6, "bob", "b-own", actor=None)])  # bob's own token, not one serving minted
    (problem,) = call_problems(requests, not_minted, users, "obo-agent", tokens_known=False)
    assert problem.startswith("1 call ran as bob@example.com with a token not minted for the agent obo-agent")


@pytest.fixture(scope="module")
def logged_handbook(tmp_path_factory, own_mlflow_store, handbook_example):
    with own_mlflow_store(tmp_path_factory.mktemp("plugin-store"), "plugin"):
        yield handbook_example.log().model_uri  # no user at log time: mlflow's predict gets a stand-in


def test_a_served_model_is_asked_as_users_and_passes_the_isolation_check(obo, logged_handbook):
    with obo.serve(logged_handbook) as served:  # stopped at the block's end; without `with`, at the session's
        assert obo.serve(logged_handbook) is served  # started once, kept
        bob = served.ask("bob", QUESTION)
        assert bob.ok and bob.text.endswith("I could not use: the company handbook (you do not have permission).")
        alice = obo.ask(served, "alice", QUESTION, stream=True)
        assert alice.text.startswith("HR only") and "parental-leave#5" in str(alice.body[-1]["custom_outputs"])
        index_calls = obo.audit.where(path="/vector-search/")
        assert index_calls.principals() == {"alice@example.com", "bob@example.com"} and not index_calls.where(on_behalf_of_user=False)
        result = obo.check_isolation(served, QUESTION, rounds=2, concurrency=6)
        assert result.requests == 9 and result.answers["bob"][QUESTION] == bob.text
        assert not TOKEN_SHAPED.search(repr(served) + repr(result))


def test_a_block_acts_as_its_user_with_the_agents_identity_for_the_block_only(obo, handbook_agent):
    agent = handbook_agent()
    login = {name: os.environ.get(name) for name in ("DATABRICKS_HOST", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET")}
    with obo.as_user("carol") as carol:
        assert os.environ["DATABRICKS_CLIENT_ID"] == obo.workspace.client_credentials("obo-agent")[0]
        agent.predict([ChatAgentMessage(role="user", content=QUESTION)])
    assert {name: os.environ.get(name) for name in login} == login  # the agent's identity was the block's only
    carol.audit.where(on_behalf_of_user=True).assert_all_as("carol", actor="obo-agent")
    assert {c.principal for c in carol.audit.where(path="/serving-endpoints/chat/completions")} == {"obo-agent"}


def test_a_token_kept_past_its_block_is_refused_saying_why(obo):
    with obo.as_user("alice"):
        kept = KeptClientAgent()
        assert kept.predict([ChatAgentMessage(role="user", content="who am I?")]).messages[0].content == "Hello alice@example.com"
    with obo.as_user("bob"), pytest.raises(Exception, match=r"revoked \(token of a request that ended\)"):
        kept.predict([ChatAgentMessage(role="user", content="who am I?")])
