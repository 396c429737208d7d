"""What the check knows of the libraries agents use: where an end user's identity comes from,
obo_auth's own API, the caches, the app's own identity, and the classes that keep their first
token (obo_auth.keep_unsafe). Names are dotted names as :class:`~obo_auth.check.names.Names`
resolves them; one not imported is matched as written."""

from __future__ import annotations

import ast
import re

from obo_auth.check.names import Names
from obo_auth.check.syntax import parameters
from obo_auth.keep_unsafe import KEPT_UNSAFE

PREDICT_METHODS = frozenset({"predict", "predict_stream"})
FORWARDED_TOKEN_HEADER = "x-forwarded-access-token"
# Where the serving runtime keeps the invoker's token: a per-request function, and the
# process-wide main-thread slot (shared/REFERENCE.md).
_INVOKER_TOKEN_FUNCTIONS = frozenset({"mlflowserving.scoring_server.agent_utils.fetch_obo_token", "fetch_obo_token"})
_INVOKER_TOKEN_SLOT = "invokers_token"
# How identity_use names the two ways of reading that process-wide token.
USER_CREDENTIALS = "ModelServingUserCredentials"
INVOKER_TOKEN = "the serving runtime's invoker token"
FORWARDED_TOKEN = "the x-forwarded-access-token header"
_CURRENT_REQUEST = frozenset({"obo_auth.current_request", "obo_auth.context.current_request"})
_ON_BEHALF_OF_USER = frozenset({"obo_auth.on_behalf_of_user", "obo_auth.decorator.on_behalf_of_user"})
_PARTIAL = frozenset({"functools.partial", "partial"})
# Each keeps what its function returns for every later caller; st.cache_resource across all sessions.
_CACHES = frozenset({"functools.cache", "functools.lru_cache", "functools.cached_property", "streamlit.cache_resource"})
_IDENTITY_CLIENTS = frozenset({"WorkspaceClient", "AccountClient", "Config"})
_ENVIRONMENT_READS = frozenset({"os.getenv", "os.environ.get"})
_CREDENTIAL_VARIABLE = re.compile(r"TOKEN|SECRET|PASSWORD|KEY|CLIENT_ID|(?:^|_)PAT(?:$|_)", re.IGNORECASE)
# Statements that end a request with an error: flask's abort, Streamlit's st.stop.
_FAIL_CLOSED_CALLS = frozenset({"abort", "stop"})
# The classes of KEPT_UNSAFE by name (however they are imported), and anything from their modules
# (the Lakebase pools all derive from databricks_ai_bridge.lakebase._LakebaseBase).
_KEPT_UNSAFE_CLASSES = frozenset(key.rsplit(".", 1)[1] for key in KEPT_UNSAFE)
_KEPT_UNSAFE_MODULES = frozenset(key.rsplit(".", 1)[0] for key in KEPT_UNSAFE)


def _last(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _from(name: str, *roots: str) -> bool:
    return "." not in name or name.split(".", 1)[0] in roots


def is_user_credentials(name: str) -> bool:
    """databricks-sdk's or databricks-ai-bridge's ModelServingUserCredentials."""
    return _last(name) == "ModelServingUserCredentials" and _from(name, "databricks", "databricks_ai_bridge")


def is_invoker_token_function(name: str) -> bool:
    return name in _INVOKER_TOKEN_FUNCTIONS


def is_current_request(name: str) -> bool:
    return name in _CURRENT_REQUEST


def is_obo_decorator(name: str) -> bool:
    return name in _ON_BEHALF_OF_USER


def is_partial(name: str) -> bool:
    return name in _PARTIAL


def is_cache_decorator(name: str) -> bool:
    return name in _CACHES


def is_identity_client(name: str) -> bool:
    """A databricks-sdk client or config: with no user's token, it acts as the process's own identity."""
    return _last(name) in _IDENTITY_CLIENTS and (name == "WorkspaceClient" or name.split(".", 1)[0] == "databricks")


def is_kept_unsafe(name: str) -> bool:
    return _last(name) in _KEPT_UNSAFE_CLASSES or name.rpartition(".")[0] in _KEPT_UNSAFE_MODULES


def is_fail_closed_call(name: str) -> bool:
    return _last(name) in _FAIL_CLOSED_CALLS


def is_forwarded_token_name(text: str | None) -> bool:
    """``X-Forwarded-Access-Token`` in any case, also as WSGI's ``HTTP_X_FORWARDED_ACCESS_TOKEN``
    or a FastAPI parameter ``x_forwarded_access_token``."""
    if text is None:
        return False
    normal = text.strip().lower().replace("_", "-")
    return normal.removeprefix("http-") == FORWARDED_TOKEN_HEADER


def reads_forwarded_token(node: ast.AST, names: Names) -> bool:
    """``headers.get("x-forwarded-access-token")``, ``headers["X-Forwarded-Access-Token"]``:
    a call whose first argument, or a subscript whose key, names the header."""
    if isinstance(node, ast.Call):
        return bool(node.args) and is_forwarded_token_name(names.string(node.args[0]))
    if isinstance(node, ast.Subscript):
        return is_forwarded_token_name(names.string(node.slice))
    return False


def reads_invoker_slot(node: ast.AST, names: Names) -> bool:
    """``threading.main_thread().__dict__["invokers_token"]``, ``....__dict__.get("invokers_token")``,
    ``getattr(threading.main_thread(), "invokers_token")``, ``threading.main_thread().invokers_token``:
    the slot's name is the runtime's own, so any read of it by that name is the slot."""
    if isinstance(node, ast.Subscript):
        return names.string(node.slice) == _INVOKER_TOKEN_SLOT
    if isinstance(node, ast.Attribute):
        return node.attr == _INVOKER_TOKEN_SLOT and isinstance(node.ctx, ast.Load)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return bool(node.args) and names.string(node.args[0]) == _INVOKER_TOKEN_SLOT
    if isinstance(node, ast.Call) and names.qualify(node.func) == "getattr":
        return len(node.args) >= 2 and names.string(node.args[1]) == _INVOKER_TOKEN_SLOT
    return False


def identity_use(node: ast.AST, names: Names) -> str | None:
    """What ``node`` is, if it reaches for the end user's identity directly."""
    if isinstance(node, (ast.Name, ast.Attribute)) and is_user_credentials(names.qualify(node) or ""):
        return USER_CREDENTIALS
    if isinstance(node, ast.Call):
        name = names.qualify(node.func) or ""
        if is_current_request(name):
            return "current_request()"
        if is_invoker_token_function(name):
            return INVOKER_TOKEN
    if reads_invoker_slot(node, names):
        return INVOKER_TOKEN
    if reads_forwarded_token(node, names):
        return FORWARDED_TOKEN
    return None


def reads_credential_variable(node: ast.AST, names: Names) -> bool:
    """``os.environ["DATABRICKS_TOKEN"]``, ``os.getenv("DATABRICKS_CLIENT_SECRET")``: the process's own credential."""
    if isinstance(node, ast.Subscript) and names.qualify(node.value) == "os.environ":
        key = names.string(node.slice)
    elif isinstance(node, ast.Call) and names.qualify(node.func) in _ENVIRONMENT_READS and node.args:
        key = names.string(node.args[0])
    else:
        return False
    return key is not None and bool(_CREDENTIAL_VARIABLE.search(key))


def forwarded_token_parameters(args: ast.arguments, names: Names) -> list[str]:
    """FastAPI handler parameters that receive the header: ``x_forwarded_access_token: str = Header(None)``
    or ``token: Annotated[str, Header(alias="X-Forwarded-Access-Token")]``."""
    found = []
    for arg, default in parameters(args):
        for declaration in (default, arg.annotation):
            for node in ast.walk(declaration) if declaration is not None else ():
                if _is_header_declaration(node, names) and (
                    is_forwarded_token_name(arg.arg)
                    or any(k.arg == "alias" and is_forwarded_token_name(names.string(k.value)) for k in node.keywords)
                ):
                    found.append(arg.arg)
    return found


def _is_header_declaration(node: ast.AST, names: Names) -> bool:
    if not isinstance(node, ast.Call):
        return False
    name = names.qualify(node.func)
    return name is not None and _last(name) == "Header" and _from(name, "fastapi")
