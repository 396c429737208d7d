"""The invoker's token as a value object that never shows, copies or serializes its secret."""

from __future__ import annotations

import re

from obo_auth.errors import MalformedTokenError
from obo_auth.redact import fingerprint

# RFC 6750 section 2.1: a bearer token is b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
# Anything else (CR/LF, other control characters, inner spaces, non-ASCII) would be refused by the
# HTTP library with an error that prints the whole header, or worse, inject a header.
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# Surrounding whitespace can never be part of a bearer token; a token read from a file or an
# environment variable with its newline is the same token, so it is stripped, not refused.
_SURROUNDING_WHITESPACE = " \t\r\n"


class UserToken:
    """An end user's (downscoped) token. ``repr``/``str`` show only a fingerprint.

    Deliberately not a dataclass: mlflow's trace encoder and ``dataclasses.asdict`` dump a
    dataclass's fields, and this one's field is the secret. It cannot be pickled or copied.
    """

    __slots__ = ("_value", "source")

    def __init__(self, value: object, source: str):
        self._value = validated(value, source)
        self.source = source  # where it was read: "as_user", "mlflowserving", "main-thread slot"

    @property
    def value(self) -> str:
        return self._value

    @property
    def fingerprint(self) -> str:
        return fingerprint(self._value)

    def __str__(self) -> str:
        return f"UserToken({self.fingerprint}, from {self.source})"

    __repr__ = __str__

    def __reduce__(self):
        raise TypeError("A UserToken cannot be pickled or copied: it holds an end user's credential.")


def validated(value: object, source: str) -> str:
    """``value`` without surrounding whitespace, or MalformedTokenError naming only its fingerprint."""
    if not isinstance(value, str):
        raise MalformedTokenError(f"The invoker token from {source} must be a string, not {type(value).__name__}.")
    token = value.strip(_SURROUNDING_WHITESPACE)
    if not token:
        raise MalformedTokenError(f"The invoker token from {source} is empty.")
    if not _BEARER_TOKEN.fullmatch(token):
        raise MalformedTokenError(
            f"The invoker token from {source} ({fingerprint(value)}) contains characters a bearer token cannot hold "
            "(control characters, spaces or non-ASCII); pass the token exactly as the workspace issued it."
        )
    return token
