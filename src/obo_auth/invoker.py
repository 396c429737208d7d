"""Where an end user's token comes from, read once at the start of a request.

In order (shared/REFERENCE.md):
1. an explicit ``with obo_auth.as_user(token):`` (tests, notebooks, obo_auth's local serving);
2. in Databricks Model Serving only: ``mlflowserving.scoring_server.agent_utils.fetch_obo_token()``
   (per request); only where the ``mlflowserving`` package does not exist at all, the
   process-wide slot ``threading.main_thread().__dict__["invokers_token"]``.
Nothing else: never the agent's own credentials, never the developer's login.

The slot is one per process, so it cannot tell two requests apart: a request that reads it
while another is in flight may read the other's token. A slot-sourced request therefore
takes the process's one slot lease (context.py) and fails closed if it is held.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

from obo_auth.errors import NoInvokerError, OboAuthError
from obo_auth.scope import active_request
from obo_auth.token import UserToken

SERVING_FLAGS = ("IS_IN_DB_MODEL_SERVING_ENV", "IS_IN_DATABRICKS_MODEL_SERVING_ENV")
SLOT_SOURCE = "main-thread slot"
_SLOT = "invokers_token"
_RUNTIME_PACKAGE = "mlflowserving"
_RUNTIME_MODULE = "mlflowserving.scoring_server.agent_utils"


class ExplicitUser(NamedTuple):
    token: UserToken
    host: str | None


_explicit_user: ContextVar[ExplicitUser | None] = ContextVar("obo_auth_explicit_user", default=None)


def in_model_serving() -> bool:
    for flag in SERVING_FLAGS:  # a loop, not any(genexpr): this runs on every request
        value = os.environ.get(flag)
        if value is not None and value.lower() == "true":
            return True
    return False


@contextmanager
def as_user(token: str, *, host: str | None = None) -> Iterator[None]:
    """Run decorated calls inside this block as the user ``token`` belongs to.

    For tests, notebooks and local serving, where no serving runtime hands over an invoker.
    ``host`` is the workspace URL (default: the environment's, e.g. ``DATABRICKS_HOST``).
    The token is checked here: one with control characters or spaces inside is refused with
    :class:`~obo_auth.MalformedTokenError`; surrounding whitespace is stripped.
    Inside a request it is refused: a request never changes users half-way.
    """
    if active_request() is not None:
        raise OboAuthError(
            "obo_auth.as_user() was called inside a request: a request acts for one user from start to end. "
            "Call as_user around the decorated call instead."
        )
    reset = _explicit_user.set(ExplicitUser(UserToken(token, "as_user"), host))
    try:
        yield
    finally:
        _explicit_user.reset(reset)


def explicit_user() -> ExplicitUser | None:
    return _explicit_user.get()


def serving_source():
    """The runtime's per-request token function, or None where only the process-wide slot exists.

    If the runtime's package exists but its function cannot be imported, that is a broken
    per-request source, not an old runtime: NoInvokerError, never the slot.

    Per request this costs a dictionary lookup or two, not an import: a runtime module already
    in ``sys.modules`` (the real one after its first import, or a test's fake) is read from
    there, and the package's absence is remembered, so an older runtime does not search
    ``sys.path`` on every request. What is remembered is only "no such package on this
    ``sys.path``": a package put in ``sys.modules`` later is still found, a changed
    ``sys.path`` searches again, and a package that exists but fails to import is never
    remembered as absent (it fails closed on every request). A package installed into the
    process's existing ``sys.path`` after its first request would go unseen (a serving runtime
    ships it in its image, before any request); even then the slot is read only under the slot
    lease, one request at a time.
    """
    modules = sys.modules
    if modules.get(_RUNTIME_PACKAGE) is not None:
        module = modules.get(_RUNTIME_MODULE)
        # (a module still being imported by another thread takes the import path, which waits for it)
        if module is not None and not getattr(getattr(module, "__spec__", None), "_initializing", False):
            return _fetch_obo_token(module)
    elif _absent_on is not None and _absent_on == sys.path:
        return None  # the package was searched for on this sys.path and is not there (and not in sys.modules)
    return _imported_source()


# The sys.path on which the runtime's package was last found absent (None: not searched, or found).
_absent_on: list[str] | None = None


def _imported_source():
    """serving_source() the slow way: imports the runtime's package and module."""
    global _absent_on
    path = list(sys.path)
    try:
        importlib.import_module(_RUNTIME_PACKAGE)
    except ModuleNotFoundError as missing:
        if missing.name != _RUNTIME_PACKAGE:
            raise _broken_runtime(missing) from None
        if _RUNTIME_PACKAGE in sys.modules:
            # A None entry blocks the import. Absent for good only if the package is not on
            # sys.path either: a runtime that is there but blocked is broken, never the slot.
            if importlib.machinery.PathFinder.find_spec(_RUNTIME_PACKAGE) is not None:
                raise _broken_runtime(missing) from None
        else:
            _absent_on = path
        return None  # an older runtime: the slot is all there is
    except Exception as error:
        raise _broken_runtime(error) from None
    _absent_on = None
    try:
        module = importlib.import_module(_RUNTIME_MODULE)
    except Exception as error:
        raise _broken_runtime(error) from None
    return _fetch_obo_token(module)


def _fetch_obo_token(module):
    """The runtime module's per-request function; one that is missing or not a function is a
    broken runtime (fail closed), never a reason to read the process-wide slot."""
    try:
        fetch_obo_token = module.fetch_obo_token
    except Exception as error:
        raise _broken_runtime(error) from None
    if not callable(fetch_obo_token):
        raise _broken_runtime(TypeError())  # e.g. None: not an older runtime, which has no such module at all
    return fetch_obo_token


def read_serving_source(fetch_obo_token) -> UserToken:
    """The invoker of this request from the runtime's per-request function."""
    try:
        token = fetch_obo_token()
    except Exception as error:  # the runtime's own failure: no invoker, so fail closed
        raise NoInvokerError(
            f"Model Serving's per-request token source failed ({type(error).__name__}), so this request cannot run "
            "on behalf of its user."
        ) from None
    return _serving_token(token, "mlflowserving")


def read_slot() -> UserToken:
    """The invoker from the process-wide slot; the caller must hold the slot lease."""
    return _serving_token(threading.main_thread().__dict__.get(_SLOT), SLOT_SOURCE)


def no_invoker_outside_serving() -> NoInvokerError:
    return NoInvokerError(
        "No end user for this call: outside Databricks Model Serving, run it inside "
        "`with obo_auth.as_user(token, host=...):` or serve the model with `obo-auth serve`; in a Databricks App, "
        "add obo_auth.OboAppMiddleware to the app or call it inside `with obo_auth.app_request(request.headers):`. "
        "obo_auth never falls back to your own login or the App's identity."
    )


def _serving_token(token: object, source: str) -> UserToken:
    if token is None or (isinstance(token, str) and not token.strip()):
        raise NoInvokerError(
            "Model Serving passed no end-user token with this request, so it cannot run on behalf of the user. "
            "Check that the model was logged with obo_auth.log_model (an auth policy with user scopes) and that "
            "the endpoint has on-behalf-of-user authorization enabled."
        )
    return UserToken(token, source)  # MalformedTokenError for anything that cannot be a bearer token


def _broken_runtime(error: BaseException) -> NoInvokerError:
    return NoInvokerError(
        f"Model Serving's per-request token source ({_RUNTIME_MODULE}.fetch_obo_token) exists but cannot be used "
        f"({type(error).__name__}); obo_auth will not fall back to the process-wide slot, which may hold another "
        "request's token."
    )
