"""The one error local serving reports when it cannot start, in the parent and the serving process alike."""


class ServingFailed(RuntimeError):
    """Serving could not start: one line saying what was wrong and what to do.

    Raised in the serving process for what it can tell (the model, the workspace, the port),
    handed to the parent through the ready file, and raised there by
    :func:`obo_auth.serving.serve`; ``obo-auth serve`` prints it as ``Error: ...``.
    """
