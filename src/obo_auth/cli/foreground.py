"""How a foreground command (``workspace``, ``serve``) waits, and stops on Ctrl-C or SIGTERM alike."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

# How often a foreground command checks that the process it serves through is still running.
_POLL_SECONDS = 0.5


def stop_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt in the main thread, as Ctrl-C does, so one clean-up path runs.

    Installed before anything starts. (A handler that sets an Event instead can deadlock: it runs
    in the main thread, which may be holding that Event's lock inside ``wait()`` at that moment.)
    """
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def wait_until_stopped(exit_code: Callable[[], int | None] | None = None) -> int:
    """Blocks until Ctrl-C or SIGTERM (KeyboardInterrupt); given ``exit_code`` (a served process's,
    None while it runs), also until that process exits, returning its exit code: a command must
    not go on announcing a server whose process died (and whose tokens it should revoke)."""
    pause = threading.Event()
    while True:
        code = None if exit_code is None else exit_code()
        if code is not None:
            return code
        pause.wait(None if exit_code is None else _POLL_SECONDS)


def process_ended(what: str, code: int, command: str) -> str:
    """The one ``Error:`` line of ``command`` when the ``what`` process it serves through exits
    under it (after serving's clean-up: a killed process's tokens are revoked by then)."""
    if code < 0:
        try:
            how = f"was killed ({signal.Signals(-code).name})"
        except ValueError:
            how = f"was killed (signal {-code})"
    else:
        how = f"exited with code {code}"
    return f"{what} {how}, so {command} stopped; its output above may say why. Run {command} again to serve it."
