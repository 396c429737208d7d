"""The example people agent (examples/people_agent: a supervisor over the "HR analytics" Genie
space and the handbook agent), called in-process as each user through obo_auth's pytest
plugin, with tokens downscoped to the scopes of its declared resources.

Who sees what of main.hr.employees comes from the default seed: alice (group hr) every row
and salary, carol no executive row and no salary, bob nothing (no SELECT). Served, the agent
is exercised by ``obo-auth demo --example people`` in test_demo.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import obo_auth

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PEOPLE = "List the employees with their names, teams and salaries."
HOW_MANY = "How many employees are there?"
HANDBOOK = "How does parental leave pay work?"
BOB_NOTE = "I could not use: the HR analytics space (you do not have permission)."


@pytest.fixture(scope="module")
def example():
    """The agent's class, its logic module, and the scopes its logged auth policy holds."""
    paths = [str(EXAMPLES / "people_agent"), str(EXAMPLES / "handbook_agent")]
    sys.path[:0] = paths
    try:
        import people_logic
        from people_chat_agent import PeopleChatAgent
    finally:
        for path in paths:
            sys.path.remove(path)
    return PeopleChatAgent, people_logic, obo_auth.required_scopes(*people_logic.RESOURCES)


def ask(obo, example, user, question=PEOPLE):
    agent, _, scopes = example
    return obo.ask(agent(), user, question, scopes=scopes)


def test_the_routing_rule(example):
    logic = example[1]
    assert logic.is_about_people(PEOPLE) and logic.is_about_people("What is the headcount?")
    assert not logic.is_about_people(HANDBOOK) and not logic.is_about_people("How many vacation days do I get?")


def test_the_auth_policy_asks_for_genie_and_the_index_as_the_user_and_the_chat_model_as_the_agent(example):
    policy = obo_auth.auth_policy(*example[1].RESOURCES)
    assert "dashboards.genie" in policy.user_auth_policy.api_scopes and "vectorsearch.vector-search-indexes" in policy.user_auth_policy.api_scopes
    assert [r.name for r in policy.system_auth_policy.resources] == ["chat-model"]


def test_each_user_gets_the_employees_their_grants_allow(obo, example):
    alice, bob, carol = (ask(obo, example, u) for u in ("alice", "bob", "carol"))
    assert alice.text.startswith("Here are 5 employees.")
    assert "| Evan Evans  | executive   |   310000 |" in alice.text
    assert alice.text.endswith("Query: Lists name, team, salary of main.hr.employees, ordered by name.")
    assert carol.text.startswith("Here are 4 employees.")
    assert "Evan Evans" not in carol.text and "| Dana Diaz   | sales       | NULL     |" in carol.text
    assert not any(str(salary) in carol.text for salary in (98000, 121000, 134000, 87000))
    assert carol.body["custom_outputs"] == {
        "genie_query": "SELECT `name`, `team`, `salary` FROM `main`.`hr`.`employees` ORDER BY `name`",
        "unavailable_tools": [],
    }
    # bob may ask the space but may not read the table: Genie's query fails, and the answer says so.
    assert bob.text == BOB_NOTE
    assert bob.body["custom_outputs"] == {"unavailable_tools": [{"name": "the HR analytics space", "reason": "permission_denied"}]}


def test_counts_differ_by_user_too(obo, example):
    assert ask(obo, example, "alice", HOW_MANY).text.startswith("There are 5 employees.")
    assert ask(obo, example, "carol", HOW_MANY).text.startswith("There are 4 employees.")


def test_genie_is_asked_as_each_user_via_the_agent_and_the_chat_model_not_at_all(obo, example):
    for user in ("alice", "bob", "carol"):
        ask(obo, example, user)
        genie = obo.audit.where(user=user, path="/genie/spaces/1eec1f60c07f5b62857d1e7828e413a0")
        assert {c.path.rsplit("/", 1)[-1] for c in genie} >= {"start-conversation", "1eec1f60c07f5b62857d1e7828e413a0"}
        genie.assert_all_as(user, actor="obo-agent")
    assert obo.audit.principals() == {"alice@example.com", "bob@example.com", "carol@example.com"}  # never the agent itself
    assert not obo.audit.where(path="/serving-endpoints/")


def test_other_questions_go_to_the_handbook_agent(obo, example):
    alice, bob = ask(obo, example, "alice", HANDBOOK), ask(obo, example, "bob", HANDBOOK)
    assert any(s.endswith("#5") for s in alice.body["custom_outputs"]["sources"])  # an hr-only passage
    assert bob.text.endswith("I could not use: the company handbook (you do not have permission).")
    assert not obo.audit.where(path="/genie/")
    obo.audit.where(path="/vector-search/indexes/").where(user="alice").assert_all_as("alice", actor="obo-agent")
    assert {(c.principal, c.actor) for c in obo.audit.where(path="/serving-endpoints/chat/completions")} == {("obo-agent", None)}


def test_streaming_gives_the_same_answer_a_line_at_a_time(obo, example):
    agent, _, scopes = example
    whole, streamed = (obo.ask(agent(), "carol", PEOPLE, stream=stream, scopes=scopes) for stream in (False, True))
    assert streamed.text == whole.text and len(streamed.body) == whole.text.count("\n") + 1
    assert streamed.body[-1]["custom_outputs"] == whole.body["custom_outputs"]


def test_no_call_and_no_answer_crosses_users_when_they_ask_at_once(obo, example):
    agent, _, scopes = example
    result = obo.check_isolation(agent, [PEOPLE, HANDBOOK], scopes=scopes, rounds=2)
    assert result.answers["bob"][PEOPLE] == BOB_NOTE
