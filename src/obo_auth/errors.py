"""obo_auth's exceptions: one tree rooted at :class:`OboAuthError`.

Messages say what was wrong and what to do; none ever contains a token.
"""

from __future__ import annotations


class OboAuthError(Exception):
    """Base of every error obo_auth raises."""


# -- request identity (context.py, invoker.py, credentials.py) ------------------------
class OutsideRequestError(OboAuthError, RuntimeError):
    """``current_request()`` was called outside a call decorated with ``@on_behalf_of_user``."""


class NoInvokerError(OboAuthError, PermissionError):
    """No end-user token for this request: obo_auth fails closed rather than act as anyone else."""


class RequestEndedError(OboAuthError, PermissionError):
    """A user-scoped client or tool was used outside any live request: after its request
    ended, past a request's maximum lifetime, or in a thread that did not inherit the request."""


class CrossRequestError(OboAuthError, PermissionError):
    """A stream of one request was pulled inside another request: it fails instead of handing
    its user's data to the other request's user."""


class WorkspaceMismatchError(OboAuthError, PermissionError):
    """A user-scoped client or tool built for one workspace was used in a request for another:
    the invoker's token is never sent to a host it was not issued for."""


class MalformedTokenError(OboAuthError, ValueError):
    """An invoker token that cannot be a bearer token (control characters, spaces, not a string).

    The message names only the token's fingerprint, never the token."""


class ToolUnavailableError(OboAuthError, PermissionError):
    """``req.require(...)`` could not build a tool with the invoker's access."""

    # The Databricks error code serving answers with (403): the caller lacks the access, as the
    # workspace's own PermissionDenied says. Serving reads the code, never this class.
    error_code = "PERMISSION_DENIED"

    def __init__(self, name: str, category: str, detail: str):
        super().__init__(f"Tool {name!r} is unavailable to this user ({category.replace('_', ' ')}): {detail}")
        self.name = name
        self.category = category


# -- declarations and logging (resources.py, policy.py) -------------------------------
class ResourceDeclarationError(OboAuthError, ValueError):
    """A resource declaration or resource list that cannot be logged."""


class InvalidScopeError(OboAuthError, ValueError):
    """An API scope the platform would refuse at deploy time."""


class ArgumentTypeError(OboAuthError, TypeError):
    """An argument of the wrong kind: a string or an mlflow resource where a declaration belongs,
    a class where an agent instance belongs, or ``auth_policy=`` beside declarations."""


class KeptUnsafeWarning(UserWarning):
    """A tool handed out by ``req.optional`` / ``req.require`` keeps its user's credential in its
    own state, so it must not outlive its request (keep_unsafe.py lists the classes)."""
