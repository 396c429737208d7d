"""Serving endpoint routes: list/get, invocations (an agent's are relayed to local serving:
relay.py), and the OpenAI-compatible chat completions and embeddings routes (what
DatabricksOpenAI calls, with the endpoint name as ``model``)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from obo_auth.http_edge import BadRequest, read_body
from obo_auth.local._base import endpoint_name, field, read_json
from obo_auth.local.handler import Call, api
from obo_auth.local.serving import chat_model
from obo_auth.local.serving.models import ServingEndpoint, embed
from obo_auth.local.serving.relay import relay


def _endpoint_json(endpoint: ServingEndpoint) -> dict[str, Any]:
    return {
        "name": endpoint.name,
        "id": uuid.uuid5(uuid.NAMESPACE_URL, f"serving:{endpoint.name}").hex,
        "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
        "task": endpoint.task,
        "config": {"served_entities": [{"name": endpoint.name, "foundation_model": {"name": endpoint.name}}]},
        "route_optimized": False,
    }


def _queryable(call: Call, name: str) -> ServingEndpoint:
    # Named in the audit record before the lookup, so a 404 still says what was asked for.
    call.resource = f"serving_endpoint:{name[:120]}"
    endpoint = call.state.serving.endpoint(endpoint_name(name, "serving endpoint"))
    call.require("CAN_QUERY", "serving_endpoint", endpoint.name)
    return endpoint


@api("serving.endpoints")
async def list_endpoints(request: Request, call: Call) -> Response:
    endpoints = [e for e in call.state.serving.endpoints() if call.can("CAN_QUERY", "serving_endpoint", e.name)]
    return JSONResponse({"endpoints": [_endpoint_json(e) for e in endpoints]})


@api("serving.endpoints")
async def get_endpoint(request: Request, call: Call) -> Response:
    return JSONResponse(_endpoint_json(_queryable(call, request.path_params["name"])))


@api("serving.endpoints")
async def invocations(request: Request, call: Call) -> Response:
    endpoint = _queryable(call, request.path_params["name"])
    if endpoint.kind == "agent":
        # The agent reads and checks the body itself, as a serving container does.
        response = await relay(request, endpoint, await read_body(request))
        call.reason += f"; relayed to the agent at {endpoint.url}"
        return response
    body = await read_json(request)
    if endpoint.kind == "embedding":
        return JSONResponse(_embeddings(endpoint, body), headers={"served-model-name": endpoint.name})
    return _chat(endpoint, body)


def _model(call: Call, body: dict[str, Any], kind: str, what: str) -> ServingEndpoint:
    """The OpenAI-style routes name the endpoint in ``model``; it must serve ``kind``."""
    endpoint = _queryable(call, field(body, "model", str))
    if endpoint.kind != kind:
        raise BadRequest(f"Serving endpoint '{endpoint.name}' serves {endpoint.task}, not {what}.")
    return endpoint


@api("serving.endpoints")
async def chat_completions(request: Request, call: Call) -> Response:
    body = await read_json(request)
    return _chat(_model(call, body, "chat", "chat completions"), body)


@api("serving.endpoints")
async def embeddings(request: Request, call: Call) -> Response:
    body = await read_json(request)
    endpoint = _model(call, body, "embedding", "embeddings")
    return JSONResponse(_embeddings(endpoint, body), headers={"served-model-name": endpoint.name})


def _embeddings(endpoint: ServingEndpoint, body: dict[str, Any]) -> dict[str, Any]:
    inputs = field(body, "input", (str, list))
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not all(isinstance(t, str) for t in texts):
        raise BadRequest("Field 'input' must be a string or an array of strings.")
    return {
        "object": "list",
        "model": endpoint.name,
        "data": [{"object": "embedding", "index": i, "embedding": embed(t)} for i, t in enumerate(texts)],
        "usage": {"prompt_tokens": sum(len(t.split()) for t in texts), "total_tokens": sum(len(t.split()) for t in texts)},
    }


def _chat(endpoint: ServingEndpoint, body: dict[str, Any]) -> Response:
    messages = field(body, "messages", list)
    if not messages or not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise BadRequest("Field 'messages' must be a non-empty array of objects with a 'role'.")
    if field(body, "n", int, 1) != 1:  # rather than silently answering with fewer choices than asked for
        raise BadRequest(f"Serving endpoint '{endpoint.name}' answers with one choice; send n=1 or leave n out.")
    tools = field(body, "tools", list, None)
    reply = chat_model.respond(messages, tools, body.get("tool_choice"))
    completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
    prompt_tokens = sum(len(chat_model.text_of(m.get("content")).split()) for m in messages)
    completion_tokens = len((reply.get("content") or "").split())
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
    if field(body, "stream", bool, False):
        return StreamingResponse(
            _sse(completion_id, endpoint.name, reply, usage), media_type="text/event-stream", headers={"served-model-name": endpoint.name}
        )
    finish_reason = "tool_calls" if reply.get("tool_calls") else "stop"
    return JSONResponse(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": endpoint.name,
            "choices": [{"index": 0, "finish_reason": finish_reason, "message": {"role": "assistant", **reply}}],
            "usage": usage,
        },
        headers={"served-model-name": endpoint.name},
    )


def _sse(completion_id: str, model: str, reply: dict[str, Any], usage: dict[str, int]) -> Iterator[str]:
    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        payload = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model, "choices": choices}
        return f"data: {json.dumps({**payload, **extra})}\n\n"

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
        return event([{"index": 0, "delta": delta, "finish_reason": finish_reason}])

    yield chunk({"role": "assistant", "content": ""})
    if reply.get("tool_calls"):
        calls = [{"index": i, **call} for i, call in enumerate(reply["tool_calls"])]
        yield chunk({"tool_calls": calls})
        yield chunk({}, "tool_calls")
    else:
        words = reply["content"].split(" ")
        for i, word in enumerate(words):
            yield chunk({"content": word if i == 0 else " " + word})
        yield chunk({}, "stop")
    # Usage comes last in a chunk of its own with no choices: ChatDatabricks (stream_usage=True by
    # default, without asking via stream_options) reads it from there; on a chunk that also has
    # choices it would count the tokens twice.
    yield event([], usage=usage)
    yield "data: [DONE]\n\n"


routes = [
    Route("/api/2.0/serving-endpoints", list_endpoints, methods=["GET"]),
    Route("/api/2.0/serving-endpoints/{name}", get_endpoint, methods=["GET"]),
    Route("/serving-endpoints/chat/completions", chat_completions, methods=["POST"]),
    Route("/serving-endpoints/embeddings", embeddings, methods=["POST"]),
    Route("/serving-endpoints/{name}/invocations", invocations, methods=["POST"]),
]
