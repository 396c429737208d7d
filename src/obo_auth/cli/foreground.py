"""How a foreground command (``workspace``, ``serve``) waits, and stops on Ctrl-C or SIGTERM alike."""

from __future__ import annotations

import signal
import threading


def stop_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt in the main thread, as Ctrl-C does, so one clean-up path runs.

    Installed before anything starts. (A handler that sets an Event instead can deadlock: it runs
    in the main thread, which may be holding that Event's lock inside ``wait()`` at that moment.)
    """
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def wait_until_stopped() -> None:
    """Blocks until Ctrl-C or SIGTERM (KeyboardInterrupt)."""
    threading.Event().wait()
