"""The environment the model process starts with: what a serving container would also have.

Built from the developer's environment by keeping only what the process genuinely needs, so
their Databricks login (``DATABRICKS_*``), cloud credentials (``ARM_*``, ``GOOGLE_*``, AWS keys)
and any other tool's secrets never reach the agent, not even in ``/proc/self/environ``. The
workspace's admin credential is not in it at all: the model process reads it from its stdin.
"""

from __future__ import annotations

from collections.abc import Mapping

_KEPT = {
    "PATH",  # the programs the agent or its libraries run
    "HOME",  # where libraries keep caches and settings (mlflow, pip, model hubs)
    "LANG", "LANGUAGE",  # how text is decoded and encoded
    "TZ",  # the times in logs and traces
    "TMPDIR", "TEMP", "TMP",  # where temporary files go (the agent's credentials directory too)
    "VIRTUAL_ENV",  # tools that ask which environment they run in (pip, mlflow's environment checks)
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",  # a company CA bundle: HTTPS calls still verify
}  # fmt: skip
_KEPT_PREFIXES = (
    "LC_",  # the locale: how text is decoded, sorted and formatted
    "PYTHON",  # the interpreter's settings, PYTHONPATH among them (where the agent's own modules are)
    "MLFLOW_",  # where the model is loaded from and its traces go (MLFLOW_TRACKING_URI, ...)
)
# A kept variable is still dropped when its name says it holds a credential
# (MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_PASSWORD): the agent has its own identity.
_CREDENTIAL_WORDS = ("TOKEN", "SECRET", "PASSWORD", "CREDENTIAL", "AUTH", "KEY")


def model_environment(developer: Mapping[str, str]) -> dict[str, str]:
    """What of ``developer``'s environment the model process starts with."""
    return {name: value for name, value in developer.items() if _kept(name)}


def _kept(name: str) -> bool:
    if any(word in name.upper() for word in _CREDENTIAL_WORDS):
        return False
    return name in _KEPT or name.startswith(_KEPT_PREFIXES)
