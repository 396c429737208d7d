"""The serving part of a seed: endpoints, each a chat model, an embedding model or an agent.

A chat endpoint may name an ``upstream``: an OpenAI-compatible API (a local model server, a real
workspace's serving endpoints) that answers its queries instead of the local chat model. Its
``api_key`` is a credential: ``SecretStr`` once validated, and a value of the wrong shape is
swapped for a placeholder before pydantic sees it (seed_parts.hide_unless), as connections' are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, SerializationInfo, field_serializer, model_validator

from obo_auth.local._base import ENDPOINT_NAME_PATTERN
from obo_auth.local.seed_parts import NotShown, Strict, duplicates, hide_unless, token_problems
from obo_auth.local.serving.models import UPSTREAM_EXAMPLE, ChatUpstream, upstream_url
from obo_auth.local.service import SeedContext


class ChatUpstreamSeed(Strict):
    url: str = Field(description=f"an OpenAI-compatible API's base URL such as {UPSTREAM_EXAMPLE}")
    model: str | None = Field(
        default=None, pattern=r"^[!-~]{1,256}$", description="1-256 printable ASCII characters without spaces (default: the endpoint's name)"
    )
    api_key: Annotated[SecretStr | None, hide_unless(str)] = Field(
        default=None, description="the upstream's API key, sent only to it as 'Authorization: Bearer <api_key>'"
    )

    # A dump of the seed (model_dump) loads again, so the key dumps as the seed wrote it; only
    # repr, str and JSON dumps keep it hidden (as a connection's credentials).
    @field_serializer("api_key", when_used="unless-none")
    def _dump_as_written(self, value: SecretStr, info: SerializationInfo) -> Any:
        return value if info.mode == "json" else value.get_secret_value()

    @model_validator(mode="before")
    @classmethod
    def _hide_non_mappings(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else NotShown(value)


class ServingEndpointSeed(Strict):
    name: str = Field(pattern=ENDPOINT_NAME_PATTERN, description="1-63 letters, digits, '-' and '_'")
    kind: Literal["chat", "embedding", "agent"]  # agent: served by `obo-auth serve`
    upstream: ChatUpstreamSeed | None = None  # chat only: the model that answers instead of the local chat model

    @model_validator(mode="before")
    @classmethod
    def _hide_non_mappings(cls, value: Any) -> Any:
        # An entry that is not a mapping may be an upstream's key written in the wrong place.
        return value if isinstance(value, dict) else NotShown(value)


# hide_unless(list): a section that is not a list is not shown either (it may hold an api_key).
SEED_FIELDS = {"serving_endpoints": (Annotated[list[ServingEndpointSeed], hide_unless(list)], [])}


def check(context: SeedContext) -> Iterator[str]:
    endpoints = context.seed.serving_endpoints
    yield from duplicates([(f"serving_endpoints[{i}].name", e.name) for i, e in enumerate(endpoints)])
    for i, endpoint in enumerate(endpoints):
        if endpoint.upstream is not None:
            yield from _upstream_problems(f"serving_endpoints[{i}]", endpoint)


def _upstream_problems(at: str, endpoint: ServingEndpointSeed) -> Iterator[str]:
    assert endpoint.upstream is not None
    if endpoint.kind != "chat":
        yield f"field '{at}.upstream': only a chat endpoint may have an upstream model, and '{endpoint.name}' is kind {endpoint.kind}"
    try:
        upstream_url(endpoint.upstream.url)
    except ValueError as why:
        yield f"field '{at}.upstream.url': {why}"
    if endpoint.upstream.api_key is not None:
        yield from token_problems(f"{at}.upstream.api_key", endpoint.upstream.api_key)


def chat_upstream(endpoint: ServingEndpointSeed) -> ChatUpstream | None:
    """The checked seed's upstream as the serving backend keeps it (the URL rebuilt)."""
    if endpoint.upstream is None:
        return None
    return ChatUpstream(upstream_url(endpoint.upstream.url), endpoint.upstream.model or endpoint.name, endpoint.upstream.api_key)
