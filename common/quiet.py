"""Keep stderr for the project's own messages.

TensorFlow's C++ logging writes lines to file descriptor 2 when it is imported
(``oneDNN custom operations are on ...``, ``All log messages before
absl::InitializeLog() ...``) and TF_CPP_MIN_LOG_LEVEL does not silence them.
Keras imports TensorFlow on every backend where it is installed (it seeds it, and
checks types with it when saving), so without this a one-line error message would
arrive after four lines of noise.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import sys


@contextlib.contextmanager
def stderr_silenced():
    """Send file descriptor 2 to /dev/null: C++ libraries write there directly, past ``sys.stderr``."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow, if installed and not yet imported, with stderr silenced meanwhile."""
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # later messages, e.g. at the first op
    with stderr_silenced():
        import tensorflow  # noqa: F401
