"""The one error ``obo_auth.check`` raises."""

from __future__ import annotations

from obo_auth.errors import OboAuthError


class CheckError(OboAuthError, ValueError):
    """Input the check cannot read: a path that does not exist, a file that is not valid Python
    or not UTF-8. Its message is one line naming the file (and line) and what to do."""
