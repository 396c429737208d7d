"""Serving endpoint routes: list/get, invocations (an agent's are relayed to local serving:
relay.py), and the OpenAI-compatible routes DatabricksOpenAI calls with the endpoint name as
``model``: chat completions, embeddings and responses (the Responses API: answered by the
local chat model, or relayed to an agent). A chat endpoint the seed backs with an upstream
model has its chat completions, Responses and chat invocations relayed there (relay.py)."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from obo_auth.http_edge import BadRequest, read_body, read_json
from obo_auth.local import embedding_model
from obo_auth.local._base import endpoint_name, field, int_field
from obo_auth.local.handler import Call, api
from obo_auth.local.serving import chat_model, script
from obo_auth.local.serving.chat_model import Completion, JsonOutput
from obo_auth.local.serving.models import ServingBackend, ServingEndpoint
from obo_auth.local.serving.relay import relay, relay_to_model
from obo_auth.local.serving.scopes import API_SCOPES

# The choices one chat request may ask for: more is a 400, not a silently smaller answer.
MAX_CHOICES = 16
# As the OpenAI API: at most four stop sequences.
MAX_STOP_SEQUENCES = 4
_STOP_ERROR = f"Field 'stop' must be a string or an array of at most {MAX_STOP_SEQUENCES} non-empty strings."


def _endpoint_json(endpoint: ServingEndpoint) -> dict[str, Any]:
    return {
        "name": endpoint.name,
        "id": uuid.uuid5(uuid.NAMESPACE_URL, f"serving:{endpoint.name}").hex,
        "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
        "task": endpoint.task,
        "capabilities": endpoint.capabilities,
        "config": {"served_entities": [_served_entity(endpoint)]},
        "route_optimized": False,
    }


def _served_entity(endpoint: ServingEndpoint) -> dict[str, Any]:
    # Chat and embedding endpoints stand for pay-per-token foundation models; an agent is a
    # logged model, not a foundation model; an upstream-backed chat endpoint is what the platform
    # calls an external model (an OpenAI-compatible provider; its URL and key are not shown).
    if endpoint.kind == "agent":
        return {"name": endpoint.name}
    if endpoint.upstream is not None:
        return {"name": endpoint.name, "external_model": {"provider": "openai", "name": endpoint.upstream.model, "task": endpoint.task}}
    return {"name": endpoint.name, "foundation_model": {"name": endpoint.name}}


def _backend(call: Call) -> ServingBackend:
    return call.state.services["serving"]


def _queryable(call: Call, name: str) -> ServingEndpoint:
    # Named in the audit record before the lookup, so a 404 still says what was asked for.
    call.resource = f"serving_endpoint:{name[:120]}"
    endpoint = _backend(call).endpoint(endpoint_name(name, "serving endpoint"))
    call.require("CAN_QUERY", "serving_endpoint", endpoint.name)
    return endpoint


@api(API_SCOPES["serving.endpoints"])
async def list_endpoints(request: Request, call: Call) -> Response:
    endpoints = [e for e in _backend(call).endpoints() if call.can("CAN_QUERY", "serving_endpoint", e.name)]
    return JSONResponse({"endpoints": [_endpoint_json(e) for e in endpoints]})


@api(API_SCOPES["serving.endpoints"])
async def get_endpoint(request: Request, call: Call) -> Response:
    return JSONResponse(_endpoint_json(_queryable(call, request.path_params["name"])))


@api(API_SCOPES["serving.endpoints"])
async def invocations(request: Request, call: Call) -> Response:
    endpoint = _queryable(call, request.path_params["name"])
    if endpoint.kind == "agent":
        # The agent reads and checks the body itself, as a serving container does.
        return await _relayed(request, call, endpoint, await read_body(request))
    body = await read_json(request)
    if endpoint.kind == "embedding":
        return JSONResponse(_embeddings(endpoint, body), headers={"served-model-name": endpoint.name})
    if endpoint.upstream is not None:
        return await _to_upstream(call, endpoint, "chat/completions", _upstream_chat_request(endpoint, body))
    return _chat(endpoint, body)


async def _relayed(request: Request, call: Call, endpoint: ServingEndpoint, body: bytes) -> Response:
    response = await relay(request, endpoint, body)
    call.reason += f"; relayed to the agent at {endpoint.url}"
    return response


async def _to_upstream(call: Call, endpoint: ServingEndpoint, route: str, body: dict[str, Any]) -> Response:
    """The request relayed to the endpoint's upstream model; the audit record says where (never the key)."""
    assert endpoint.upstream is not None
    field(body, "stream", bool, False)  # a 400 here rather than an upstream's guess
    response = await relay_to_model(endpoint, route, body)
    call.reason += f"; relayed to the upstream model {endpoint.upstream.model!r} at {endpoint.upstream.url}/{route} (status {response.status_code})"
    return response


def _upstream_chat_request(endpoint: ServingEndpoint, body: dict[str, Any]) -> dict[str, Any]:
    """An /invocations body (databricks-sdk's ``serving_endpoints.query``) as the chat completions
    request an upstream model takes: its ``messages`` and options, ``extra_params`` merged in."""
    if not isinstance(body.get("messages"), list):
        raise BadRequest(
            f"Serving endpoint '{endpoint.name}' is answered by an upstream chat model: its invocations take chat 'messages' "
            f"(relayed as chat completions); for anything else use POST /serving-endpoints/chat/completions "
            f"or /serving-endpoints/responses with model '{endpoint.name}'."
        )
    extra = field(body, "extra_params", dict, None) or {}
    return {**{key: value for key, value in body.items() if key != "extra_params"}, **extra}


def _model(call: Call, body: dict[str, Any], kinds: tuple[str, ...], what: str) -> ServingEndpoint:
    """The OpenAI-style routes name the endpoint in ``model``; it must be of one of ``kinds``."""
    endpoint = _queryable(call, field(body, "model", str))
    if endpoint.kind not in kinds:
        raise BadRequest(f"Serving endpoint '{endpoint.name}' serves {endpoint.task}, not {what}.")
    return endpoint


@api(API_SCOPES["serving.endpoints"])
async def chat_completions(request: Request, call: Call) -> Response:
    body = await read_json(request)
    endpoint = _model(call, body, ("chat",), "chat completions")
    if endpoint.upstream is not None:
        return await _to_upstream(call, endpoint, "chat/completions", body)
    return _chat(endpoint, body)


@api(API_SCOPES["serving.endpoints"])
async def embeddings(request: Request, call: Call) -> Response:
    body = await read_json(request)
    endpoint = _model(call, body, ("embedding",), "embeddings")
    return JSONResponse(_embeddings(endpoint, body), headers={"served-model-name": endpoint.name})


def _embeddings(endpoint: ServingEndpoint, body: dict[str, Any]) -> dict[str, Any]:
    inputs = field(body, "input", (str, list))
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not all(isinstance(t, str) for t in texts):
        raise BadRequest("Field 'input' must be a string or an array of strings.")
    tokens = sum(chat_model.count_tokens(t) for t in texts)
    return {
        "object": "list",
        "model": endpoint.name,
        "data": [{"object": "embedding", "index": i, "embedding": embedding_model.embed(t)} for i, t in enumerate(texts)],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# -- chat completions --------------------------------------------------------------------------------


def _chat(endpoint: ServingEndpoint, body: dict[str, Any]) -> Response:
    messages = field(body, "messages", list)
    if not messages or not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise BadRequest("Field 'messages' must be a non-empty array of objects with a 'role'.")
    choices = int_field(body, "n", 1, low=1, high=MAX_CHOICES)
    completion = chat_model.complete(
        messages,
        field(body, "tools", list, None),
        body.get("tool_choice"),
        max_tokens=_positive(body, "max_tokens"),
        stop=_stop_sequences(body.get("stop")),
        output=_response_format(body.get("response_format")),
    )
    # The model answers the same way every time, so the n choices are n copies of its answer.
    prompt_tokens = sum(chat_model.count_tokens(script.text_of(m.get("content"))) for m in messages)
    completion_tokens = completion.tokens * choices
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
    completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
    headers = {"served-model-name": endpoint.name}
    if field(body, "stream", bool, False):
        chunks = _chat_chunks(completion_id, endpoint.name, completion, choices, usage)
        return StreamingResponse(chunks, media_type="text/event-stream", headers=headers)
    message = {"role": "assistant", **completion.message}
    return JSONResponse(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": endpoint.name,
            "choices": [{"index": i, "finish_reason": completion.finish_reason, "message": message} for i in range(choices)],
            "usage": usage,
        },
        headers=headers,
    )


def _positive(body: dict[str, Any], name: str) -> int | None:
    value = field(body, name, int, None)
    if value is not None and value < 1:
        raise BadRequest(f"Field '{name}' must be at least 1, got {value}.")
    return value


def _stop_sequences(value: Any) -> tuple[str, ...]:
    sequences = [value] if isinstance(value, str) else value
    if sequences is None:
        return ()
    if not isinstance(sequences, list) or len(sequences) > MAX_STOP_SEQUENCES:
        raise BadRequest(_STOP_ERROR)
    if not all(isinstance(s, str) and s for s in sequences):
        raise BadRequest(_STOP_ERROR)
    return tuple(sequences)


def _response_format(value: Any) -> JsonOutput | None:
    """Chat completions' ``response_format``: ``{"type": "json_schema", "json_schema": {"schema": ...}}``."""
    if value is None:
        return None
    spec = value.get("json_schema") if isinstance(value, dict) else None
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return _json_output("response_format", value, schema)


def _json_output(name: str, value: Any, schema: Any) -> JsonOutput | None:
    """What a format of ``type`` 'text', 'json_object' or 'json_schema' asks the reply to be."""
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        shown = repr(kind)[:40] if isinstance(value, dict) else f"a {type(value).__name__}"
        raise BadRequest(f"Field '{name}' must be an object whose 'type' is 'text', 'json_object' or 'json_schema', got {shown}.")
    if kind == "json_schema" and schema is not None and not isinstance(schema, (dict, bool)):
        raise BadRequest(f"Field '{name}' has a JSON schema that is not an object.")
    # A json_schema format without a schema constrains nothing but JSON: any object will do.
    return None if kind == "text" else JsonOutput(schema if kind == "json_schema" else None)


def _pieces(text: str) -> list[str]:
    """``text`` in the pieces a stream sends, word by word: joined, they are ``text`` again."""
    words = text.split(" ")
    return [word if i == 0 else " " + word for i, word in enumerate(words)]


def _chat_chunks(completion_id: str, model: str, completion: Completion, choices: int, usage: dict[str, int]) -> Iterator[str]:
    def event(chunk_choices: list[dict[str, Any]], **extra: Any) -> str:
        payload = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model, "choices": chunk_choices}
        return f"data: {json.dumps({**payload, **extra})}\n\n"

    for index in range(choices):
        for delta, finish_reason in _choice_deltas(completion):
            yield event([{"index": index, "delta": delta, "finish_reason": finish_reason}])
    # Usage comes last in a chunk of its own with no choices: ChatDatabricks (stream_usage=True by
    # default, without asking via stream_options) reads it from there; on a chunk that also has
    # choices it would count the tokens twice.
    yield event([], usage=usage)
    yield "data: [DONE]\n\n"


def _choice_deltas(completion: Completion) -> Iterator[tuple[dict[str, Any], str | None]]:
    """One choice's ``(delta, finish_reason)``s: the role, the tool calls or the text, the end."""
    yield {"role": "assistant", "content": ""}, None
    if completion.message.get("tool_calls"):
        yield {"tool_calls": [{"index": i, **call} for i, call in enumerate(completion.message["tool_calls"])]}, None
    else:
        for piece in _pieces(completion.message["content"]):
            yield {"content": piece}, None
    yield {}, completion.finish_reason


# -- responses (the OpenAI Responses API) ------------------------------------------------------------


@api(API_SCOPES["serving.endpoints"])
async def responses(request: Request, call: Call) -> Response:
    body = await read_json(request)
    endpoint = _model(call, body, ("chat", "agent"), "responses")
    if endpoint.kind == "agent":
        _require_responses_agent(endpoint)
        return await _relayed(request, call, endpoint, json.dumps(_agent_request(body)).encode())
    if endpoint.upstream is not None:
        return await _to_upstream(call, endpoint, "responses", body)
    return _respond(endpoint, body)


def _require_responses_agent(endpoint: ServingEndpoint) -> None:
    # A ChatAgent would read no 'messages' in a Responses request and answer an empty conversation.
    if endpoint.interface == "chat_agent":
        raise BadRequest(
            f"Serving endpoint '{endpoint.name}' serves a ChatAgent ({endpoint.task}), which takes chat messages: "
            f"query it at /serving-endpoints/{endpoint.name}/invocations with 'messages', not with the Responses API."
        )


def _agent_request(body: dict[str, Any]) -> dict[str, Any]:
    """The Responses request as a ResponsesAgent takes it at ``/invocations``: ``input`` a list of
    items, ``model`` gone (it named the endpoint), the rest (``stream``, ``custom_inputs``, ...)
    as sent."""
    rest = {key: value for key, value in body.items() if key not in ("model", "input", "instructions")}
    return {**rest, "input": _input_items(body)}


def _input_items(body: dict[str, Any]) -> list[Any]:
    """``instructions`` and ``input`` as one list of input items: the instructions a system message
    first, a string input one user message (as the Responses API reads them)."""
    items = field(body, "input", (str, list))
    instructions = field(body, "instructions", str, None)
    return [
        *([{"role": "system", "content": instructions}] if instructions else []),
        *([{"role": "user", "content": items}] if isinstance(items, str) else items),
    ]


def _respond(endpoint: ServingEndpoint, body: dict[str, Any]) -> Response:
    if body.get("previous_response_id") is not None:  # answering without it would silently forget the conversation
        raise BadRequest(f"Serving endpoint '{endpoint.name}' keeps no responses: send the whole conversation in 'input', not 'previous_response_id'.")
    messages = _chat_messages(body)
    completion = chat_model.complete(
        messages,
        _chat_tools(field(body, "tools", list, None)),
        _chat_tool_choice(body.get("tool_choice")),
        max_tokens=_positive(body, "max_output_tokens"),
        output=_text_format(field(body, "text", dict, None)),
    )
    input_tokens = sum(chat_model.count_tokens(script.text_of(m.get("content"))) for m in messages)
    response = _response(endpoint, body, completion, input_tokens)
    if field(body, "stream", bool, False):
        return StreamingResponse(_response_events(response), media_type="text/event-stream", headers={"served-model-name": endpoint.name})
    return JSONResponse(response, headers={"served-model-name": endpoint.name})


def _chat_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The Responses input items as the chat messages the chat model reads."""
    return [message for item in _input_items(body) for message in _chat_message(item)]


def _chat_message(item: Any) -> list[dict[str, Any]]:
    kind = item.get("type", "message") if isinstance(item, dict) else None
    if kind == "message":
        if not isinstance(item.get("role"), str):
            raise BadRequest("Field 'input' has a message without a 'role'.")
        role = "system" if item["role"] == "developer" else item["role"]
        return [{"role": role, "content": script.text_of(item.get("content"))}]
    if kind == "function_call":
        call = {"id": item.get("call_id"), "type": "function", "function": {"name": item.get("name"), "arguments": item.get("arguments", "")}}
        return [{"role": "assistant", "content": None, "tool_calls": [call]}]
    if kind == "function_call_output":
        return [{"role": "tool", "tool_call_id": item.get("call_id"), "content": script.text_of(item.get("output"))}]
    if kind == "reasoning":  # a reasoning model's earlier thoughts: nothing this model reads
        return []
    raise BadRequest(
        "Field 'input' must be a string or an array of messages ({'role': ..., 'content': ...}), "
        f"function_call and function_call_output items; got {'an item of type ' + repr(kind)[:40] if kind else 'something else'}."
    )


def _chat_tools(tools: list[Any] | None) -> list[dict[str, Any]] | None:
    """Responses function tools (``{"type": "function", "name": ...}``) as chat tools."""
    if not tools:
        return None
    if not all(isinstance(t, dict) and t.get("type") == "function" for t in tools):
        raise BadRequest("Field 'tools' must hold function tools {'type': 'function', 'name': ..., 'parameters': ...}; no other kind is served.")
    return [{"type": "function", "function": {k: t[k] for k in ("name", "description", "parameters") if k in t}} for t in tools]


def _chat_tool_choice(choice: Any) -> Any:
    """A Responses ``{"type": "function", "name": ...}`` as chat's ``{"type": "function", "function": {"name": ...}}``."""
    if isinstance(choice, dict) and choice.get("type") == "function" and "function" not in choice:
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def _text_format(text: dict[str, Any] | None) -> JsonOutput | None:
    """Responses' ``text.format``: ``{"type": "json_schema", "name": ..., "schema": ...}``."""
    spec = (text or {}).get("format")
    if spec is None:
        return None
    return _json_output("text.format", spec, spec.get("schema") if isinstance(spec, dict) else None)


def _response(endpoint: ServingEndpoint, body: dict[str, Any], completion: Completion, input_tokens: int) -> dict[str, Any]:
    """The whole Responses API ``response`` object, as ``response.completed`` carries it too."""
    response_id = uuid.uuid4().hex
    cut = completion.finish_reason == "length"
    output_tokens = completion.tokens
    return {
        "id": "resp_" + response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if cut else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "error": None,
        "model": endpoint.name,
        "output": _output_items(response_id, completion),
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        # What the request set, echoed as the Responses API does.
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "temperature": body.get("temperature"),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p"),
    }


def _output_items(response_id: str, completion: Completion) -> list[dict[str, Any]]:
    calls = completion.message.get("tool_calls")
    if calls:
        return [
            {
                "type": "function_call",
                "id": f"fc_{response_id}_{i}",
                "call_id": call["id"],
                "name": call["function"]["name"],
                "arguments": call["function"]["arguments"],
                "status": "completed",
            }
            for i, call in enumerate(calls)
        ]
    status = "incomplete" if completion.finish_reason == "length" else "completed"
    text = {"type": "output_text", "text": completion.message["content"], "annotations": []}
    return [{"type": "message", "id": f"msg_{response_id}", "status": status, "role": "assistant", "content": [text]}]


def _response_events(response: dict[str, Any]) -> Iterator[str]:
    """The server-sent events the Responses API streams ``response`` as, in the order the openai
    client's stream accumulator (``responses.stream``) requires: created first, completed last."""
    sequence = itertools.count()

    def event(kind: str, **fields: Any) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, 'sequence_number': next(sequence), **fields})}\n\n"

    started = {**response, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    for index, item in enumerate(response["output"]):
        yield from (_message_events if item["type"] == "message" else _call_events)(event, index, item)
    yield event("response.completed" if response["status"] == "completed" else "response.incomplete", response=response)


def _message_events(event: Callable[..., str], index: int, item: dict[str, Any]) -> Iterator[str]:
    part = item["content"][0]
    at = {"item_id": item["id"], "output_index": index, "content_index": 0}
    yield event("response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []})
    yield event("response.content_part.added", **at, part={**part, "text": ""})
    for piece in _pieces(part["text"]):
        yield event("response.output_text.delta", **at, delta=piece, logprobs=[])
    yield event("response.output_text.done", **at, text=part["text"], logprobs=[])
    yield event("response.content_part.done", **at, part=part)
    yield event("response.output_item.done", output_index=index, item=item)


def _call_events(event: Callable[..., str], index: int, item: dict[str, Any]) -> Iterator[str]:
    at = {"item_id": item["id"], "output_index": index}
    yield event("response.output_item.added", output_index=index, item={**item, "status": "in_progress", "arguments": ""})
    yield event("response.function_call_arguments.delta", **at, delta=item["arguments"])
    yield event("response.function_call_arguments.done", **at, name=item["name"], arguments=item["arguments"])
    yield event("response.output_item.done", output_index=index, item=item)


routes = [
    Route("/api/2.0/serving-endpoints", list_endpoints, methods=["GET"]),
    Route("/api/2.0/serving-endpoints/{name}", get_endpoint, methods=["GET"]),
    Route("/serving-endpoints/chat/completions", chat_completions, methods=["POST"]),
    Route("/serving-endpoints/embeddings", embeddings, methods=["POST"]),
    Route("/serving-endpoints/responses", responses, methods=["POST"]),
    Route("/serving-endpoints/{name}/invocations", invocations, methods=["POST"]),
]
