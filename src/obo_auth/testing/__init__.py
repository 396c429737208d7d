"""Testing agents as several users against the local workspace.

- plugin.py: the pytest plugin (fixtures ``obo_workspace`` and ``obo``, marker ``obo_seed``);
- harness.py: ``Obo``, what the ``obo`` fixture gives a test;
- isolation.py: ``check_isolation``, the same questions as several users at once;
  findings.py / answers.py: what it finds in the calls and in the answers; sending.py: which
  of its requests sent each HTTP call;
- inprocess.py / served.py: asking an agent object, or a served model, as a user;
- session.py / store.py: what a test session shares (workspaces, served models, MLflow store);
- audit.py: the audit as a queryable object; asking.py: asking a served agent over HTTP.

Nothing is imported here: the plugin is loaded by every pytest run where obo_auth is installed.
"""
