"""obo_auth's pytest plugin for agent authors (obo_auth.testing): the fixtures, marker and
options through the entry point in fresh pytest runs, each test's own audit (an earlier
test's tokens left out, and warned of), acting as users with no other login in the
environment, and check_isolation, which passes for the example agent and fails for agents
that leak across users: by their answers (the whole answer, both ways of asking), by the
audit alone, by which request sent a call, and by the calls a request did not make; and
which tells a nondeterministic agent from a leaking one.

Sibling: test_example_agent.py, the example's ResponsesAgent tested through the fixtures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.credentials_provider import ModelServingUserCredentials
from mlflow.pyfunc import ChatAgent
from mlflow.types.agent import ChatAgentChunk, ChatAgentMessage, ChatAgentResponse

import obo_auth
from obo_auth.http_edge import NotFound
from obo_auth.redact import fingerprint
from obo_auth.serving import ServedEndpoint
from obo_auth.testing.answers import normalised
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


def _reply(*contents: str) -> ChatAgentResponse:
    return ChatAgentResponse(messages=[ChatAgentMessage(id=str(uuid.uuid4()), role="assistant", content=c) for c in contents])


def _me() -> str:
    return obo_auth.current_request().user_client.current_user.me().user_name


class SharedClientAgent(ChatAgent):
    """Keeps the client of the request that last came in on self, and files the ticket with it:
    with two requests at once, one files as the other user, whose request is still in flight."""

    def __init__(self, together: threading.Barrier | None = None):
        self.together = together  # makes the two requests of a round meet, so the race always goes one way

    def __deepcopy__(self, memo):
        return SharedClientAgent()  # a copy answers alone: no other request to wait for

    @obo_auth.on_behalf_of_user
    def predict(self, messages, context=None, custom_inputs=None):
        config = obo_auth.current_request().user_client.config
        self.client = WorkspaceClient(host=config.host, token=f"{config.token}", auth_type="pat")
        if self.together:
            self.together.wait()  # both have replaced self.client: it is the client of whichever came last
        self.client.current_user.me()
        if self.together:
            self.together.wait()  # neither request ends before both have filed
        return _reply("Your ticket was filed.")


class ThreadAgent(ChatAgent):
    """Calls as the user from a thread that does not copy the request's context, with a client
    made from its token (obo_auth's own user_client refuses such a thread)."""

    @obo_auth.on_behalf_of_user
    def predict(self, messages, context=None, custom_inputs=None):
        config = obo_auth.current_request().user_client.config
        client = WorkspaceClient(host=config.host, token=f"{config.token}", auth_type="pat")
        thread = threading.Thread(target=client.current_user.me)
        thread.start()
        thread.join()
        return _reply("done")


class PlatformCredentialsAgent(ChatAgent):
    """The platform's pattern: outside serving, ModelServingUserCredentials is the environment's identity."""

    def __init__(self):
        self.client = WorkspaceClient(credentials_strategy=ModelServingUserCredentials())

    @obo_auth.on_behalf_of_user
    def predict(self, messages, context=None, custom_inputs=None):
        me = self.client.current_user.me()
        return _reply(f"you are {me.user_name if '@' in me.user_name else me.display_name}")


_ANSWERS: dict[str, str] = {}


class ModuleCacheAgent(ChatAgent):
    """Caches answers by question in a module-level dict, outside every copy of the agent."""

    @obo_auth.on_behalf_of_user
    def predict(self, messages, context=None, custom_inputs=None):
        question = messages[-1].content
        if question not in _ANSWERS:
            _ANSWERS[question] = _me()
        return _reply(_ANSWERS[question])


class EarlierMessageAgent(ChatAgent):
    """Keeps the first user's name on self and shows it before a last message that never changes:
    in an earlier message (predict), in the first chunk's custom_outputs (predict_stream)."""

    first = None

    @obo_auth.on_behalf_of_user
    def predict(self, messages, context=None, custom_inputs=None):
        self.first = self.first or _me()
        return _reply(f"Found {self.first}'s files.", "Anything else?")

    @obo_auth.on_behalf_of_user
    def predict_stream(self, messages, context=None, custom_inputs=None):
        self.first = self.first or _me()
        chunk_id = str(uuid.uuid4())
        yield ChatAgentChunk(delta=ChatAgentMessage(id=chunk_id, role="assistant", content="Looking."), custom_outputs={"user": self.first})
        yield ChatAgentChunk(delta=ChatAgentMessage(id=chunk_id, role="assistant", content=" Done."), custom_outputs={"status": "ok"})


class TimestampedAgent(ChatAgent):
    """Answers each user with their name and the time: never twice the same."""

    @obo_auth.on_behalf_of_user
    def predict(self, messages, context=None, custom_inputs=None):
        return _reply(f"{_me()} (at {time.time()})")


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
            "*check_isolation found 1 problem(s) in 8 requests: 2 users x 1 question, each asked alone twice, then 2 rounds 2 at a time:",
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
    # It streams too, so both ways: 3 users x 2 questions x 2 ways x (2 alone + 2 rounds).
    assert (result.users, result.requests, result.streams) == (("alice", "bob", "carol"), 48, (False, True))
    assert result.ok and str(result) == (
        "check_isolation passed, 48 requests: 3 users x 2 questions x predict and predict_stream, each asked alone twice, "
        "then 2 rounds 8 at a time: every answer with others was the user's own answer alone; "
        f"{result.calls} calls as those users, each with its own request's token while that request ran, "
        "and sent by that request (as requests and httpx show)"
    )
    assert "HR only" in result.answers["alice"][QUESTION]
    assert result.answers["bob"][QUESTION].endswith("I could not use: the company handbook (you do not have permission).")
    assert "HR only" not in result.answers["carol"][QUESTION]
    on_behalf = result.audit.where(on_behalf_of_user=True)
    assert result.calls == len(on_behalf) > 0 and on_behalf.principals() == {f"{u}@example.com" for u in result.users}
    assert repr(result) == "IsolationResult(3 users, 2 questions, 48 requests, 0 problems)"


def test_an_agent_that_caches_answers_across_users_fails_the_isolation_check(obo, caching_agent):
    with pytest.raises(IsolationError) as failed:
        obo.check_isolation(caching_agent(), QUESTION, rounds=2)
    # Each user's answer alone came from a fresh copy; in round 2 the cache held one user's answer for all.
    problems = failed.value.result.problems
    assert problems and all(re.match(rf"\w+ asked '{re.escape(QUESTION)}' with other users at once \(rounds? [\d, ]+\) and got the answer \w+ got alone", p) for p in problems)
    assert "    custom_outputs['sources']: with others" in str(failed.value)
    assert not TOKEN_SHAPED.search(str(failed.value))


def test_an_agent_that_keeps_a_users_token_fails_the_isolation_check_on_the_audit_alone(obo):
    # compare= sees no difference in any answer: only the calls can fail the check.
    with pytest.raises(IsolationError) as failed:
        obo.check_isolation(KeptClientAgent(), "who am I?", rounds=2, compare=lambda reply: None)
    # Round 2 at least used a client built in round 1 (which one depends on the threads' timing);
    # a round-1 request may also have used another's client while that one was in flight.
    problems = failed.value.result.problems
    assert problems and all(
        re.fullmatch(
            r"\d+ calls? used the token of \w+'s request 'who am I\?' \(in round 1\) after that request had ended, "
            r"e\.g\. \w+@example\.com via obo-agent GET /api/2\.0/preview/scim/v2/Me -> (allow 200|deny 401)",
            problem,
        )
        or re.fullmatch(r"1 call sent by \w+'s request 'who am I\?' \(in round 1\) ran as \w+@example\.com, .* in flight", problem)
        for problem in problems
    )
    assert any("after that request had ended" in p for p in problems)
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
        assert result.requests == 12 and result.answers["bob"][QUESTION] == bob.text
        assert str(result).endswith("calls as those users, each with a token serving minted for the agent, within one request of its user")
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


def test_a_call_sent_by_another_request_still_in_flight_fails_the_isolation_check(obo):
    # Every call ran within its token's request, so the audit sees nothing; the sender does.
    with pytest.raises(IsolationError) as failed:
        obo.check_isolation(SharedClientAgent(threading.Barrier(2, timeout=30)), "file a ticket", users=["alice", "bob"], rounds=1, concurrency=2)
    (problem,) = failed.value.result.problems
    sent = re.fullmatch(
        r"1 call sent by (\w+)'s request 'file a ticket' \(in round 1\) ran as (\w+)@example\.com, "
        r"with the token of (\w+)'s request 'file a ticket' \(in round 1\), while that request was in flight",
        problem,
    )
    assert sent and sent[1] != sent[2] == sent[3]
    with pytest.raises(IsolationError) as failed:
        obo.check_isolation(ThreadAgent, "file a ticket", users=["alice"], rounds=1)
    assert failed.value.result.problems == (
        "1 call sent outside every request of the check (by a thread that did not copy the request's context) ran as "
        "alice@example.com, with the token of alice's request 'file a ticket' (alone), while that request was in flight",
        "1 call sent outside every request of the check (by a thread that did not copy the request's context) ran as "
        "alice@example.com, with the token of alice's request 'file a ticket' (alone, again), while that request was in flight",
        "1 call sent outside every request of the check (by a thread that did not copy the request's context) ran as "
        "alice@example.com, with the token of alice's request 'file a ticket' (in round 1), while that request was in flight",
    )
    assert not TOKEN_SHAPED.search(str(failed.value) + repr(failed.value.result))


def test_an_agent_acting_as_itself_for_every_user_fails_the_isolation_check(obo):
    with pytest.raises(IsolationError) as failed:
        obo.check_isolation(PlatformCredentialsAgent, "who am I?", users=["alice"], rounds=1)
    assert failed.value.result.answers == {"alice": {"who am I?": "you are obo-agent"}}  # outside serving: the agent
    assert failed.value.result.problems == (
        "no call ran as alice: the agent may be acting as itself (ModelServingUserCredentials outside serving falls back "
        "to the environment's identity), or answering from what it kept before the check",
    )


def test_answers_kept_outside_the_agent_object_or_before_the_check_fail_the_isolation_check(obo, caching_agent):
    # The answers alone are all alice's, so they agree; the calls bob's and carol's did not make do not.
    _ANSWERS.clear()
    with pytest.raises(IsolationError) as failed:
        obo.check_isolation(ModuleCacheAgent, "who am I?", rounds=1)
    assert failed.value.result.problems == tuple(
        f"{user}'s request 'who am I?' (alone) made no call as {user}, while the same question asked alone by alice made "
        "calls as them: its answer came from state kept outside the fresh agent object it was asked of "
        "(a module-level, class-level or functools cache), or from before the check"
        for user in ("bob", "carol")
    )
    used = caching_agent()
    obo.ask(used, "alice", QUESTION)
    with pytest.raises(ValueError, match=r"^this CachingHandbookAgent already answered obo.ask in this test: .*; pass its class, or a fresh one$"):
        obo.check_isolation(used, QUESTION)
    with obo.as_user("alice"):  # used where the check cannot tell: every copy answers from its cache
        (used := caching_agent()).predict([ChatAgentMessage(role="user", content=QUESTION)])
    with pytest.raises(IsolationError, match=r"no call ran as any of alice, bob and carol: .* or answering from what it kept before the check"):
        obo.check_isolation(used, QUESTION, stream=False, rounds=1)


def test_the_whole_answer_is_compared_both_ways_of_asking(obo):
    # The last message, and the last chunk's custom_outputs, are the same for everyone.
    with pytest.raises(IsolationError) as failed:
        obo.check_isolation(EarlierMessageAgent, "whose files?", users=["alice", "bob"], rounds=2, concurrency=2)
    result = failed.value.result
    assert result.streams == (False, True) and " in 16 requests: 2 users x 1 question x predict and predict_stream, " in str(result)
    # From round 2 on, whichever user's name the agent kept is in the other's answers, both ways.
    asked = [p for p in result.problems if "(streamed)" not in p]
    streamed = [p for p in result.problems if "(streamed)" in p]
    assert asked and all(re.search(r"\n    messages\[0\]\.content: with others \"Found \w+@example.com's files.\"; alone \"Found \w+@example.com's files.\"$", p) for p in asked)
    assert streamed and all(re.search(r"\n    events\[0\]\.custom_outputs\.user: with others \"\w+@example.com\"; alone \"\w+@example.com\"$", p) for p in streamed)
    # Generated ids are renamed in order of appearance; inside custom_outputs, ids are data.
    answer = {"messages": [{"id": "m-1", "tool_call_id": "c-7"}, {"id": "m-2", "tool_call_id": "c-7"}], "custom_outputs": {"id": "doc-5"}}
    assert normalised(answer) == {
        "messages": [{"id": "<id 1>", "tool_call_id": "<id 2>"}, {"id": "<id 3>", "tool_call_id": "<id 2>"}],
        "custom_outputs": {"id": "doc-5"},
    }


def test_a_nondeterministic_agent_is_told_apart_from_a_leaking_one(obo):
    with pytest.raises(IsolationError) as failed:
        obo.check_isolation(TimestampedAgent, "who am I?", users=["alice", "bob"], rounds=1)
    (problem,) = failed.value.result.problems  # once, and no answer claimed to be another user's
    assert problem.startswith(
        "answers of alice and bob to 'who am I?' differ between two runs alone: the agent is not deterministic; "
        "pass compare= to compare what should be stable:\n    second run: '"
    )
    result = obo.check_isolation(TimestampedAgent, "who am I?", users=["alice", "bob"], rounds=1, compare=lambda r: r.text.split(" (at ")[0])
    assert result.answers["bob"]["who am I?"].startswith("bob@example.com (at ")


def test_an_as_user_block_has_no_login_but_the_agents(obo, monkeypatch):
    others = {"DATABRICKS_TOKEN": "x", "DATABRICKS_WAREHOUSE_ID": "w", "ARM_CLIENT_ID": "a", "GOOGLE_CREDENTIALS": "g", "DATABRICKS_CONFIG_FILE": "/cfg"}
    for name, value in others.items():
        monkeypatch.setenv(name, value)
    with obo.as_user("alice"):
        login = {name: value for name, value in os.environ.items() if name.startswith(("DATABRICKS_", "ARM_", "GOOGLE_"))}
        assert sorted(login) == ["DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_CONFIG_FILE", "DATABRICKS_HOST"]
        assert not os.path.exists(login["DATABRICKS_CONFIG_FILE"])  # no ~/.databrickscfg profile either
    assert {name: os.environ.get(name) for name in others} == others


def test_a_tests_audit_leaves_out_an_earlier_tests_tokens_and_warns_of_them(pytester):
    pytester.makepyfile(
        WHOAMI
        + '''
import threading
import time

from databricks.sdk import WorkspaceClient

STOP = threading.Event()


class Prefetcher(WhoAmI):
    """Goes on calling as the user in a thread of its own, after answering."""

    @obo_auth.on_behalf_of_user
    def predict(self, messages, context=None, custom_inputs=None):
        config = obo_auth.current_request().user_client.config
        kept = WorkspaceClient(host=config.host, token=f"{config.token}", auth_type="pat")

        def warm():
            while not STOP.wait(0.05):
                try:
                    kept.current_user.me()
                except Exception:
                    pass

        threading.Thread(target=warm, daemon=True).start()
        return super().predict(messages, context, custom_inputs)


def test_alice(obo):
    assert obo.ask(Prefetcher(), "alice", "who am I?").text == "alice@example.com"


def test_bob(obo):
    start = len(obo.workspace.audit())
    while not any(r.principal == "alice@example.com" for r in obo.workspace.audit()[start:]):
        time.sleep(0.02)
    STOP.set()
    assert obo.ask(WhoAmI(), "bob", "who am I?").text == "bob@example.com"
    obo.audit.where(on_behalf_of_user=True).assert_all_as("bob")
'''
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*::test_bob",
            "*TokenOutlivedItsTest: * during this test carried a token minted for the agent in *::test_alice, after that test had ended "
            "(e.g. alice@example.com via obo-agent GET /api/2.0/preview/scim/v2/Me -> deny 401): something of it (a thread, a kept client) "
            "still uses it. Left out of this test's obo.audit.",
        ]
    )
    assert not TOKEN_SHAPED.search(result.stdout.str())
