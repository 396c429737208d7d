"""The people agent's logic: a supervisor over two sub-agents, both acting as the end user.

- Questions about people data (see ``is_about_people``) go to the Genie space "HR analytics",
  asked with the *invoker's* client: Genie runs its SQL as them, so Unity Catalog's grants, row
  filters and column masks decide what each user gets back.
- Every other question goes to the handbook agent (examples/handbook_agent/handbook_logic.py,
  logged beside this file through ``code_paths``): its retriever as the user, its chat model as
  the agent.

The local chat model cannot choose between tools yet, so the supervisor routes by keywords
rather than by asking a model; a real supervisor would offer both sub-agents as tools.
"""

from __future__ import annotations

import re
from typing import Any

from databricks.sdk.errors import PermissionDenied
from databricks_ai_bridge.genie import Genie, GenieResponse
from handbook_logic import RESOURCES as HANDBOOK_RESOURCES
from handbook_logic import Answer
from handbook_logic import answer as handbook_answer

import obo_auth

SPACE_ID = "1eec1f60c07f5b62857d1e7828e413a0"  # "HR analytics", over main.hr.employees
SPACE_NAME = "the HR analytics space"

RESOURCES = [
    obo_auth.GenieSpace(SPACE_ID),  # asked as the end user
    *HANDBOOK_RESOURCES,  # the handbook index as the end user, the chat model as the agent
]

# The routing rule: a question with one of these words is about people data and goes to Genie.
PEOPLE_WORDS = {"employee", "employees", "team", "teams", "salary", "salaries", "headcount", "people"}


def is_about_people(question: str) -> bool:
    return not PEOPLE_WORDS.isdisjoint(re.findall(r"[a-z]+", question.lower()))


def answer(messages: list[dict[str, Any]]) -> Answer:
    """Answers the conversation ``messages`` (chat-completions dicts) for the current request's user."""
    question = messages[-1]["content"]
    return ask_genie(question) if is_about_people(question) else handbook_answer(messages)


def ask_genie(question: str) -> Answer:
    """The Genie sub-agent: the space asked as the user; their grants, row filters and masks decide the answer."""
    req = obo_auth.current_request()
    genie = req.optional(SPACE_NAME, lambda: Genie(SPACE_ID, client=req.user_client, return_pandas=True))  # the invoker's client
    response = req.optional(SPACE_NAME, lambda: _succeeded(genie.ask_question(question))) if genie else None
    text = _as_text(response) if response else ""
    note = obo_auth.degraded_note(req.degraded)
    if note:
        text = f"{text}\n\n{note}" if text else note
    query = {"genie_query": response.query} if response and response.query else {}
    return Answer(text, [], {**query, **obo_auth.degraded_outputs(req.degraded)})


def _succeeded(response: GenieResponse) -> GenieResponse:
    """Genie reports a query the user may not run as a FAILED message, not as an HTTP error:
    raise it as the permission error it is, so ``req.optional`` degrades instead of answering with it."""
    if isinstance(response.result, str) and response.result.startswith("Genie query failed") and "INSUFFICIENT_PERMISSIONS" in response.result:
        raise PermissionDenied(response.result)
    return response


def _as_text(response: GenieResponse) -> str:
    """Genie's summary, its result table (NULL where a value is hidden or missing) and what its query did."""
    result = response.result if isinstance(response.result, str) else response.result.to_markdown(index=False, missingval="NULL")
    parts = [response.text_attachment_content, result, f"Query: {response.description}" if response.description else ""]
    return "\n\n".join(dict.fromkeys(p for p in parts if p))  # an answer without a query is its text once
