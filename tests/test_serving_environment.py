"""The environment local serving starts the model process with (``serving/environment.py``).

Sibling: test_local_serving.py reads a served model's own ``/proc/self/environ``; test_cli.py
does the same through ``obo-auth serve``.
"""

from __future__ import annotations

from obo_auth.serving.environment import model_environment

KEPT = {
    "PATH": "/usr/bin",
    "HOME": "/home/developer",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TMPDIR": "/tmp",
    "PYTHONPATH": "/home/developer/agent",
    "VIRTUAL_ENV": "/home/developer/.venv",
    "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db",
    "MLFLOW_RECORD_ENV_VARS_IN_MODEL_LOGGING": "false",
    "SSL_CERT_FILE": "/etc/ssl/company.pem",
}
DROPPED = {
    "DATABRICKS_HOST": "https://developer.cloud.databricks.com",
    "DATABRICKS_TOKEN": "dapi-of-the-developer",
    "DATABRICKS_CLIENT_SECRET": "dose-of-the-developer",
    "DATABRICKS_CONFIG_PROFILE": "DEFAULT",
    "ARM_CLIENT_SECRET": "azure",
    "GOOGLE_APPLICATION_CREDENTIALS": "/home/developer/gcp.json",
    "AWS_SECRET_ACCESS_KEY": "aws",
    "OPENAI_API_KEY": "sk-of-the-developer",
    "MLFLOW_TRACKING_TOKEN": "mlflow-token",
    "MLFLOW_TRACKING_PASSWORD": "mlflow-password",
    "OBO_AUTH_ADMIN_TOKEN": "the old way of handing over the admin credential",
    "HTTPS_PROXY": "http://user:password@proxy:3128",
    "SOMETHING_ELSE": "any other tool's setting",
}


def test_only_what_the_model_process_needs_is_kept():
    assert model_environment({**KEPT, **DROPPED}) == KEPT

