"""Helpers for the hardening tests: run the command lines in subprocesses, read what runs leave behind.

Keras reads KERAS_BACKEND once per process, so every Keras subprocess gets the
backend of the pytest process (the ``keras_backend`` fixture) through ``--backend``.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tests.conftest import ROOT

PROGS = {"torch_version": "python -m torch_version", "keras_version": "python -m keras_version",
         "parity": "python -m parity"}
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


def cli_env(extra: dict | None = None) -> dict:
    """The environment of a CLI subprocess: ours, minus settings that would change what it does."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("KERAS_BACKEND", "FASHION_MNIST_DIR", "STACKED_RNN_DEBUG", "TF_CPP_MIN_LOG_LEVEL")}
    env.update(extra or {})
    return env


def train_command(module: str, args, backend: str | None = None) -> list[str]:
    """``python -m <module> train [--backend B] ARGS`` (parity: ``python -m parity ARGS``)."""
    if module == "parity":
        return [sys.executable, "-m", "parity", *map(str, args)]
    cmd = [sys.executable, "-m", module, "train", *map(str, args)]
    return cmd + (["--backend", backend] if backend else [])


def run(module: str, args, backend: str | None = None, env: dict | None = None, timeout: float = 600):
    return subprocess.run(train_command(module, args, backend), cwd=ROOT, env=cli_env(env),
                          capture_output=True, text=True, timeout=timeout)


def run_many(jobs: dict, workers: int = 3) -> dict:
    """Run ``{key: (module, args, backend, env)}`` (or ``{key: callable}``) concurrently; ``{key: result}``."""
    with ThreadPoolExecutor(workers) as pool:
        futures = {key: pool.submit(job) if callable(job) else pool.submit(run, *job) for key, job in jobs.items()}
        return {key: f.result() for key, f in futures.items()}


def one_error_line(result, module: str, pattern: str, code: int = 2) -> str:
    """Assert: exit ``code``, no traceback, exactly one line on stderr, from ``module``'s
    prog, matching ``pattern``.  Return the line."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr[-3000:]}"
    assert result.returncode == code, (result.returncode, result.stderr)
    prog = PROGS[module]
    assert re.match(rf"{re.escape(prog)}( train)?: ", lines[0]), lines[0]
    assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
    return lines[0]


def start(module: str, args, backend: str | None = None, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(train_command(module, args, backend), cwd=ROOT, env=cli_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(proc: subprocess.Popen, out: Path, timeout: float = 300) -> dict:
    """Poll ``out/checkpoints/state.json`` until it exists; return it (the process is still running)."""
    state_file = Path(out) / "checkpoints" / "state.json"
    deadline = time.monotonic() + timeout
    while not state_file.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before its first checkpoint:\n{proc.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("no checkpoint within the time limit")
        time.sleep(0.005)
    return json.loads(state_file.read_text())


def interrupt(proc: subprocess.Popen, sig=signal.SIGKILL, timeout: float = 120):
    """Send ``sig``; return ``(returncode, stdout, stderr)``."""
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stdout, stderr


def ctrl_c(module: str, args, out: Path, backend: str | None = None) -> subprocess.CompletedProcess:
    """Start a run, press Ctrl-C (SIGINT) once its first checkpoint exists; the finished process."""
    proc = start(module, [*args, "--out", out], backend)
    wait_for_checkpoint(proc, out)
    code, stdout, stderr = interrupt(proc, signal.SIGINT)
    return subprocess.CompletedProcess(proc.args, code, stdout, stderr)


def read_state(out: Path) -> dict:
    return json.loads((Path(out) / "checkpoints" / "state.json").read_text())


def read_metrics(out: Path) -> dict:
    return json.loads((Path(out) / "metrics.json").read_text())


def same_result(a: dict, b: dict) -> None:
    """Assert two metrics.json hold the same numbers (all but the timings), bit for bit."""
    for key in HISTORY_KEYS:
        assert a["history"][key] == b["history"][key], key
    assert (a["test_loss"], a["test_accuracy"]) == (b["test_loss"], b["test_accuracy"])


def torch_weights(path: Path) -> dict[str, np.ndarray]:
    import torch
    return {k: v.numpy() for k, v in torch.load(path, weights_only=True)["model"].items()}


def keras_weights(path: Path) -> dict[str, np.ndarray]:
    import keras
    model = keras.models.load_model(path, safe_mode=True)
    return {v.path: keras.ops.convert_to_numpy(v) for v in model.weights}


def keras_optimizer_state(path: Path) -> dict[str, np.ndarray]:
    import keras
    model = keras.models.load_model(path, safe_mode=True)
    # paths start with the optimizer's name, which Keras numbers per process (adam, adam_1, ...)
    return {v.path.split("/", 1)[1]: keras.ops.convert_to_numpy(v) for v in model.optimizer.variables}


def same_arrays(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].shape == b[key].shape and np.array_equal(a[key], b[key]), key
