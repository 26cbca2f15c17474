"""Shared fixtures.  Keras reads KERAS_BACKEND once per process, so `make test` runs
pytest once per backend: the whole suite under the torch backend, then only the
tests marked ``backend`` under jax and under tensorflow."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

# A shell that starts a job in the background without job control (`nohup make test &` in a
# script) starts it with SIGINT ignored, and every process it starts inherits that: the Ctrl-C
# tests would then send a signal nobody receives.  A handled signal is reset to its default in
# the commands the tests start (execve), so this restores Ctrl-C for them too.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Train in-process as ``run.main`` does (``set_cpu_threads``: one thread on CPU unless
    OMP_NUM_THREADS says otherwise; the results are bitwise the same with two)."""
    import torch
    from torch_version.train import set_cpu_threads
    set_cpu_threads(torch.device("cpu"))


@pytest.fixture(scope="session")
def keras_backend() -> str:
    return os.environ["KERAS_BACKEND"]


@pytest.fixture(scope="session")
def fashion():
    """The real dataset, from the local IDX files, ((x, y), (x, y)) uint8."""
    from common.data import load_fashion_mnist
    return load_fashion_mnist("files")


@pytest.fixture(scope="session")
def small_data(fashion):
    """A 2048-example slice, split and batched as a real run would be."""
    from common.config import RunConfig
    from common.data import prepare_data
    return prepare_data(RunConfig(subset=2048, batch_size=256, seed=0), arrays=fashion)


@pytest.fixture(scope="session")
def keras_home(tmp_path_factory) -> Path:
    """A KERAS_HOME whose ``datasets/fashion-mnist/`` holds the four local IDX files (as links),
    as ``make data`` leaves ~/.keras: keras.datasets and the notebooks read it, offline."""
    from common.data import FILES, find_local_dir
    source = find_local_dir()
    assert source is not None, "the tests need Fashion-MNIST's four files locally: run `make data`"
    home = tmp_path_factory.mktemp("keras_home")
    folder = home / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    for name in (name for pair in FILES.values() for name in pair):
        (folder / name).symlink_to((source / name).resolve())
    return home


@pytest.fixture
def rng():
    return np.random.default_rng(0)
