"""A logged model's security review, built from its MLmodel (and the check of its code):
what it does as its user, what it does as itself, what a reviewer should look at, and the
end-user summary. Pure data here; render.py prints it, drift.py adds what a run observed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from obo_auth.mlmodel import RESOURCE_LABELS, ResourceEntry
from obo_auth.resources import RESOURCE_SCOPES, declaration_class
from obo_auth.review.scope_guide import GUIDES, UNKNOWN, Risk
from obo_auth.scopes import ALLOWLISTS, ALWAYS_GRANTED_SCOPES, APPS, MODEL_SERVING, UMBRELLA_SCOPES, expand

SCHEMA = "obo-auth-review/1"  # bumped when a field changes meaning or goes away; new fields keep it

_WHAT = {MODEL_SERVING: "agent", APPS: "App"}
# MLmodel resource types obo_auth has no declaration for, and the scopes using them as the user needs.
_UNDECLARABLE_SCOPES = {"app": frozenset({"apps.apps"})}


@dataclass(frozen=True)
class Callout:
    """Something about the model's policy a reviewer must decide on."""

    id: str
    severity: str  # "high" | "medium" | "info"
    text: str


@dataclass(frozen=True)
class ScopeUse:
    """One API scope the model holds on its user's behalf, and why."""

    scope: str
    allows: str
    does_not: str
    resources: tuple[str, ...]  # "vector search index main.docs.handbook_index": the declarations that need it
    risks: tuple[Risk, ...]


@dataclass
class Review:
    model_uri: str
    has_user_policy: bool
    scopes: list[ScopeUse]
    as_user: list[ResourceEntry]
    as_agent: list[ResourceEntry]
    callouts: list[Callout]
    code_checked: list[str] | None  # the files checked; None when the model holds no code
    code_findings: list[dict[str, Any]]
    summary: str
    drift: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (schema ``obo-auth-review/1``, documented in the README)."""
        return {
            "schema": SCHEMA,
            "model": self.model_uri,
            "user_auth_policy": self.has_user_policy,
            "scopes": [
                {**asdict(use), "resources": list(use.resources), "risks": [asdict(r) for r in use.risks]} for use in self.scopes
            ],
            "as_user": [_resource(r) for r in self.as_user],
            "as_agent": [_resource(r) for r in self.as_agent],
            "callouts": [asdict(c) for c in self.callouts],
            "code": {"checked": self.code_checked, "findings": self.code_findings},
            "end_user_summary": self.summary,
            "drift": self.drift,
        }


def build_review(
    model_uri: str,
    user_scopes: list[str] | None,
    resources: list[ResourceEntry],
    code_checked: list[str] | None,
    code_findings: list[dict[str, Any]],
    *,
    from_code: bool = True,
    runtime: str = MODEL_SERVING,
) -> Review:
    """The review of a model whose user auth policy holds ``user_scopes`` (None: it has none)
    and which names ``resources`` (obo_auth.mlmodel.resource_entries); ``from_code``: the agent
    was logged from a code file (False: pickled, its class in no file the review can read).
    ``runtime``: ``scopes.APPS`` for a Databricks App, whose user_api_scopes are ``user_scopes``
    and whose App resources are ``resources`` (review/app_bundle.py).

    A resource named both ways is in both lists: what the agent reaches as itself is never
    hidden behind the same resource reached as the user.
    """
    as_user = _once(r for r in resources if r.on_behalf_of_user)
    as_agent = _once(r for r in resources if r.on_behalf_of_user is not True)
    scopes = [_scope_use(scope, as_user) for scope in dict.fromkeys(user_scopes or [])]
    callouts = _app_callouts(user_scopes, scopes) if runtime == APPS else _callouts(user_scopes, resources, as_user, scopes)
    if not from_code:
        files = f"only its {len(code_checked)} code_paths file(s) were checked" if code_checked else "no code file of it could be checked"
        callouts.append(
            Callout(
                "code-not-checked", "info",
                f"The agent was logged as a pickled Python object, so its own class is in no code file: {files}. "
                "Log it from code (the path of its file) to have all of its code reviewed.",
            )
        )  # fmt: skip
    summary = end_user_summary(user_scopes, as_agent, scopes, runtime)
    return Review(model_uri, user_scopes is not None, scopes, as_user, as_agent, callouts, code_checked, code_findings, summary)


def describe(entry: ResourceEntry) -> str:
    return f"{RESOURCE_LABELS.get(entry.type, entry.type)} {entry.name}"


def needed_scopes(entry: ResourceEntry) -> frozenset[str]:
    """The API scopes obo_auth's resource table says a resource used as the user needs."""
    cls = declaration_class(entry.type)
    return frozenset(RESOURCE_SCOPES[cls]) if cls else _UNDECLARABLE_SCOPES.get(entry.type, frozenset())


def _scope_use(scope: str, as_user: list[ResourceEntry]) -> ScopeUse:
    guide = GUIDES.get(scope, UNKNOWN)
    covered = {scope} | UMBRELLA_SCOPES.get(scope, frozenset())
    behind = tuple(describe(r) for r in as_user if needed_scopes(r) & covered)
    return ScopeUse(scope, guide.allows, guide.does_not, behind, guide.risks)


def _callouts(
    user_scopes: list[str] | None, resources: list[ResourceEntry], as_user: list[ResourceEntry], scopes: list[ScopeUse]
) -> list[Callout]:
    callouts: list[Callout] = []
    declared = any(r.source == "obo_auth" for r in resources)
    mlflow_listed = [r for r in resources if r.source == "resources"]
    if user_scopes is None:
        if mlflow_listed:
            callouts.append(
                Callout(
                    "resources-only", "high",
                    f"The model was logged with resources= only ({', '.join(describe(r) for r in mlflow_listed)}) and no auth "
                    "policy: Model Serving reaches them with the agent's own credentials, the same for every user, so each user "
                    "sees what the agent can see. Log it with obo_auth.log_model and declarations instead.",
                )
            )  # fmt: skip
        callouts.append(
            Callout(
                "no-user-policy", "high" if as_user else "medium",
                "The model has no user auth policy: it cannot act as its user, and everything it reaches, it reaches as itself."
                + (f" Yet it names {len(as_user)} resource(s) as used on behalf of the user." if as_user else ""),
            )
        )  # fmt: skip
        return callouts
    if not declared:
        callouts.append(
            Callout(
                "no-declarations", "medium",
                "The model was logged without obo_auth declarations, so its scopes cannot be traced to the resources that need them. "
                "Log it with obo_auth.log_model(resources=[...]).",
            )
        )  # fmt: skip
    for use in scopes:
        if use.scope not in ALLOWLISTS[MODEL_SERVING]:
            callouts.append(Callout("unknown-scope", "high", f"{use.scope!r} is not a Model Serving API scope: deploying the model fails."))
        elif not use.resources and use.scope not in ALWAYS_GRANTED_SCOPES:
            callouts.append(
                Callout(
                    "unexplained-scope", "medium",
                    f"{use.scope} is held on the user's behalf but no declared resource needs it (added with extra_scopes, or by "
                    "hand): confirm the agent calls that API directly, or remove it.",
                )
            )  # fmt: skip
    held = expand(user_scopes)
    for entry in as_user:
        missing = sorted(needed_scopes(entry) - held)
        if missing:
            callouts.append(
                Callout(
                    "missing-scope", "high",
                    f"{describe(entry)} is used on behalf of the user, but the policy lacks {', '.join(missing)}: "
                    "those calls fail with Invalid scope. Log the model again with obo_auth.log_model.",
                )
            )  # fmt: skip
    return callouts


def _app_callouts(user_scopes: list[str] | None, scopes: list[ScopeUse]) -> list[Callout]:
    """A Databricks App's: its bundle holds scopes and App resources, not declarations."""
    if user_scopes is None:
        return [
            Callout(
                "no-user-authorization", "high",
                "The App has no user_api_scopes: Databricks Apps forward it no user token, so everything it reaches, it reaches "
                "as its own service principal, the same for every user. Give it the scopes obo_auth.app_config(...) lists.",
            )
        ]  # fmt: skip
    callouts = [
        Callout("unknown-scope", "high", f"{use.scope!r} is not a Databricks Apps user API scope: deploying the App fails.")
        for use in scopes
        if use.scope not in ALLOWLISTS[APPS]
    ]
    callouts.append(
        Callout(
            "scopes-from-bundle", "info",
            "The App's scopes are read from its bundle, which does not say which resource needs each one: write them with "
            "obo_auth.app_config(*RESOURCES).bundle() so they are exactly what its declarations need.",
        )
    )  # fmt: skip
    return callouts


def end_user_summary(
    user_scopes: list[str] | None, as_agent: list[ResourceEntry], scopes: list[ScopeUse], runtime: str = MODEL_SERVING
) -> str:
    """The consent text the platform lacks: what the agent can do as the person reading it.

    Built from the scopes, not the declarations: a scope lets the agent call its whole API as
    the user, whatever resource it was declared for, so the declarations are named only as
    what it is used for.
    """
    agent_part = ""
    if as_agent:
        agent_part = f" It also uses, as itself and the same for everyone: {'; '.join(describe(r) for r in as_agent)}."
    if user_scopes is None:
        return f"This {_WHAT[runtime]} does not act as you: what it shows you does not depend on your own permissions.{agent_part}"
    actions = []
    for use in scopes:
        if use.scope in ALWAYS_GRANTED_SCOPES or use.scope not in ALLOWLISTS[runtime]:
            continue  # said for every agent below; and a scope the platform refuses grants nothing
        text = GUIDES[use.scope].as_you
        actions.append(f"{text} (used for: {', '.join(use.resources)})" if use.resources else text)
    can = "; ".join(dict.fromkeys(actions)) if actions else "nothing beyond reading who you are"
    return (
        f"This {_WHAT[runtime]} can, as you: {can}. Like every agent acting for you, it can also read your user name, email and groups, "
        "and the users, groups and permissions visible to you. Whatever it does as you is limited to what your own "
        f"Unity Catalog and workspace permissions allow.{agent_part}"
    )


def _once(entries) -> list[ResourceEntry]:
    seen: dict[tuple[str, str], ResourceEntry] = {}
    for entry in entries:
        seen.setdefault((entry.type, entry.name), entry)
    return list(seen.values())


def _resource(entry: ResourceEntry) -> dict[str, Any]:
    return {"type": entry.type, "name": entry.name, "source": entry.source}
