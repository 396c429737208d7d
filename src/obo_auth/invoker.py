"""Where an end user's token comes from, read once at the start of a request.

In order (shared/REFERENCE.md):
1. an explicit ``with obo_auth.as_user(token):`` (tests, notebooks, obo_auth's local serving);
2. in Databricks Model Serving only: ``mlflowserving.scoring_server.agent_utils.fetch_obo_token()``
   (per request); only where that module does not exist, the process-wide slot
   ``threading.main_thread().__dict__["invokers_token"]``.
Nothing else: never the agent's own credentials, never the developer's login.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from obo_auth.errors import NoInvokerError
from obo_auth.token import UserToken

SERVING_FLAGS = ("IS_IN_DB_MODEL_SERVING_ENV", "IS_IN_DATABRICKS_MODEL_SERVING_ENV")
_SLOT = "invokers_token"


@dataclass(frozen=True)
class ExplicitUser:
    token: UserToken
    host: str | None


_explicit_user: ContextVar[ExplicitUser | None] = ContextVar("obo_auth_explicit_user", default=None)


def in_model_serving() -> bool:
    return any(os.environ.get(flag, "").lower() == "true" for flag in SERVING_FLAGS)


@contextmanager
def as_user(token: str, *, host: str | None = None) -> Iterator[None]:
    """Run decorated calls inside this block as the user ``token`` belongs to.

    For tests, notebooks and local serving, where no serving runtime hands over an invoker.
    ``host`` is the workspace URL (default: the environment's, e.g. ``DATABRICKS_HOST``).
    """
    reset = _explicit_user.set(ExplicitUser(UserToken(token, "as_user"), host))
    try:
        yield
    finally:
        _explicit_user.reset(reset)


def read_invoker() -> tuple[UserToken, str | None]:
    """The invoker's token (and an explicit host, if one was given), or NoInvokerError."""
    explicit = _explicit_user.get()
    if explicit is not None:
        return explicit.token, explicit.host
    if not in_model_serving():
        raise NoInvokerError(
            "No end user for this call: outside Databricks Model Serving, run it inside "
            "`with obo_auth.as_user(token, host=...):` or serve the model with `obo-auth serve`. "
            "obo_auth never falls back to your own login."
        )
    try:
        from mlflowserving.scoring_server.agent_utils import fetch_obo_token  # only exists inside Databricks serving
    except ImportError:
        # An older runtime: the process-wide slot is the only source. Never used when the
        # per-request source exists but is empty, where the slot may hold another request's token.
        token = threading.main_thread().__dict__.get(_SLOT)
        source = "main-thread slot"
    else:
        token = _call(fetch_obo_token)
        source = "mlflowserving"
    if isinstance(token, str) and token.strip():
        return UserToken(token, source), None
    raise NoInvokerError(
        "Model Serving passed no end-user token with this request, so it cannot run on behalf of the user. "
        "Check that the model was logged with obo_auth.log_model (an auth policy with user scopes) and that "
        "the endpoint has on-behalf-of-user authorization enabled."
    )


def _call(fetch_obo_token) -> object:
    try:
        return fetch_obo_token()
    except Exception:  # the runtime's own failure: no invoker, so fail closed
        return None
