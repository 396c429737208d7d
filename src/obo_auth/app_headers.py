"""The headers the Databricks Apps proxy puts on each request it forwards to an App.

Neutral ground: the agent side reads them (obo_auth.apps) and the local App front door
writes them (obo_auth.serving.app_front_door). The proxy authenticates the user, then sets
these itself and drops any the client sent under the same names, so an App never sees a
client's own ``x-forwarded-access-token``.
"""

from __future__ import annotations

ACCESS_TOKEN = "x-forwarded-access-token"  # the user's token, downscoped to the App's user_api_scopes
EMAIL = "x-forwarded-email"
USER = "x-forwarded-user"  # "<user id>@<workspace id>"
PREFERRED_USERNAME = "x-forwarded-preferred-username"
REAL_IP = "x-real-ip"
REQUEST_ID = "x-request-id"

# What the proxy owns: a client's own values for these never reach the App. Any other
# x-forwarded-* header (x-forwarded-for, -host, -proto) is the proxy's too, and so is RFC 7239's
# Forwarded.
PROXY_SET = frozenset({ACCESS_TOKEN, EMAIL, USER, PREFERRED_USERNAME, REAL_IP, REQUEST_ID, "forwarded"})
PROXY_PREFIX = "x-forwarded-"


def canonical(name: str) -> str:
    """A header name as WSGI servers and frameworks match it: any case, ``_`` for ``-``
    (``X_Forwarded_Access_Token`` and ``x-forwarded-access-token`` both become
    ``HTTP_X_FORWARDED_ACCESS_TOKEN`` in a WSGI environ)."""
    return name.lower().replace("_", "-")


def set_by_proxy(name: str) -> bool:
    """True for a header name only the proxy may set, in any case and with ``_`` for ``-``."""
    name = canonical(name)
    return name in PROXY_SET or name.startswith(PROXY_PREFIX)
