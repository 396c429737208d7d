"""The one place that turns a secret into something safe to show.

Tokens never appear in messages, logs, audit records or reprs: only their
fingerprint does, a short hash that lets two records be matched without
revealing the token.
"""

from __future__ import annotations

import base64
import hashlib
import re

_FINGERPRINT_HEX_CHARS = 12


def fingerprint(secret: str) -> str:
    """A short, stable, one-way tag for ``secret`` (e.g. ``fp:3a9c01be77d2``)."""
    return f"fp:{token_hash(secret)[:_FINGERPRINT_HEX_CHARS]}"


def token_hash(secret: str) -> str:
    """The full SHA-256 of a token: how stores key tokens without keeping them."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# Token shapes: Databricks personal access tokens (dapi + 32 hex, the local workspace's tokens
# too), OAuth client secrets (dose + 32 hex) and JWTs (OAuth and OBO tokens). No word boundary:
# a token glued to other word characters ("tokendapi...", "xeyJ...") is still a token.
_TOKEN_SHAPED = re.compile(r"(?:dapi|dose)[0-9a-f]{32}(?:-\d+)?|eyJ[\w-]+\.[\w-]+\.[\w-]*")


def spellings(token: str) -> list[str]:
    """``token`` as an error message may echo it: as is, base64-encoded, and as the base64 of a
    Basic header's ``token:<token>`` (how Databricks takes a token as a password)."""
    return [token, *(base64.b64encode(form.encode()).decode() for form in (token, f"token:{token}"))]


def scrub(text: str, secrets: list[str] = ()) -> str:
    """``text`` with ``secrets`` and anything shaped like a token replaced by fingerprints."""
    for secret in secrets:
        text = text.replace(secret, fingerprint(secret))
    return _TOKEN_SHAPED.sub(lambda match: fingerprint(match.group(0)), text)
