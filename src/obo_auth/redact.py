"""The one place that turns a secret into something safe to show.

Tokens never appear in messages, logs, audit records or reprs: only their
fingerprint does, a short hash that lets two records be matched without
revealing the token.
"""

from __future__ import annotations

import hashlib

_FINGERPRINT_HEX_CHARS = 12


def fingerprint(secret: str) -> str:
    """A short, stable, one-way tag for ``secret`` (e.g. ``fp:3a9c01be77d2``)."""
    digest = hashlib.sha256(secret.encode("utf-8")).hexdigest()
    return f"fp:{digest[:_FINGERPRINT_HEX_CHARS]}"


def token_hash(secret: str) -> str:
    """The full SHA-256 of a token: how stores key tokens without keeping them."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
