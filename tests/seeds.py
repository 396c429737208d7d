"""The built-in default seed as a dict, for tests that extend it."""

from __future__ import annotations

from importlib import resources

import yaml

from obo_auth.local.seed import DEFAULT_SEED


def default_seed() -> dict:
    """A new copy of the default seed, the caller's to change."""
    return yaml.safe_load(resources.files("obo_auth.local").joinpath(DEFAULT_SEED).read_text(encoding="utf-8"))
