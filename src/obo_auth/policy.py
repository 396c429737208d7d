"""Declarations -> mlflow ``AuthPolicy``, and a ``log_model`` that always logs one.

The user side of the policy holds the API scopes of the resources used on behalf of the
user (plus ``extra_scopes`` for APIs the agent calls directly), checked against the Model
Serving allowlist now rather than at deploy time. The system side holds the mlflow
resources of the ones the agent reaches as itself. A side with nothing in it is left out
(``{}`` in the MLmodel file), as mlflow writes it when no policy is given.

How the logged model gets obo_auth (it imports it when served):

- installed from a package index: ``obo-auth==<installed version>`` is added to the pip
  requirements (``extra_pip_requirements``, or the caller's ``pip_requirements`` list);
- anything else (an editable checkout, a local wheel, a VCS URL, a source tree on
  ``sys.path``), or a caller environment that is not a list we can extend (``conda_env``,
  a requirements file path): the package source is copied into the model with
  ``code_paths``. No index serves that exact build, and a pin would make the serving
  image install whatever the index holds under the name;
- a caller requirement list that already names obo-auth is left as it is.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from obo_auth import log_time, model_store
from obo_auth.errors import ArgumentTypeError, ResourceDeclarationError
from obo_auth.mlmodel import RECORD_KEY
from obo_auth.requirements import agent_requirements
from obo_auth.resources import (
    ResourceDeclaration,
    check_declarations,
    check_one_identity_each,
    required_scopes,
    validate_scopes,
)
from obo_auth.scopes import normalize

if TYPE_CHECKING:
    from mlflow.models.auth_policy import AuthPolicy
    from mlflow.models.model import ModelInfo

__all__ = ["auth_policy", "log_model"]


_DISTRIBUTION = "obo-auth"
_PACKAGE_DIR = Path(__file__).resolve().parent


def auth_policy(*resources: ResourceDeclaration, extra_scopes: Iterable[str] = ()) -> AuthPolicy:
    """The mlflow ``AuthPolicy`` for these declarations; raises before anything is logged."""
    check_declarations(resources)
    extra = validate_scopes(extra_scopes)
    if not resources and not extra:
        raise ResourceDeclarationError("an auth policy needs at least one resource declaration or extra scope")
    check_one_identity_each(resources)
    # required_scopes come from the table, already valid; only the extras needed checking.
    scopes = normalize([*required_scopes(*resources), *extra])
    # dict.fromkeys: a resource declared twice is listed once, in declaration order.
    system = [r.to_mlflow() for r in dict.fromkeys(r for r in resources if not r.on_behalf_of_user)]

    # mlflow is imported on use, as in resources.py (whose docstring says why).
    from mlflow.models.auth_policy import AuthPolicy, SystemAuthPolicy, UserAuthPolicy

    return AuthPolicy(
        user_auth_policy=UserAuthPolicy(api_scopes=scopes) if scopes else None,
        system_auth_policy=SystemAuthPolicy(resources=system) if system else None,
    )


def log_model(
    python_model: Any,
    *,
    resources: Iterable[ResourceDeclaration],
    name: str = "agent",
    extra_scopes: Iterable[str] = (),
    **mlflow_kwargs: Any,
) -> ModelInfo:
    """Logs an agent with ``mlflow.pyfunc.log_model`` and the auth policy of ``resources``.

    ``python_model`` is a ``ChatAgent`` or ``ResponsesAgent`` instance, or the path of a
    models-from-code file. ``extra_scopes`` adds API scopes for calls the agent makes
    directly. Every other keyword goes to mlflow unchanged, except ``auth_policy=``, which
    is refused: the policy is what the declarations are for. obo_auth itself is added to
    the model as the module docstring describes. Returns mlflow's ``ModelInfo``.

    Also: pip requirements come from the agent's imports unless given (requirements.py); the
    declarations are recorded in the MLmodel ``metadata`` (declaration_record); the model goes
    to the store model_store.py names unless one was chosen; mlflow's log-time ``predict``
    runs as the user of an enclosing ``as_user``, or not at all (log_time.py).
    """
    if "auth_policy" in mlflow_kwargs:
        raise ArgumentTypeError(
            "log_model builds auth_policy from resources= (and extra_scopes=); pass declarations instead, "
            "or call mlflow.pyfunc.log_model yourself"
        )
    declarations = _declaration_list(resources)
    policy = auth_policy(*declarations, extra_scopes=extra_scopes)
    python_model = _agent_or_path(python_model)
    _path_list(mlflow_kwargs.get("code_paths"))  # checked before anything reads it

    import mlflow.pyfunc

    kwargs = _ship_obo_auth(_with_requirements(mlflow_kwargs, python_model), _pin(_installed()))
    kwargs["metadata"] = {**(kwargs.get("metadata") or {}), RECORD_KEY: declaration_record(declarations)}
    model_store.use_default_unless_set()
    # The script's stdout is for its own result: what the agent prints while mlflow runs it
    # (e.g. the vector-search client's [NOTICE] lines) goes to stderr.
    with log_time.validation_run(), contextlib.redirect_stdout(sys.stderr):
        return mlflow.pyfunc.log_model(name=name, python_model=python_model, auth_policy=policy, **kwargs)


def declaration_record(declarations: Iterable[ResourceDeclaration]) -> dict[str, Any]:
    """What the model's MLmodel ``metadata`` keeps of its declarations, for serving and review.

    The auth policy keeps only the scopes of the resources used as the user; this keeps
    every declared resource, so serving can check they exist and a reviewer can see them.
    """
    resources = [
        {"type": r.resource_type, "name": r.identifier, "on_behalf_of_user": r.on_behalf_of_user}
        for r in dict.fromkeys(declarations)
    ]
    return {"version": 1, "resources": resources}


def _with_requirements(kwargs: dict[str, Any], python_model: Any) -> dict[str, Any]:
    """Pip requirements read from the agent's imports (requirements.py), unless the caller chose them.

    mlflow would infer them by running the agent in a subprocess: slow, and with no user there.
    The caller's ``extra_pip_requirements`` are kept, after ours.
    """
    if kwargs.get("pip_requirements") is not None or kwargs.get("conda_env") is not None:
        return kwargs
    extra = kwargs.get("extra_pip_requirements")
    if isinstance(extra, (str, os.PathLike)):
        return kwargs  # a requirements file: mlflow reads it, and infers the rest itself
    kwargs = {k: v for k, v in kwargs.items() if k != "extra_pip_requirements"}
    code_paths = [os.fspath(p) for p in _path_list(kwargs.get("code_paths"))]
    return {**kwargs, "pip_requirements": [*agent_requirements(python_model, code_paths), *(extra or [])]}


def _path_list(code_paths: Any) -> list[Any]:
    """``code_paths`` as mlflow takes it: a list of paths (a bare string would be read letter by letter)."""
    if code_paths is None:
        return []
    if not isinstance(code_paths, (list, tuple)):
        raise ArgumentTypeError(f"code_paths= takes a list of paths, e.g. [{code_paths!r}], not {type(code_paths).__name__}")
    return list(code_paths)


def _declaration_list(resources: object) -> list[ResourceDeclaration]:
    if isinstance(resources, (str, bytes, ResourceDeclaration)) or not isinstance(resources, Iterable):
        raise ArgumentTypeError(
            "resources= takes a list of declarations, e.g. [VectorSearchIndex('main.docs.handbook_index')], "
            f"got {type(resources).__name__}"
        )
    resources = list(resources)
    if not resources:
        raise ResourceDeclarationError(
            "resources= is empty: declare every Databricks resource the agent uses, so its auth policy can be built"
        )
    return resources


def _agent_or_path(python_model: Any) -> Any:
    from mlflow.pyfunc import ChatAgent, ResponsesAgent

    agents = (ChatAgent, ResponsesAgent)
    if isinstance(python_model, agents):
        return python_model
    if isinstance(python_model, (str, os.PathLike)):
        return os.fspath(python_model)  # mlflow takes models-from-code paths as str only
    if isinstance(python_model, type) and issubclass(python_model, agents):
        raise ArgumentTypeError(f"python_model= takes an instance: {python_model.__name__}(), not the class")
    raise ArgumentTypeError(
        "python_model= must be a ChatAgent or ResponsesAgent instance, or the path of a models-from-code "
        f"file; got {type(python_model).__name__}"
    )


def _installed() -> importlib.metadata.Distribution | None:
    try:
        return importlib.metadata.distribution(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None  # imported from a source tree on sys.path


def _pin(dist: importlib.metadata.Distribution | None) -> str | None:
    """``obo-auth==<version>`` when ``dist`` was installed from a package index, else None."""
    # PEP 610: installers write direct_url.json for every install that did not come from an
    # index (editable checkouts, local wheels and directories, VCS URLs).
    if dist is None or dist.read_text("direct_url.json") is not None:
        return None
    return f"{_DISTRIBUTION}=={dist.version}"


def _ship_obo_auth(kwargs: dict[str, Any], requirement: str | None) -> dict[str, Any]:
    """mlflow kwargs that make obo_auth importable in the logged model (module docstring)."""
    key = "pip_requirements" if kwargs.get("pip_requirements") is not None else "extra_pip_requirements"
    reqs = kwargs.get(key)
    extendable = reqs is None or not isinstance(reqs, (str, os.PathLike))  # a path names a requirements file
    if extendable and reqs is not None and any(_names_obo_auth(line) for line in reqs):
        return kwargs
    # mlflow refuses conda_env beside pip requirements, so with one only code_paths is left.
    if requirement and extendable and kwargs.get("conda_env") is None:
        return {**kwargs, key: [*(reqs or []), requirement]}
    code_paths = [os.fspath(p) for p in kwargs.get("code_paths") or []]
    if not any(Path(p).resolve() == _PACKAGE_DIR for p in code_paths):
        code_paths.append(str(_PACKAGE_DIR))
    return {**kwargs, "code_paths": code_paths}


def _names_obo_auth(line: str) -> bool:
    try:
        return canonicalize_name(Requirement(line).name) == _DISTRIBUTION
    except InvalidRequirement:
        return False  # pip options (-r, --index-url) and bare paths name no distribution
