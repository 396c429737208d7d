"""Testing agents as several users against the local workspace: the audit as a queryable
object (audit.py), asking a served agent as a user (asking.py), and the pytest plugin."""
