"""Ctrl-C during training stops the run at the end of the current step, and is never lost.

Python's own handler raises ``KeyboardInterrupt`` wherever the main thread happens to
be.  Under JAX that is often inside a garbage-collection callback, where Python only
prints ``Exception ignored in: <function _xla_gc_callback ...>`` with a traceback, or
inside library code that swallows it: training then goes on as if nothing happened
(measured: three Ctrl-C out of five lost on the JAX backend).

While a training loop runs inside :func:`deferred`, the first Ctrl-C only sets a flag
that the loop reads after every step (:func:`check`), so ``KeyboardInterrupt`` is
raised in the loop's own code, between steps, where nothing swallows it; a second
Ctrl-C raises at once, for a step that never ends.
"""
from __future__ import annotations

import contextlib
import functools
import signal
import threading

_pending = False


def _handler(signum, frame):
    global _pending
    if _pending:
        raise KeyboardInterrupt
    _pending = True


def check() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed since :func:`deferred` began."""
    if _pending:
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred():
    """Defer Ctrl-C to the next :func:`check` while the block runs.

    Only in the main thread and only where SIGINT has Python's default handler (a
    program that ignores SIGINT, or handles it itself, keeps its own way).  A Ctrl-C
    after the last check still raises, when the block ends.
    """
    global _pending
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    _pending = False
    previous = signal.signal(signal.SIGINT, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        pending, _pending = _pending, False
    if pending:
        raise KeyboardInterrupt


def deferring(fn):
    """Decorator: run ``fn`` inside :func:`deferred` (``fn`` calls :func:`check` after each step)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with deferred():
            return fn(*args, **kwargs)
    return wrapper
