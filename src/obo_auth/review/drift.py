"""Scope drift from a real run: serve the model locally, ask questions as users, and compare
the API scopes the model declared with those its calls needed (from the workspace's audit).

- used but not declared: in production those calls fail with Invalid scope (the local
  workspace refused them too, as the platform would);
- unverified: calls to APIs the local workspace does not serve, whose scope it cannot judge;
- declared but never used: candidates to remove (the run may not have exercised them).

Only the calls the agent made with the token minted for each question's user count: every
such call carries that user as principal and the agent as actor. Each question is asked
twice, once answered whole and once streamed (when the MLmodel says the model streams): an
agent may call other APIs in ``predict_stream`` than in ``predict``. The run *passes* when nothing was used but not
declared, nothing is unverified and every question was answered (Drift.passed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obo_auth.scopes import UMBRELLA_SCOPES, covers

QUESTIONS_FORMAT = "questions: a list of strings or {ask: TEXT, as: USER or [USERS]}; users: [USERS] for those that name none"


class QuestionsError(ValueError):
    """A questions file that cannot be used; the message is one line naming the field."""


@dataclass(frozen=True)
class Question:
    text: str
    users: tuple[str, ...]


@dataclass(frozen=True)
class Questions:
    questions: tuple[Question, ...]

    @classmethod
    def load(cls, source: str | Path | dict) -> Questions:
        """From a YAML file's path, or its content as a dict (see QUESTIONS_FORMAT)."""
        content = source if isinstance(source, dict) else _read_yaml(Path(source))
        if not isinstance(content, dict):
            raise QuestionsError(f"the questions file must be a mapping ({QUESTIONS_FORMAT})")
        unknown = set(content) - {"users", "questions"}
        if unknown:
            raise QuestionsError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))} in the questions file ({QUESTIONS_FORMAT})")
        default = _users(content.get("users"), "users") if "users" in content else ()
        items = content.get("questions")
        if not isinstance(items, list) or not items:
            raise QuestionsError(f"the questions file needs a non-empty list under questions ({QUESTIONS_FORMAT})")
        return cls(tuple(_question(item, i, default) for i, item in enumerate(items)))


@dataclass(frozen=True)
class Exercise:
    """One call that needed a scope: which question, asked by which user, made it."""

    question: str
    user: str
    call: str  # "GET /api/2.0/vector-search/indexes/main.docs.handbook_index/query -> allow 200"


@dataclass
class Drift:
    declared: list[str]
    used: dict[str, list[Exercise]] = field(default_factory=dict)  # needed scope -> the calls that needed it
    unverified: list[Exercise] = field(default_factory=list)  # calls to APIs the local workspace does not serve
    asked: list[dict[str, Any]] = field(default_factory=list)  # {"question", "user", "stream", "status", "calls"}

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Questions that got no answer: what they would have called went unobserved."""
        return [a for a in self.asked if a["status"] >= 400]

    @property
    def passed(self) -> bool:
        """Nothing used but not declared, nothing unverified, and every question answered whole.

        A question answered whole but failing when streamed does not fail the run: mlflow
        marks every ChatAgent streamable, also one that does not implement ``predict_stream``.
        """
        unanswered = [a for a in self.failed if not a["stream"]]
        return not self.undeclared and not self.unverified and not unanswered

    @property
    def undeclared(self) -> dict[str, list[Exercise]]:
        """Scopes the calls needed that the declared ones do not cover (always-granted ones aside)."""
        return {scope: calls for scope, calls in self.used.items() if not covers(self.declared, scope)}

    @property
    def unused(self) -> list[str]:
        """Declared scopes no call needed: neither themselves nor any scope they stand for."""
        return [s for s in self.declared if not ({s} | UMBRELLA_SCOPES.get(s, frozenset())) & set(self.used)]

    def to_dict(self) -> dict[str, Any]:
        def exercises(by_scope: dict[str, list[Exercise]]) -> dict[str, list[dict[str, str]]]:
            return {scope: [vars(e) for e in calls] for scope, calls in sorted(by_scope.items())}

        return {
            "declared": self.declared,
            "used": exercises(self.used),
            "declared_but_never_used": self.unused,
            "used_but_not_declared": exercises(self.undeclared),
            "unverified": [vars(e) for e in self.unverified],
            "asked": self.asked,
            "passed": self.passed,
        }


def run_questions(
    model_uri: str,
    declared: list[str] | None,
    questions: Questions,
    *,
    seed: str | Path | dict | None = None,
    streamable: bool = True,
) -> Drift:
    """Serves ``model_uri`` on a local workspace (``seed``), asks every question as each of its
    users, one at a time (and streamed too when the model is ``streamable``), and collects what
    the agent's calls on their behalf needed."""
    from obo_auth.local import LocalWorkspace
    from obo_auth.serving import serve
    from obo_auth.testing.audit import principal_names

    drift = Drift(list(declared or []))
    with LocalWorkspace(seed) as workspace:
        known = principal_names(*workspace.users())
        for user in {u for q in questions.questions for u in q.users} - known:
            raise QuestionsError(f"the questions name {user!r}, who is not a user of the workspace; its users: {', '.join(sorted(known))}")
        tokens = {user: workspace.issue_token(user) for q in questions.questions for user in q.users}
        with serve(model_uri, workspace, endpoint="review") as endpoint:
            for question in questions.questions:
                for user in question.users:
                    for stream in (False, True) if streamable else (False,):
                        _ask(workspace, endpoint, tokens[user], question.text, user, stream, drift)
    return drift


def _ask(workspace: Any, endpoint: Any, token: str, question: str, user: str, stream: bool, drift: Drift) -> None:
    from obo_auth.testing.asking import ask
    from obo_auth.testing.audit import AuditView

    start = len(workspace.audit())
    reply = ask(endpoint.url, endpoint.interface, token, question, stream=stream)
    calls = AuditView(workspace.audit()[start:]).where(user=user, on_behalf_of_user=True)
    for call in calls:
        exercise = Exercise(question, user, f"{call.method} {call.path} -> {call.decision} {call.status}")
        exercised = drift.used.setdefault(call.needed_scope, []) if call.needed_scope else drift.unverified
        if exercise not in exercised:  # the same call made twice for one question says nothing more
            exercised.append(exercise)
    drift.asked.append({"question": question, "user": user, "stream": stream, "status": reply.status, "calls": len(calls)})


_MAX_QUESTIONS_BYTES = 1024 * 1024


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        if not path.is_file():  # also a FIFO or a device such as /dev/zero, which would never end
            raise FileNotFoundError
        if path.stat().st_size > _MAX_QUESTIONS_BYTES:
            raise QuestionsError(f"the questions file {path} is over 1 MB: a questions file is a few lines")
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QuestionsError(f"no questions file at {path}") from None
    except (RecursionError, ValueError) as error:  # nesting too deep; an integer too long to read
        raise QuestionsError(f"the questions file {path} cannot be read: {type(error).__name__}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise QuestionsError(f"cannot read the questions file {path}: {error}") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        raise QuestionsError(f"the questions file {path} is not valid YAML{at}") from None


def _question(item: Any, index: int, default: tuple[str, ...]) -> Question:
    where = f"questions[{index}]"
    if isinstance(item, str):
        text, users = item, default
    elif isinstance(item, dict) and set(item) <= {"ask", "as"} and "ask" in item:
        text, users = item["ask"], _users(item["as"], f"{where}.as") if "as" in item else default
    else:
        raise QuestionsError(f"{where} must be a question string or {{ask: TEXT, as: USERS}} ({QUESTIONS_FORMAT})")
    if not isinstance(text, str) or not text.strip():
        raise QuestionsError(f"{where}: the question must be non-empty text")
    if not users:
        raise QuestionsError(f"{where} names no user: give it as: [alice, ...], or list users: at the top")
    return Question(text, users)


def _users(value: Any, where: str) -> tuple[str, ...]:
    users = [value] if isinstance(value, str) else value
    if not isinstance(users, list) or not users or not all(isinstance(u, str) and u.strip() for u in users):
        raise QuestionsError(f"{where} must be a user name or a non-empty list of them, e.g. [alice, bob]")
    return tuple(dict.fromkeys(u.strip() for u in users))
