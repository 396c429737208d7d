"""The serving part of a seed: endpoints, each a chat model, an embedding model or an agent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from obo_auth.local._base import ENDPOINT_NAME_PATTERN
from obo_auth.local.seed_parts import Strict, duplicates
from obo_auth.local.service import SeedContext


class ServingEndpointSeed(Strict):
    name: str = Field(pattern=ENDPOINT_NAME_PATTERN, description="1-63 letters, digits, '-' and '_'")
    kind: Literal["chat", "embedding", "agent"]  # agent: served by `obo-auth serve`


SEED_FIELDS = {"serving_endpoints": (list[ServingEndpointSeed], [])}


def check(context: SeedContext) -> Iterator[str]:
    yield from duplicates([(f"serving_endpoints[{i}].name", e.name) for i, e in enumerate(context.seed.serving_endpoints)])
