"""Objects obo_auth cannot make request-bound, and the warning that says so.

These classes take the invoker's token into their own state the first time they use it
(``config.authenticate()`` once, then a cached token or database credential), so a kept
instance goes on acting as that user in later requests. obo_auth cannot reach inside them;
``req.optional`` / ``req.require`` hand them out with a loud :class:`KeptUnsafeWarning`, and
SECURITY.md lists them. Build them per request and never keep them.
"""

from __future__ import annotations

import logging
import warnings

from obo_auth.errors import KeptUnsafeWarning

logger = logging.getLogger("obo_auth")

# module.qualname -> what it keeps (read from the installed source).
KEPT_UNSAFE = {
    "databricks_mcp.oauth_provider.DatabricksOAuthClientProvider": "the token of its first request (never refreshed)",
    "databricks_openai.agents.mcp_server.McpServer": "an OAuth provider holding the token of the request it connected in",
    "databricks_ai_bridge.lakebase._LakebaseBase": "a database user and credential of the request it was built in",
}


def warn_if_kept_unsafe(name: str, obj: object) -> None:
    for cls in type(obj).__mro__:
        kept = KEPT_UNSAFE.get(f"{cls.__module__}.{cls.__qualname__}")
        if kept:
            message = (
                f"{name!r} is a {type(obj).__name__}, which keeps {kept}: kept beyond this request it would act as "
                "this request's user for others. Use it only within this request; never keep it on self or in a cache."
            )
            logger.warning(message)
            warnings.warn(message, KeptUnsafeWarning, stacklevel=3)
            return
