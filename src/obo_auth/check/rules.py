"""The rules of ``obo-auth check``: what each flags, what its findings say, and which one a line
reports when several apply (the first in this table: the most specific).

A *user-scoped* value is one that acts as, or is, an end user's credential without being bound to
a request: ``ModelServingUserCredentials()`` (databricks-sdk or databricks-ai-bridge), the serving
runtime's invoker token, the ``x-forwarded-access-token`` header of a Databricks App, and whatever
is built from one (``WorkspaceClient(credentials_strategy=...)``, ``WorkspaceClient(token=...)``,
a tool, an agent holding the tool, ``functools.partial`` of one, a call to one of the module's own
functions that returns one). obo_auth's own ``current_request().user_client``, and the tools built
from it, are request-bound by design and are not user-scoped in this sense.

| id | flags |
|---|---|
| apps-identity-fallback | a missing x-forwarded-access-token header falls back to the app's own identity |
| current-request-no-request | obo_auth.current_request() at module level, in a class body, in __init__ or load_context, in a cached function, or in an undecorated predict |
| user-client-cached | a user-scoped value returned by a cached function (functools.cache, lru_cache, cached_property; st.cache_resource) |
| user-client-global | a user-scoped value assigned to a global or nonlocal, or put in a module-level object |
| user-client-in-init | a user-scoped value built in __init__ or load_context |
| user-client-on-self | a user-scoped value stored on self (self.x = ..., setattr(self, ...), vars(self)[k] = ..., self.x.append(...)) |
| user-client-class-attribute | a user-scoped value kept as a class attribute (class body, cls.x = ..., type(self).x = ...) |
| user-client-module-level | a user-scoped value built at module level (not in a Streamlit script, whose module level runs per session) |
| kept-unsafe-tool | an MCP server, OAuth provider or Lakebase pool (obo_auth.keep_unsafe.KEPT_UNSAFE) built from obo_auth's user client and kept |
| predict-not-decorated | predict / predict_stream uses the end user's identity (itself, or through a function of its module or of a file beside it) but is not decorated with @obo_auth.on_behalf_of_user |
| slot-read-in-request | a decorated call reaches for the serving runtime's process-wide token (ModelServingUserCredentials, the invoker slot) instead of its pinned user client |
"""

from __future__ import annotations

from dataclasses import dataclass

_PER_REQUEST = (
    "build it per request and keep it local: in the @obo_auth.on_behalf_of_user predict or a helper it calls, "
    "from obo_auth.current_request().user_client; in an App, in the request's handler"
)


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    message: str  # a format string: see the fields each rule's finding passes
    fix: str


_RULES = (
    Rule(
        "apps-identity-fallback",
        "A missing x-forwarded-access-token header falls back to the app's own identity.",
        "when the x-forwarded-access-token header is missing this falls back to the app's own identity, "
        "so the user acts with the app's permissions",
        "fail closed: raise a 401 when the header is missing; never substitute the app's identity",
    ),
    Rule(
        "current-request-no-request",
        "obo_auth.current_request() is called where no request can exist.",
        "current_request() {where}: {why}",
        "call it inside the @obo_auth.on_behalf_of_user predict, or in a helper that predict calls, once per request",
    ),
    Rule(
        "user-client-cached",
        "A user-scoped client or tool is returned by a cached function.",
        "user-scoped client or tool returned by a cached function: every later caller gets the first one, "
        "so later requests can act as the wrong user",
        _PER_REQUEST,
    ),
    Rule(
        "user-client-global",
        "A user-scoped client or tool is kept in a global, a nonlocal or a module-level object.",
        "user-scoped client or tool kept in a global, nonlocal or module-level object: "
        "later requests can act as the wrong user",
        _PER_REQUEST,
    ),
    Rule(
        "user-client-in-init",
        "A user-scoped client or tool is built in __init__ or load_context.",
        "user-scoped client or tool built in __init__ or load_context: the agent is built once, with no user, "
        "and serves every request",
        _PER_REQUEST,
    ),
    Rule(
        "user-client-on-self",
        "A user-scoped client or tool is stored on self.",
        "user-scoped client or tool stored on self: the object serves every request, "
        "so later requests can act as the wrong user",
        _PER_REQUEST,
    ),
    Rule(
        "user-client-class-attribute",
        "A user-scoped client or tool is kept as a class attribute.",
        "user-scoped client or tool kept as a class attribute: shared by every instance and every request",
        _PER_REQUEST,
    ),
    Rule(
        "user-client-module-level",
        "A user-scoped client or tool is built at module level.",
        "user-scoped client or tool built at module level: built once, with no user, and shared by every request",
        _PER_REQUEST,
    ),
    Rule(
        "kept-unsafe-tool",
        "An MCP server, OAuth provider or Lakebase pool built from obo_auth's user client is kept beyond its request.",
        "MCP server, OAuth provider or Lakebase pool built from the user's client and kept: it keeps the token of "
        "the request it was built in and acts as that user for later requests",
        "build it inside each request and use it only there; obo_auth.keep_unsafe.KEPT_UNSAFE lists these classes",
    ),
    Rule(
        "predict-not-decorated",
        "predict / predict_stream uses the end user's identity but is not decorated with @obo_auth.on_behalf_of_user.",
        "{name} uses the end user's identity ({use}, line {use_line}) but is not decorated with "
        "@obo_auth.on_behalf_of_user: concurrent requests can act as each other",
        "decorate it with @obo_auth.on_behalf_of_user and build user clients from obo_auth.current_request().user_client",
    ),
    Rule(
        "slot-read-in-request",
        "A decorated call reaches for the serving runtime's process-wide token instead of its request's pinned user client.",
        "{use} inside @obo_auth.on_behalf_of_user {name}: it re-reads the serving runtime's process-wide token slot, "
        "which a concurrent request overwrites, so this request can act as another user",
        "use obo_auth.current_request().user_client, which is pinned to this request's user",
    ),
)

BY_ID = {rule.id: rule for rule in _RULES}
RULES = {rule.id: rule.description for rule in _RULES}
# Lower wins when several rules flag one line.
PRECEDENCE = {rule.id: rank for rank, rule in enumerate(_RULES)}
