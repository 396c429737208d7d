"""The handbook agent's logic, shared by its ChatAgent and ResponsesAgent twins.

It follows the Databricks agent-authoring pattern with obo_auth doing the identity work:
- the retriever is built per request with the *invoker's* client (``req.optional``), so each
  user retrieves only the rows Unity Catalog lets them read, and a user without access gets
  an answer that says the handbook was unavailable to them;
- the chat model ``chat-model`` is called as the *agent's own* identity (``req.system_client``);
- ``RESOURCES`` is what obo_auth.log_model turns into the logged auth policy, so the scopes
  the model asks for are exactly what it uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from databricks_openai import DatabricksOpenAI, VectorSearchRetrieverTool

import obo_auth

INDEX = "main.docs.handbook_index"
CHAT_ENDPOINT = "chat-model"
TOOL_NAME = "handbook_search"

RESOURCES = [
    obo_auth.VectorSearchIndex(INDEX),  # read as the end user
    obo_auth.ServingEndpoint(CHAT_ENDPOINT, on_behalf_of_user=False),  # called as the agent
]

SYSTEM_PROMPT = "You answer questions about the company handbook. Use the handbook_search tool and cite doc_uri values."


@dataclass
class Answer:
    text: str
    sources: list[str] = field(default_factory=list)
    custom_outputs: dict[str, Any] = field(default_factory=dict)


def answer(messages: list[dict[str, Any]]) -> Answer:
    """Answers the conversation ``messages`` (chat-completions dicts) for the current request's user."""
    req = obo_auth.current_request()
    retriever = req.optional(
        "the company handbook",
        lambda: VectorSearchRetrieverTool(
            index_name=INDEX,
            workspace_client=req.user_client,  # the invoker: Unity Catalog grants and row filters apply
            tool_name=TOOL_NAME,
            tool_description="Search the company handbook for policies and procedures.",
            columns=["id", "chunk", "doc_uri", "title"],
            doc_uri="doc_uri",
            num_results=3,
        ),
    )
    llm = DatabricksOpenAI(workspace_client=req.system_client)
    conversation = [{"role": "system", "content": SYSTEM_PROMPT}, *messages]
    reply = _complete(llm, conversation, [retriever.tool] if retriever else None)
    sources: list[str] = []
    if reply.tool_calls:
        conversation.append(reply.model_dump(exclude_none=True))
        for call in reply.tool_calls:
            # A grant revoked or a token expired between building the tool and querying it degrades too.
            documents = req.optional("the company handbook", lambda: retriever.execute(**json.loads(call.function.arguments))) or []
            sources += [d["metadata"]["doc_uri"] for d in documents if d.get("metadata", {}).get("doc_uri")]
            conversation.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(documents)})
        reply = _complete(llm, conversation, None)
    text = reply.content or ""
    note = obo_auth.degraded_note(req.degraded)
    if note:
        text = f"{text}\n\n{note}"
    return Answer(text, list(dict.fromkeys(sources)), {"sources": list(dict.fromkeys(sources)), **obo_auth.degraded_outputs(req.degraded)})


def _complete(llm: DatabricksOpenAI, conversation: list[dict[str, Any]], tools: list[dict[str, Any]] | None):
    kwargs = {"tools": tools} if tools else {}
    return llm.chat.completions.create(model=CHAT_ENDPOINT, messages=conversation, **kwargs).choices[0].message
