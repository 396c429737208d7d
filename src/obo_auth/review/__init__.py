"""``obo-auth review``: what a logged agent can do, on whose behalf, and how that was verified.

``review(model_uri)`` reads the model's MLmodel and code (never running it); with ``run=``
it also serves the model locally, asks questions as users, and compares the scopes the
agent declared with those its calls needed (drift.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from obo_auth import mlmodel, model_store
from obo_auth.review.reading import check_code, code_files, logged_from_code, model_directory, python_flavour
from obo_auth.review.report import SCHEMA, Review, build_review

if TYPE_CHECKING:
    from obo_auth.review.drift import Questions

__all__ = ["SCHEMA", "Review", "ReviewError", "review", "review_app"]


class ReviewError(Exception):
    """The model cannot be reviewed; the message is one line saying why and what to do."""


def review(model_uri: str, *, run: Questions | str | Path | dict | None = None, seed: str | Path | dict | None = None) -> Review:
    """The review of the logged model ``model_uri`` (``models:/name/1``, ``runs:/...``, or a path).

    ``run``: questions (a QUESTIONS.yaml path, or its content as a dict) to ask as the users it
    names, against a local workspace seeded with ``seed`` (default: the default seed); the
    review's ``drift`` then says which scopes were used, unused, and used but not declared.
    """
    from obo_auth.check import CheckError

    questions = None
    if run is not None:
        from obo_auth.review.drift import Questions, QuestionsError

        try:
            questions = run if isinstance(run, Questions) else Questions.load(run)
        except QuestionsError as bad:
            raise ReviewError(str(bad)) from None
    model_store.use_default_unless_set()
    try:
        model = mlmodel.read_model(model_uri, model_store.tracking_uri())
        user_scopes, resources = mlmodel.user_scopes(model), mlmodel.resource_entries(model)
        if not _is_python_model(model):
            raise ReviewError(f"{model_uri} is not an agent: its MLmodel has no python_function flavour that serves a Python model")
        with model_directory(model_uri, model) as directory:
            checked, findings = check_code(code_files(model, directory), directory)
    except mlmodel.ModelUnreadable as unreadable:
        raise ReviewError(str(unreadable)) from None
    except CheckError as unparsable:
        raise ReviewError(f"the model's code cannot be checked: {unparsable}") from None
    result = build_review(model_uri, user_scopes, resources, checked, findings, from_code=logged_from_code(model))
    if questions is not None:
        result.drift = _drift(model_uri, user_scopes, questions, seed, streamable=python_flavour(model).get("streamable") is True)
    return result


def _drift(model_uri: str, user_scopes: list[str] | None, questions: Questions, seed: Any, *, streamable: bool) -> dict[str, Any]:
    from obo_auth.local import SeedError
    from obo_auth.review.drift import QuestionsError, run_questions
    from obo_auth.serving import ServingFailed

    try:
        return run_questions(model_uri, user_scopes, questions, seed=seed, streamable=streamable).to_dict()
    except (QuestionsError, SeedError) as failed:
        raise ReviewError(str(failed)) from None
    except ServingFailed as failed:
        # Its message may end with the serving process's output: the first line says what
        # failed, the last what the model printed last (usually the exception).
        lines = [line.strip() for line in str(failed).splitlines() if line.strip()]
        raise ReviewError(lines[0] + (f" (its last output: {lines[-1]})" if len(lines) > 1 else "")) from None


def _is_python_model(model: Any) -> bool:
    # mlflow.pyfunc.model for a pickled agent, mlflow.pyfunc.loaders.* for one logged from code.
    return str(python_flavour(model).get("loader_module", "")).startswith("mlflow.pyfunc.")


def review_app(path: str | Path, name: str | None = None) -> Review:
    """The review of the Databricks App ``name`` (default: the only one) in the ``databricks.yml`` at
    ``path`` (or in that directory): its user_api_scopes in plain words, the App resources it
    reaches as itself, callouts, and ``obo-auth check`` on its source directory."""
    from obo_auth.check import CheckError, python_files
    from obo_auth.review.app_bundle import BundleUnreadable, read_bundle
    from obo_auth.scopes import APPS

    try:
        bundle = read_bundle(path, name)
        files = [Path(f) for f in python_files([bundle.source_dir])] if bundle.source_dir.is_dir() else None
        checked, findings = check_code(files, bundle.source_dir)
    except BundleUnreadable as unreadable:
        raise ReviewError(str(unreadable)) from None
    except CheckError as unparsable:
        raise ReviewError(f"the App's code cannot be checked: {unparsable}") from None
    return build_review(f"app {bundle.name} ({bundle.path})", bundle.user_api_scopes, bundle.resources, checked, findings, runtime=APPS)
