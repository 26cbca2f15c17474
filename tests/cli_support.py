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


def run(module: str, args, backend: str | None = None, env: dict | None = None, timeout: float = 1200):
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


def wait_for_checkpoint(proc: subprocess.Popen, out: Path, timeout: float = 900) -> dict:
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


# --- Faults a test cannot cause by hand here -------------------------------------------------------------

# Runs ``python -m MODULE ARGS`` with every open() of a path ending in DENIED raising
# PermissionError, as an unreadable file would: the tests run as root, who may read anything.
DENY = """\
import builtins, os, runpy, sys
denied, module = sys.argv[1], sys.argv[2]
real_open = builtins.open
def guarded_open(file, *args, **kwargs):
    if isinstance(file, (str, os.PathLike)) and os.fspath(file).endswith(denied):
        raise PermissionError(13, "Permission denied", os.fspath(file))
    return real_open(file, *args, **kwargs)
builtins.open = guarded_open
sys.argv = [module, *sys.argv[3:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def run_denied(module: str, args, denied: str, backend: str | None = None) -> subprocess.CompletedProcess:
    """The command line, with every file whose path ends in ``denied`` unreadable."""
    cmd = [sys.executable, "-c", DENY, denied, *train_command(module, args, backend)[2:]]
    return subprocess.run(cmd, cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=1200)


# Linux keeps a process's peak RSS (ru_maxrss) across fork and execve, so a command started from
# this test process (torch, Keras and TensorFlow loaded: 1.5 GB and more) would report at least the
# size of this process.  A small Python process starts the command instead and reports its peak.
MEASURE = """import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss * 1024))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(cmd: list[str], cwd=ROOT, env: dict | None = None, timeout: float = 1200):
    """Run ``cmd``; return ``(CompletedProcess, peak RSS in bytes)`` of that one process."""
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        peak = Path(folder) / "peak"
        result = subprocess.run([sys.executable, "-c", MEASURE, str(peak), *map(str, cmd)], cwd=cwd,
                                env=cli_env(env), capture_output=True, text=True, timeout=timeout)
        result.args = cmd
        return result, int(peak.read_text())


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as ended)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


# --- Crafted files that would inflate to gigabytes --------------------------------------------------------

def gzip_bomb(path: Path, header: bytes, gigabytes: float) -> Path:
    """A gzip file of ``header`` then zeros, ``gigabytes`` when inflated, a few MB on disk.

    gzip allows several members in one file, so one compressed block of zeros is repeated."""
    import gzip
    block = 64 << 20
    path.write_bytes(gzip.compress(header + bytes(block), 1)
                     + gzip.compress(bytes(block), 1) * (int(gigabytes * 2**30) // block - 1))
    return path


def zip_bomb(path: Path, name: str, gigabytes: float, others: dict[str, bytes] | None = None) -> Path:
    """A zip file whose entry ``name`` inflates to ``gigabytes`` of zeros (declared honestly, CRC
    included), plus the small entries ``others``; written by hand, since a deflate stream made of
    one repeated block (each ended by a full flush) costs seconds where compressing would cost minutes."""
    import struct
    import zlib
    block = bytes(64 << 20)
    count = int(gigabytes * 2**30) // len(block)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    repeated = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    data = repeated * count + deflate.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    entries = [(name, 8, crc, data, len(block) * count)]
    entries += [(n, 0, zlib.crc32(b), b, len(b)) for n, b in (others or {}).items()]
    local, central = b"", b""
    for entry_name, method, entry_crc, payload, size in entries:
        encoded = entry_name.encode()
        fields = struct.pack("<HHHHHIIIHH", 20, 0, method, 0, 0x21, entry_crc, len(payload), size, len(encoded), 0)
        central += (struct.pack("<IH", 0x02014B50, 20) + fields
                    + struct.pack("<HHHII", 0, 0, 0, 0, len(local)) + encoded)
        local += struct.pack("<I", 0x04034B50) + fields + encoded + payload
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(local), 0)
    path.write_bytes(local + central + end)
    return path
