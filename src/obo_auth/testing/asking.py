"""Asking an agent served by local serving a question, as a user, over real HTTP.

The request is what a client of Databricks Model Serving sends: the user's own token in
``Authorization``, and the body the agent's interface takes (``messages`` for a ChatAgent,
``input`` for a ResponsesAgent). Serving downscopes the token for the agent, as the platform
does; the answer's text is read from whichever shape came back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Reply:
    status: int
    text: str  # the answer's text; for a failed request, the error message
    body: Any  # the decoded JSON answer, or the list of decoded stream events

    @property
    def ok(self) -> bool:
        return self.status < 400


def request_body(interface: str, question: str) -> dict[str, Any]:
    """The invocation body for one user question, in the shape ``interface`` takes."""
    turn = [{"role": "user", "content": question}]
    if interface == "chat_agent":
        return {"messages": turn}
    if interface == "responses_agent":
        return {"input": turn}
    raise ValueError(f"cannot ask a {interface} model a question: only ChatAgent and ResponsesAgent models take one")


def ask(url: str, interface: str, token: str, question: str, *, stream: bool = False) -> Reply:
    """POSTs ``question`` to ``{url}/invocations`` with ``token``; ``url`` is a served endpoint's."""
    import httpx

    body = {**request_body(interface, question), **({"stream": True} if stream else {})}
    headers = {"Authorization": f"Bearer {token}"}
    # trust_env=False: loopback, never through a proxy the environment names.
    with httpx.Client(timeout=_TIMEOUT_SECONDS, trust_env=False) as http:
        if not stream:
            response = http.post(f"{url}/invocations", json=body, headers=headers)
            decoded = _json(response.text)
            return Reply(response.status_code, _error_text(decoded) if response.is_error else answer_text(decoded), decoded)
        with http.stream("POST", f"{url}/invocations", json=body, headers=headers) as response:
            if response.is_error:
                decoded = _json(response.read().decode(errors="replace"))
                return Reply(response.status_code, _error_text(decoded), decoded)
            events = [_json(line[len("data:") :].strip()) for line in response.iter_lines() if line.startswith("data:")]
    failure = stream_error(events)
    if failure is not None:  # the stream started (HTTP 200) and then failed: an answer it is not
        return Reply(500, failure, events)
    return Reply(response.status_code, streamed_text(events), events)


def stream_error(events: list[Any]) -> str | None:
    """The message of the error event a failing stream ends with (``databricks_output.error``), if any."""
    for event in events:
        error = event.get("databricks_output", {}).get("error") if isinstance(event, dict) else None
        if isinstance(error, dict):
            return str(error.get("message", error))
    return None


def answer_text(body: Any) -> str:
    """The text of a ChatAgent response (its last message) or a ResponsesAgent response (its output text)."""
    if not isinstance(body, dict):
        return ""
    if isinstance(body.get("messages"), list) and body["messages"]:
        return str(body["messages"][-1].get("content") or "")
    parts = [
        part.get("text", "")
        for item in body.get("output") or []
        if isinstance(item, dict) and item.get("type") == "message"
        for part in item.get("content") or []
        if isinstance(part, dict)
    ]
    return "".join(parts)


def custom_outputs(body: Any) -> Any:
    """The ``custom_outputs`` of a response, or of the last stream event that carries them."""
    if isinstance(body, list):
        return next((e["custom_outputs"] for e in reversed(body) if isinstance(e, dict) and e.get("custom_outputs") is not None), None)
    return body.get("custom_outputs") if isinstance(body, dict) else None


def streamed_text(events: list[Any]) -> str:
    """The text of a stream: ChatAgent chunk deltas, or ResponsesAgent ``output_text.delta`` events."""
    text, done = [], []
    for event in events:
        if not isinstance(event, dict):
            continue
        if isinstance(event.get("delta"), dict):  # ChatAgentChunk
            text.append(event["delta"].get("content") or "")
        elif event.get("type") == "response.output_text.delta":
            text.append(event.get("delta") or "")
        elif event.get("type") == "response.output_item.done":
            done.append(event.get("item"))
    # A ResponsesAgent may stream whole items without deltas: then the items are the text.
    return "".join(text) if text else answer_text({"output": done})


def _error_text(body: Any) -> str:
    return str(body.get("message", body)) if isinstance(body, dict) else str(body)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
