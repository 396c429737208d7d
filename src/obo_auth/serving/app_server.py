"""The local App process: an author's ASGI app served as a Databricks App, behind the front door.

Started as ``python -m obo_auth.serving.app_server`` by :func:`obo_auth.serving.serve_app`
(which ``obo-auth serve-app`` uses), from the App's source directory, as Databricks Apps run
it, with the minimal environment (environment.py). Before the app's module is imported, this
process gets what a Databricks App's environment holds: ``DATABRICKS_HOST``,
``DATABRICKS_WORKSPACE_ID``, the App's service principal's ``DATABRICKS_CLIENT_ID`` /
``DATABRICKS_CLIENT_SECRET``, ``DATABRICKS_APP_NAME``, ``DATABRICKS_APP_PORT`` and
``DATABRICKS_APP_URL`` (and no ``~/.databrickscfg``). The workspace's admin credential arrives
as the first line of stdin, as for server.py: never on the command line or in the environment.

The app is served with uvicorn on a loopback port, wrapped in the front door
(app_front_door.py), its lifespan run. Once it listens, the App is registered in the workspace
with its URL (``WorkspaceClient().apps.get(name).url``), then announced in the ready file; when
it stops (SIGTERM or SIGINT, as server.py), the App is registered as stopped (no URL) before
the port is freed, and every request token still live is revoked.

What it can tell about why it cannot start (the module or attribute, the port, the service
principal, the workspace) it writes to the ready file as ``{"error": "..."}`` and exits with 1.

The parent side reads the import string and the bundle before starting it: :func:`app_target`
and :func:`bundle_scopes`, which need nothing heavy.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obo_auth.http_edge import KEEP_ALIVE_SECONDS
from obo_auth.redact import scrub
from obo_auth.scopes import APPS, UnknownScopeError, check_scopes
from obo_auth.serving.errors import ServingFailed
from obo_auth.serving.runtime import LOGIN_VARIABLE_PREFIXES
from obo_auth.serving.workspace_link import WorkspaceLink, WorkspaceRefused

# The stop machinery is the model process's: the same signals, the same grace, the same report.
from obo_auth.serving.server import GRACEFUL_SHUTDOWN_SECONDS, STOP_SIGNALS, cannot_start, exit_on_signal, listen, report

if TYPE_CHECKING:
    from obo_auth.serving.app_front_door import FrontedApp

BUNDLE_FILES = ("databricks.yml", "databricks.yaml")
_EXAMPLE = "e.g. 'app:app' (the module app.py, its attribute app)"


# -- the parent side: what to serve -------------------------------------------------------------
@dataclass(frozen=True)
class AppTarget:
    """An App to serve: ``module:attribute``, imported with ``directory`` first on sys.path."""

    module: str
    attribute: str
    directory: Path  # the App's source directory: its working directory, first on sys.path

    @property
    def app_ref(self) -> str:
        return f"{self.module}:{self.attribute}"

    def module_file(self) -> Path | None:
        """The module's source in ``directory`` (None: it is not there, e.g. an installed package)."""
        base = self.directory.joinpath(*self.module.split("."))
        return next((path for path in (base.with_suffix(".py"), base / "__init__.py") if path.is_file()), None)

    def default_bundle(self) -> Path | None:
        """A ``databricks.yml`` beside the module, else in the source directory, if there is one."""
        found = self.module_file()
        places = [found.parent] if found else []
        for place in dict.fromkeys([*places, self.directory]):
            for name in BUNDLE_FILES:
                if (place / name).is_file():
                    return place / name
        return None


def app_target(app_ref: str, app_dir: str | Path | None = None) -> AppTarget:
    """``app_ref`` read as Databricks Apps and uvicorn take it: ``module:attribute`` (the module
    found in ``app_dir``, default the current directory) or ``path/to/file.py:attribute`` (its
    directory is the App's unless ``app_dir`` is given). ServingFailed for anything else."""
    if not isinstance(app_ref, str) or ":" not in app_ref:
        raise ServingFailed(f"{app_ref!r} is not an import string: give 'module:attribute', {_EXAMPLE}")
    module, _, attribute = app_ref.rpartition(":")
    if not attribute or not all(part.isidentifier() for part in attribute.split(".")):
        raise ServingFailed(f"{app_ref!r}: {attribute!r} is not an attribute name: give 'module:attribute', {_EXAMPLE}")
    directory = None
    if app_dir is not None:
        directory = Path(app_dir).resolve()
        if not directory.is_dir():
            raise ServingFailed(f"the App directory {app_dir} does not exist or is not a directory")
    if module.endswith(".py") or "/" in module or os.sep in module:
        source = Path(module)
        source = (directory / source if directory and not source.is_absolute() else source).resolve()
        if not source.is_file():
            raise ServingFailed(f"{app_ref!r}: there is no file {module}")
        if directory is None:
            return AppTarget(source.stem, attribute, source.parent)
        try:
            relative = source.with_suffix("").relative_to(directory)
        except ValueError:
            raise ServingFailed(f"{app_ref!r}: {module} is not inside the App directory {directory}") from None
        module = ".".join(relative.parts)
    if not module or not all(part.isidentifier() for part in module.split(".")):
        raise ServingFailed(f"{app_ref!r}: {module!r} is not a module name: give 'module:attribute', {_EXAMPLE}")
    return AppTarget(module, attribute, directory or Path.cwd().resolve())


def bundle_scopes(path: Path, name: str, *, explicit: bool = True) -> list[str] | None:
    """The ``user_api_scopes`` of the App ``name`` in the bundle at ``path`` (``resources.apps.<key>``
    whose ``name`` is ``name``, or the only App there), as Databricks Apps accept them; None when
    it has none (user authorization off). A bundle found by default that declares no App at all
    is not the App's: None too. ServingFailed for a bundle that cannot be read or makes no sense."""
    import yaml

    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ServingFailed(f"no bundle file {path}: give the databricks.yml that declares the App, or none") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ServingFailed(f"cannot read the bundle {path} ({type(exc).__name__}: {exc})") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ServingFailed(f"the bundle {path} is not valid YAML{line}: {getattr(exc, 'problem', None) or exc}") from None
    resources = document.get("resources") if isinstance(document, dict) else None
    apps = resources.get("apps") if isinstance(resources, dict) else None
    if not apps:
        if explicit:
            raise ServingFailed(f"the bundle {path} declares no App: it needs resources.apps.<key> with name: {name}")
        return None
    if not isinstance(apps, dict) or not all(isinstance(app, dict) for app in apps.values()):
        raise ServingFailed(f"the bundle {path}: resources.apps must map each App's key to its settings (name, user_api_scopes, ...)")
    named = [app for app in apps.values() if app.get("name") == name]
    if not named and len(apps) > 1:
        names = ", ".join(sorted(str(app.get("name")) for app in apps.values()))
        raise ServingFailed(f"the bundle {path} declares no App named {name!r} (it declares {names}): pass --name with one of them")
    app = named[0] if named else next(iter(apps.values()))
    scopes = app.get("user_api_scopes")
    if not scopes:
        return None
    try:
        return check_scopes(scopes, APPS)
    except (TypeError, UnknownScopeError) as exc:
        raise ServingFailed(f"the bundle {path}: the App's user_api_scopes are not what Databricks Apps accept: {exc}") from None


# -- the App process ----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    for stop_signal in STOP_SIGNALS:  # first: a signal while importing the app cleans up too
        signal.signal(stop_signal, exit_on_signal)
    parser = argparse.ArgumentParser(prog="python -m obo_auth.serving.app_server")
    parser.add_argument("app_ref", help="module:attribute of the ASGI app")
    parser.add_argument("--app-dir", default=".", help="The App's source directory: first on sys.path.")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--name", required=True, help="The App's name in the workspace.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--app-principal", default="obo-agent", help="The App's service principal.")
    parser.add_argument("--user-api-scopes", help="JSON list: what each user's forwarded token is downscoped to (default: no user authorization).")
    parser.add_argument("--ready-file", required=True, help="Where to write the URL once serving, or why it cannot start.")
    parser.add_argument("--minted-for", help="The tag every token this process mints is recorded with (serve_app() revokes them all should it be killed).")
    args = parser.parse_args(argv)
    admin_token = sys.stdin.readline().strip()
    if not admin_token:
        sys.exit("No admin credential on stdin: start a local App with `obo-auth serve-app` or obo_auth.serving.serve_app().")
    ready_file = Path(args.ready_file)
    scopes = json.loads(args.user_api_scopes) if args.user_api_scopes else None
    try:
        target = app_target(args.app_ref, args.app_dir)
        run(
            target, args.workspace, admin_token, name=args.name, port=args.port, app_principal=args.app_principal,
            user_api_scopes=scopes, ready_file=ready_file, minted_for=args.minted_for,
        )  # fmt: skip
    except ServingFailed as failed:
        report(ready_file, {"error": str(failed)})
        sys.exit(1)


def run(
    target: AppTarget,
    workspace_url: str,
    admin_token: str,
    *,
    name: str,
    port: int,
    app_principal: str,
    user_api_scopes: list[str] | None,
    ready_file: Path,
    minted_for: str | None = None,
) -> None:
    import uvicorn

    from obo_auth.serving.app_front_door import AppFrontDoor, FrontedApp
    from obo_auth.serving.revocation import LiveTokens

    sock = listen(port)
    link = WorkspaceLink(workspace_url, admin_token, minted_for)
    live = LiveTokens()
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        fronted = FrontedApp(name, user_api_scopes, app_principal)
        _service_principal(link, app_principal)
        # The App exists, not running yet, before its code runs: the workspace says now what it
        # refuses about it (its name, its scopes, its service principal).
        _register(link, fronted, None)
        client_secret = _become_app(link, target, name=name, url=url, app_principal=app_principal, scratch=ready_file.parent)
        app = load_app(target, secrets=[admin_token, client_secret])
        door = AppFrontDoor(app, fronted, link, standing_secrets=lambda: [admin_token], live=live)
        config = uvicorn.Config(
            door, log_level="warning", access_log=False, lifespan="auto", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            proxy_headers=False,  # the front door is the proxy: a client's X-Forwarded-For must not become x-real-ip
        )  # fmt: skip
        server = uvicorn.Server(config)
        announcer = _Announcer(server, link, fronted, url, ready_file)
        announcer.start()
        try:
            server.run(sockets=[sock])
        finally:
            announcer.stop()
            _register_stopped(link, fronted)
            live.revoke_all()  # requests still running past the graceful shutdown never reach their own end
        if announcer.failed is not None:
            raise announcer.failed
        if not server.started:
            raise ServingFailed(f"the App {target.app_ref} did not start: its lifespan startup failed (its output says why)")
    except WorkspaceRefused as refused:  # only start-up calls the workspace from here: requests' calls are the front door's
        raise _cannot_start_app(refused, workspace_url) from None
    finally:
        sock.close()
        link.close()


def _become_app(link: WorkspaceLink, target: AppTarget, *, name: str, url: str, app_principal: str, scratch: Path) -> str:
    """This process's environment and working directory as a Databricks App's; its client secret."""
    import httpx

    client_id, client_secret = link.client_credentials(app_principal)
    try:
        workspace_id = str(httpx.get(f"{link.url}/.well-known/databricks-config", timeout=30, trust_env=False).json()["workspace_id"])
    except (httpx.HTTPError, ValueError, KeyError):
        raise WorkspaceRefused(503, "TEMPORARILY_UNAVAILABLE", f"The local workspace at {link.url} did not answer.") from None
    for variable in [v for v in os.environ if v.startswith(LOGIN_VARIABLE_PREFIXES)]:
        del os.environ[variable]  # none come from the parent (environment.py); nothing else may act as the App
    os.environ.update(
        {
            "DATABRICKS_HOST": link.url,
            "DATABRICKS_WORKSPACE_ID": workspace_id,
            "DATABRICKS_CLIENT_ID": client_id,
            "DATABRICKS_CLIENT_SECRET": client_secret,
            "DATABRICKS_APP_NAME": name,
            "DATABRICKS_APP_PORT": url.rsplit(":", 1)[1],
            "DATABRICKS_APP_URL": url,
            # No ~/.databrickscfg: its [DEFAULT] profile would mix the developer's login into the App's.
            "DATABRICKS_CONFIG_FILE": str(scratch / "no-databrickscfg"),
        }
    )
    os.chdir(target.directory)  # Databricks Apps run from the App's source directory
    return client_secret


def _service_principal(link: WorkspaceLink, name: str) -> dict[str, Any]:
    try:
        principal = link.principal(name)
    except WorkspaceRefused as refused:
        if refused.status == 404:
            raise ServingFailed(
                f"the workspace at {link.url} has no service principal {name!r} for the App to run as: "
                "pass --app-principal with one its seed declares (service_principals:)"
            ) from None
        raise
    if principal.get("kind") != "service_principal":
        raise ServingFailed(f"{name!r} is a {principal.get('kind', 'user')}, not a service principal: an App runs as a service principal (--app-principal)")
    return principal


def load_app(target: AppTarget, *, secrets: list[str]) -> Any:
    """The ASGI app ``target`` names, imported with its directory first on sys.path; ServingFailed
    (one line; the traceback of a failing import on stderr, tokens scrubbed) if there is none."""
    directory = str(target.directory)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        module = importlib.import_module(target.module)
    except ModuleNotFoundError as exc:
        missing = exc.name or target.module
        if missing == target.module or target.module.startswith(f"{missing}."):
            raise ServingFailed(f"cannot import the App's module {target.module!r}: no such module in {directory} (or installed)") from None
        _print_scrubbed(secrets)
        raise ServingFailed(f"importing the App's module {target.module!r} failed: it imports {missing!r}, which is not installed") from None
    except Exception as exc:  # the author's module raised while importing: their traceback helps them
        _print_scrubbed(secrets)
        raise ServingFailed(scrub(f"importing the App's module {target.module!r} failed: {type(exc).__name__}: {exc}", secrets)) from None
    found: Any = module
    for part in target.attribute.split("."):
        if not hasattr(found, part):
            raise ServingFailed(f"the App's module {target.module!r} has no attribute {target.attribute!r}: give 'module:attribute' of its ASGI app")
        found = getattr(found, part)
    if not _is_asgi(found):
        hint = " (mlflow's AgentServer: serve its .app)" if hasattr(found, "app") else ""
        raise ServingFailed(
            f"{target.app_ref} is {type(found).__name__}, not an ASGI app (a callable taking scope, receive, send){hint}; "
            "a WSGI app (Flask) needs an ASGI adapter such as asgiref.wsgi.WsgiToAsgi"
        )
    return found


def _is_asgi(candidate: Any) -> bool:
    """An ASGI 3 app: a callable that takes (scope, receive, send), not a class (ASGI 2) nor WSGI (environ, start_response)."""
    if not callable(candidate) or inspect.isclass(candidate):
        return False
    try:
        parameters = inspect.signature(candidate).parameters.values()
    except (TypeError, ValueError):  # a builtin or extension callable: cannot tell, let uvicorn try
        return True
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return True
    positional = [p for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    return len(positional) == 3


def _print_scrubbed(secrets: list[str]) -> None:
    print(scrub(traceback.format_exc(), secrets), file=sys.stderr, flush=True)


class _Announcer(threading.Thread):
    """Once uvicorn listens (and the app's lifespan started), registers the App's URL in the
    workspace, then writes the ready file; a refusal stops the server and is ``failed``."""

    def __init__(self, server: Any, link: WorkspaceLink, fronted: FrontedApp, url: str, ready_file: Path):
        super().__init__(daemon=True, name="obo-auth-app-announcer")
        self._server, self._link, self._fronted, self._url, self._ready_file = server, link, fronted, url, ready_file
        self._halt = threading.Event()
        self.failed: ServingFailed | None = None

    def run(self) -> None:
        while not self._server.started:
            if self._halt.wait(0.02):
                return
        try:
            _register(self._link, self._fronted, self._url)
        except WorkspaceRefused as refused:
            self.failed = _cannot_start_app(refused, self._link.url)
            self._server.should_exit = True
            return
        fronted = self._fronted
        report(self._ready_file, {"url": self._url, "name": fronted.name, "user_api_scopes": fronted.user_api_scopes, "service_principal": fronted.service_principal})

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join()


def _register(link: WorkspaceLink, fronted: FrontedApp, url: str | None) -> None:
    link.register_app(fronted.name, url, list(fronted.user_api_scopes or []), fronted.service_principal)


def _register_stopped(link: WorkspaceLink, fronted: FrontedApp) -> None:
    """Before the port is freed: the workspace must not send anyone to whatever listens there next."""
    try:
        _register(link, fronted, None)
    except WorkspaceRefused:
        pass  # the workspace is gone or restarted: it sends nobody here any more


def _cannot_start_app(refused: WorkspaceRefused, workspace_url: str) -> ServingFailed:
    if refused.status in (401, 403, 503):  # the workspace gone, or refusing the admin credential: as for a model
        return cannot_start(refused, workspace_url)
    return ServingFailed(f"the local workspace at {workspace_url} refused to set up the App: {refused.message}")


if __name__ == "__main__":
    main()
