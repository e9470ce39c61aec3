"""Stopping a run from outside: SIGTERM (`kill`, a scheduler's stop), SIGHUP (the terminal
closed) and SIGINT (Ctrl-C).

Each ends the run as Ctrl-C does, with an exception where the run was: every write in
progress is abandoned by its own cleanup (a temp file, never half a file under its real
name), the lock is released, and the CLI says where the run stopped and how to go on.
The run directory is then what a SIGKILL at that moment would leave, which resumes exactly.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class Stopped(KeyboardInterrupt):
    """The run was stopped by ``signum``: a KeyboardInterrupt, so that no ``except
    Exception`` on the way swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum: int, frame) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within: SIGTERM, SIGHUP and SIGINT raise ``Stopped``. A signal already ignored
    (``nohup``, a background job) stays ignored: whoever started us chose that."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may install handlers; the caller stops us otherwise
        return
    previous = {}
    for sig in SIGNALS:
        handler = signal.getsignal(sig)
        if handler is not signal.SIG_IGN:
            previous[sig] = handler
            signal.signal(sig, _raise)
    hook = sys.unraisablehook
    sys.unraisablehook = functools.partial(_deliver_again, hook)
    try:
        yield
    finally:
        sys.unraisablehook = hook
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set in C


def _deliver_again(hook, unraisable) -> None:
    """A signal handled while a finalizer (``__del__``) runs raises there, where Python
    only prints the exception and goes on, and the run would not stop: deliver the signal
    again a moment later, from a thread, so that its handler runs outside the finalizer
    (delivered from here, it would run here, in this hook, and be swallowed again)."""
    if isinstance(unraisable.exc_value, Stopped):
        again = threading.Timer(0.01, os.kill, (os.getpid(), unraisable.exc_value.signum))
        again.daemon = True
        again.start()
    else:
        hook(unraisable)


def signal_number(err: BaseException) -> int:
    """The signal behind a KeyboardInterrupt (Ctrl-C's SIGINT when it is not ours)."""
    return err.signum if isinstance(err, Stopped) else signal.SIGINT
