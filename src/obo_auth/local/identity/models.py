"""Identities and tokens of the local workspace: state and rules, no HTTP.

Tokens are kept only as their SHA-256: the workspace can check a token it issued
but cannot print one back, so no record or repr can leak it.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from obo_auth import scopes as scope_math
from obo_auth.http_edge import BadRequest, NotFound, Unauthenticated
from obo_auth.redact import fingerprint, token_hash

# Every workspace identity belongs to this group, as in Databricks.
ALL_USERS_GROUP = "users"
# The workspace's own admin service principal, and its group.
ADMIN_NAME = "workspace-admin"
ADMINS_GROUP = "admins"
# Longer lifetimes are what ttl=None (never expires) is for; the bound also keeps
# clock() + ttl a finite float (an int ttl of 10**400 would overflow it).
MAX_TTL_SECONDS = 10 * 365 * 24 * 3600


# Principal ids are derived from names, so a seed gives the same ids on every start; the seed
# check (seed.py) and the state (state.py) derive them the same way, here.
def user_id(user_name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, user_name))


def service_principal_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp-id:{name}"))


def default_application_id(name: str) -> str:
    """A service principal's OAuth client id when its seed gives none."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{name}"))


@dataclass(frozen=True)
class Principal:
    """A user or service principal. ``name`` is what audit records and grants use."""

    id: str
    name: str  # a user's userName (alice@example.com) or a service principal's display name
    display_name: str
    kind: str  # "user" | "service_principal"
    groups: frozenset[str] = frozenset()
    application_id: str | None = None  # service principals only: the OAuth client id

    @property
    def short_name(self) -> str:
        return self.name.split("@", 1)[0]


@dataclass(frozen=True)
class TokenInfo:
    """What the workspace knows about a token it issued; never the token itself."""

    fingerprint: str
    principal: Principal
    scopes: frozenset[str] | None  # None: an unrestricted personal access token
    expires_at: float | None
    actor: Principal | None = None  # the service principal acting for the user
    # The local process the admin API minted it for (a serving or App process's own tag), so that
    # its tokens can be revoked together if it dies without revoking them; None for any other token.
    minted_for: str | None = field(default=None, compare=False)
    # Why it was revoked ("" when no reason was given); None while it is not revoked.
    revoked_because: str | None = field(default=None, compare=False)

    def allows(self, required_scope: str) -> bool:
        return self.scopes is None or scope_math.covers(self.scopes, required_scope)

    def unusable(self, now: float) -> str | None:
        """Why the token no longer authenticates at ``now``, or None while it does."""
        if self.revoked_because is not None:
            return f"it has been revoked ({self.revoked_because})" if self.revoked_because else "it has been revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "it has expired; get a new one"
        return None


class InvalidScope(BadRequest, ValueError):
    """A scope no downscoped token can hold: a 400 over HTTP, a ValueError to Python callers."""


def _check_runtime(runtime: str) -> None:
    if runtime not in scope_math.ALLOWLISTS:
        raise BadRequest(
            f"Unknown runtime {str(runtime)[:40]!r}: a downscoped token is minted for one of {', '.join(scope_math.ALLOWLISTS)}."
        )


def _checked_scopes(scopes: Iterable[str], runtime: str = scope_math.MODEL_SERVING) -> list[str]:
    """Normalised scopes, each one ``runtime`` (Model Serving, or Databricks Apps) could put in
    a downscoped token (so a typo fails here, naming the nearest valid scope, rather than as a
    puzzling 403 later)."""
    _check_runtime(runtime)
    try:
        return scope_math.check_scopes(scopes, runtime)
    except TypeError as wrong:
        raise BadRequest(f"Invalid scopes: {wrong}.") from None
    except scope_math.UnknownScopeError as unknown:
        raise InvalidScope(
            f"Unknown API scope(s) {', '.join(unknown.hints)}: a downscoped token holds scopes of the "
            f"{scope_math.RUNTIME_NAMES[runtime]} allowlist: {', '.join(unknown.allowed)}."
        ) from None


class IdentityBackend:
    def __init__(self, principals: Iterable[Principal], client_secrets: dict[str, str], clock: Callable[[], float]):
        self._principals = list(principals)
        self._client_secrets = dict(client_secrets)  # application_id -> secret
        self._tokens: dict[str, TokenInfo] = {}  # sha256(token) -> info
        self._lock = threading.Lock()
        self.clock = clock

    # -- principals ------------------------------------------------------------------
    @property
    def principals(self) -> list[Principal]:
        return list(self._principals)

    @property
    def users(self) -> list[Principal]:
        return [p for p in self._principals if p.kind == "user"]

    @property
    def service_principals(self) -> list[Principal]:
        return [p for p in self._principals if p.kind == "service_principal"]

    def groups(self) -> dict[str, list[Principal]]:
        members: dict[str, list[Principal]] = {}
        for principal in self._principals:
            for group in sorted(principal.groups):
                members.setdefault(group, []).append(principal)
        return members

    def find(self, name: str) -> Principal:
        """A principal by user name, short name (``alice``), display name or application id."""
        for principal in self._principals:
            # Display names are not unique, so they never identify anyone.
            if name in (principal.name, principal.short_name, principal.application_id, principal.id):
                return principal
        known = ", ".join(p.short_name for p in self._principals)
        raise NotFound(f"No user or service principal named {name[:80]!r} in this workspace; known: {known}.")

    # -- tokens ----------------------------------------------------------------------
    def issue(
        self,
        principal: Principal,
        scopes: Iterable[str] | None = None,
        ttl: float | None = None,
        actor: Principal | None = None,
        runtime: str = scope_math.MODEL_SERVING,
        minted_for: str | None = None,
    ) -> str:
        """A new token for ``principal``. ``scopes=None``: unrestricted; else a downscoped token
        whose scopes must be on the allowlist of ``runtime`` (``scopes.MODEL_SERVING``, the
        default, or ``scopes.APPS``: where the token is minted for its user). ``minted_for``:
        the tag of the local process it is minted for (see :meth:`revoke_minted_for`)."""
        # Written so that NaN fails it too.
        if ttl is not None and not 0 < ttl <= MAX_TTL_SECONDS:
            raise BadRequest(f"A token's ttl must be between 0 and {MAX_TTL_SECONDS} seconds (or None: never expires), got {ttl}.")
        _check_runtime(runtime)
        if scopes is not None:
            scopes = _checked_scopes(scopes, runtime)
        if actor is not None and actor.kind != "service_principal":
            raise BadRequest(f"The actor of a token must be a service principal (the agent), not the user {actor.name}.")
        token = "dapi" + secrets.token_hex(16)
        info = TokenInfo(
            fingerprint=fingerprint(token),
            principal=principal,
            scopes=None if scopes is None else frozenset(scopes),
            expires_at=None if ttl is None else self.clock() + ttl,
            actor=actor,
            minted_for=minted_for,
        )
        with self._lock:
            self._tokens[token_hash(token)] = info
        return token

    def revoke_minted_for(self, minted_for: str, reason: str) -> list[TokenInfo]:
        """Revokes every token minted for ``minted_for`` that still authenticates, saying ``reason``;
        what it revoked. How a local process that died (killed) without revoking its tokens is
        cleaned up after, by the process that started it."""
        now = self.clock()
        with self._lock:
            keys = [k for k, info in self._tokens.items() if info.minted_for == minted_for and info.unusable(now) is None]
            for key in keys:
                self._tokens[key] = dataclasses.replace(self._tokens[key], revoked_because=reason)
            return [self._tokens[key] for key in keys]

    def revoke(self, token: str, reason: str = "") -> TokenInfo:
        """Revokes ``token``; its 401s (and so their audit records) then say ``reason``.

        Revoking it again keeps the first reason: that is when and why it stopped working.
        """
        key = token_hash(token)
        with self._lock:
            info = self._tokens.get(key)
            if info is None:
                raise NotFound(f"No token with fingerprint {fingerprint(token)} was issued by this workspace.")
            if info.revoked_because is None:
                info = self._tokens[key] = dataclasses.replace(info, revoked_because=reason)
            return info

    def authenticate(self, token: str | None) -> TokenInfo:
        if not token:
            raise Unauthenticated(
                "No access token: send 'Authorization: Bearer <token>' with a token issued by this workspace."
            )
        with self._lock:
            info = self._tokens.get(token_hash(token))
        if info is None:
            raise Unauthenticated(f"Invalid access token ({fingerprint(token)}): this workspace did not issue it.")
        problem = info.unusable(self.clock())
        if problem:
            raise Unauthenticated(f"Invalid access token ({info.fingerprint}): {problem}.")
        return info

    def active_tokens(self) -> int:
        """How many issued tokens would authenticate now."""
        now = self.clock()
        with self._lock:
            return sum(1 for info in self._tokens.values() if info.unusable(now) is None)

    def lookup(self, token: str) -> TokenInfo | None:
        """The token's record whatever its state (for audit attribution), or None."""
        with self._lock:
            return self._tokens.get(token_hash(token))

    # -- OAuth client credentials -------------------------------------------------------
    def client_secret(self, principal: Principal) -> str:
        if principal.application_id is None:
            raise BadRequest(f"{principal.name} is a user; only service principals have OAuth client credentials.")
        return self._client_secrets[principal.application_id]

    def check_client(self, client_id: str, client_secret: str) -> Principal:
        """The service principal whose application id is ``client_id``, if the secret is its own.

        Only the application id: never a name or a principal id, which another principal may
        carry, so a client id can never resolve to anyone but the client.
        """
        expected = self._client_secrets.get(client_id)
        if expected is None or not secrets.compare_digest(expected.encode(), client_secret.encode()):
            raise Unauthenticated("Invalid client credentials: unknown client_id or wrong client_secret.")
        clients = [p for p in self.service_principals if p.application_id == client_id]
        if len(clients) != 1:  # seeds cannot share an application id; fail closed if one did
            raise Unauthenticated("Invalid client credentials: the client_id does not name exactly one service principal.")
        return clients[0]
