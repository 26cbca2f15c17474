"""The TensorFlow Datasets source: built offline from the local IDX files, same examples, TFDS's order.

The dataset is prepared from scratch into a pytest temporary folder once per
session, with the network blocked, so a fresh CI machine exercises the whole
build.  Preparation takes about 15 s on 2 CPU cores, each full read about 5 s.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from common import tfds_source
from common.data import CLASS_NAMES, COUNTS, FILES, HOW_TO_GET, find_local_dir, load_fashion_mnist
from common.errors import DataError
from tests import cli_support as cli

ROOT = Path(__file__).resolve().parents[1]


PREPARE = "import sys; from common.tfds_source import prepare; prepare(sys.argv[1])"


def kill_a_preparation(data_dir: Path) -> tuple[list[Path], int]:
    """Start preparing into ``data_dir`` in another process and SIGKILL it once TFDS writes its first
    tfrecord; return what it left behind (extracted IDX copies, TFDS's unfinished folder) and its size."""
    proc = subprocess.Popen([sys.executable, "-c", PREPARE, str(data_dir)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list((data_dir / tfds_source.NAME).glob("incomplete.*/*tfrecord*")):
        assert proc.poll() is None, "the preparation ended before it could be killed"
        assert time.monotonic() < deadline, "TFDS wrote no tfrecord"
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    left = sorted([*data_dir.glob(f"{tfds_source.SCRATCH}*"), *(data_dir / tfds_source.NAME).glob("incomplete.*")])
    return left, sum(f.stat().st_size for p in left for f in p.rglob("*") if f.is_file())


@pytest.fixture(scope="session")
def tfds_prepared(tmp_path_factory):
    """``(data_dir, arrays, seconds, connection attempts, (leftovers, their bytes))`` of a first prepare and
    load, made in the folder where another preparation was killed half-way (``leftovers``: what it left)."""
    data_dir = tmp_path_factory.mktemp("tfds")
    leftovers, left_bytes = kill_a_preparation(data_dir)
    attempts = []
    real_connect = socket.socket.connect

    def guarded_connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise OSError(f"network blocked by the test: {address}")
        return real_connect(sock, address)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", guarded_connect)
        # TensorFlow's C++ file systems bypass Python sockets; curl honours these.
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            mp.setenv(var, "http://127.0.0.1:9")
        start = time.perf_counter()
        arrays = tfds_source.load_from_tfds(data_dir=data_dir)
        seconds = time.perf_counter() - start
    print(f"\nfirst TFDS load (import TF, prepare, read): {seconds:.1f} s")
    return data_dir, arrays, seconds, attempts, (leftovers, left_bytes)


def _rows(x, y):
    """Each example as one opaque row of label + image bytes, for exact multiset comparison."""
    flat = np.concatenate([np.asarray(y, np.uint8)[:, None], np.asarray(x, np.uint8).reshape(len(x), -1)], axis=1)
    return np.ascontiguousarray(flat).view(np.dtype((np.void, flat.shape[1]))).ravel()


def test_importing_does_not_import_tensorflow():
    code = "import sys, common.data, common.tfds_source; sys.exit('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_default_data_dir_is_tfds_data_dir_or_a_user_cache(monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", "/some/where")
    assert tfds_source.default_data_dir() == Path("/some/where")
    monkeypatch.delenv("TFDS_DATA_DIR")
    assert tfds_source.default_data_dir() == Path.home() / ".cache" / "stacked-rnn" / "tensorflow_datasets"


def test_prepares_offline_into_data_dir_only(tfds_prepared):
    data_dir, _, _, attempts, (leftovers, left_bytes) = tfds_prepared
    assert attempts == []
    variant = data_dir / tfds_source.NAME / "3.0.1"
    names = sorted(p.name for p in variant.iterdir())
    assert names == sorted(["dataset_info.json", "features.json", "label.labels.txt",
                            "fashion_mnist_manual-train.tfrecord-00000-of-00001",
                            "fashion_mnist_manual-test.tfrecord-00000-of-00001"])
    # The killed preparation had left its extracted IDX copies and TFDS's unfinished folder (~55 MB);
    # the next one removed them, and its own throwaway download folder is gone too.
    print(f"\nleft by the killed preparation: {left_bytes / 1e6:.0f} MB in {[p.name for p in leftovers]}")
    assert len(leftovers) == 2 and left_bytes > 50e6
    assert not any(p.exists() for p in leftovers)
    assert sorted(p.name for p in data_dir.iterdir()) == [tfds_source.LOCK, tfds_source.NAME]
    assert [p.name for p in (data_dir / tfds_source.NAME).iterdir()] == ["3.0.1"]


def test_shapes_dtypes_and_counts(tfds_prepared):
    _, ((x_train, y_train), (x_test, y_test)), _, _, _ = tfds_prepared
    assert x_train.shape == (COUNTS["train"], 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (COUNTS["train"],) and y_train.dtype == np.uint8
    assert x_test.shape == (COUNTS["test"], 28, 28) and x_test.dtype == np.uint8
    assert y_test.shape == (COUNTS["test"],) and y_test.dtype == np.uint8
    for y, n in ((y_train, COUNTS["train"]), (y_test, COUNTS["test"])):
        assert np.array_equal(np.bincount(y, minlength=10), np.full(10, n // 10))  # Fashion-MNIST is balanced


@pytest.mark.parametrize("split", [0, 1], ids=["train", "test"])
def test_same_examples_as_the_idx_files_in_tfds_order(tfds_prepared, fashion, split):
    _, arrays, _, _, _ = tfds_prepared
    x_tfds, y_tfds = arrays[split]
    x_file, y_file = fashion[split]
    rows_tfds, rows_file = _rows(x_tfds, y_tfds), _rows(x_file, y_file)
    assert np.array_equal(np.sort(rows_tfds), np.sort(rows_file))
    # TFDS shuffles when it writes: hardly any example keeps its file position.
    assert np.mean(rows_tfds == rows_file) < 0.01


def test_is_tfds_fashion_mnist_format(tfds_prepared):
    data_dir, _, _, _, _ = tfds_prepared
    builder = tfds_source.builder_class()(data_dir=os.fspath(data_dir))
    assert builder.is_prepared()
    assert builder.info.full_name == "fashion_mnist_manual/3.0.1"
    assert builder.info.features["image"].shape == (28, 28, 1)
    assert builder.info.features["image"].np_dtype == np.uint8
    assert tuple(builder.info.features["label"].names) == CLASS_NAMES
    assert builder.info.splits["train"].num_examples == COUNTS["train"]
    assert builder.info.splits["test"].num_examples == COUNTS["test"]
    assert builder.info.supervised_keys == ("image", "label")


def test_second_load_reuses_the_prepared_data(tfds_prepared, monkeypatch):
    data_dir, first, _, _, _ = tfds_prepared
    variant = data_dir / tfds_source.NAME / "3.0.1"
    stamps = {p.name: p.stat().st_mtime_ns for p in variant.iterdir()}
    # Through common.data's "tfds" source, with no local files to prepare from:
    # any attempt to prepare again would raise DataError.
    monkeypatch.setenv("TFDS_DATA_DIR", os.fspath(data_dir))
    monkeypatch.setattr(tfds_source, "find_local_dir", lambda: None)
    second = load_fashion_mnist("tfds")
    assert {p.name: p.stat().st_mtime_ns for p in variant.iterdir()} == stamps
    for (x1, y1), (x2, y2) in zip(first, second):
        assert np.array_equal(x1, x2) and np.array_equal(y1, y2)  # TFDS's order is deterministic


def test_missing_files_raise_a_data_error_saying_how_to_fix(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as info:
        tfds_source.load_from_tfds(data_dir=tmp_path / "data", manual_dir=empty)
    message = str(info.value)
    assert "\n" not in message
    assert str(empty) in message and all(n in message for pair in FILES.values() for n in pair)
    assert HOW_TO_GET in message
    assert not (tmp_path / "data" / tfds_source.NAME).exists()

    monkeypatch.setattr(tfds_source, "find_local_dir", lambda: None)
    with pytest.raises(DataError, match="none were found in .*apt-get install dataset-fashion-mnist"):
        tfds_source.load_from_tfds(data_dir=tmp_path / "data")


def test_missing_tensorflow_datasets_raises_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_source, "_builder_cls", None)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # makes `import tensorflow_datasets` fail
    with pytest.raises(DataError, match=r"needs tensorflow and tensorflow-datasets.*pip install tensorflow-cpu"):
        tfds_source.load_from_tfds(data_dir=tmp_path)


def test_truncated_file_raises_a_data_error_before_preparing(tmp_path):
    source = find_local_dir()
    folder = tmp_path / "idx"
    folder.mkdir()
    for pair in FILES.values():
        for name in pair:
            shutil.copyfile(source / name, folder / name)
    data = (folder / FILES["test"][0]).read_bytes()
    (folder / FILES["test"][0]).write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        tfds_source.load_from_tfds(data_dir=tmp_path / "data", manual_dir=folder)
    assert not (tmp_path / "data" / tfds_source.NAME).exists()


def test_incomplete_dataset_folder_raises_a_data_error(tmp_path):
    (tmp_path / tfds_source.NAME / "3.0.1").mkdir(parents=True)
    with pytest.raises(DataError, match="not a complete TFDS dataset; delete it"):
        tfds_source.load_from_tfds(data_dir=tmp_path)


def test_builder_survives_a_second_import_of_the_module():
    cls = tfds_source.builder_class()
    spec = importlib.util.spec_from_file_location("tfds_source_again", tfds_source.__file__)
    again = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(again)
    # TFDS would raise "already registered" if the class were defined twice.
    assert again.builder_class() is cls
    assert again.FashionMnistManual is cls is tfds_source.FashionMnistManual
    import tensorflow_datasets as tfds
    assert tfds.builder_cls(tfds_source.NAME) is cls


# --- Failures of the tfds source on the command line: one line, exit 2 ------------------------------------------

@pytest.fixture(scope="module")
def tfds_failures(tfds_prepared, tmp_path_factory):
    """``python -m torch_version train --source tfds`` with TFDS_DATA_DIR set to a folder nobody may write
    to, to a copy of the prepared data with a tfrecord cut short, and to a dataset folder left empty;
    run concurrently: ``(folder, {case: result})``."""
    data_dir = tfds_prepared[0]
    t = tmp_path_factory.mktemp("tfds-failures")
    shutil.copytree(data_dir / tfds_source.NAME, t / "truncated" / tfds_source.NAME)
    record = t / "truncated" / tfds_source.NAME / "3.0.1" / "fashion_mnist_manual-train.tfrecord-00000-of-00001"
    record.write_bytes(record.read_bytes()[:1_000_000])
    (t / "incomplete" / tfds_source.NAME / "3.0.1").mkdir(parents=True)
    args = ["--source", "tfds", "--subset", "2048", "--batch-size", "256", "--epochs", "1"]
    jobs = {case: ("torch_version", [*args, "--out", t / "out" / case], None, {"TFDS_DATA_DIR": str(folder)})
            for case, folder in (("unwritable", "/sys/tfds"), ("truncated", t / "truncated"),
                                 ("incomplete", t / "incomplete"))}
    return t, cli.run_many(jobs)


@pytest.mark.parametrize("case, pattern", [
    ("unwritable", r"cannot prepare the tfds source in /sys/tfds \(.+\); set TFDS_DATA_DIR to a folder you may "
                   r"write to, or use --source files$"),
    ("truncated", r"the prepared tfds data in \S+/truncated/fashion_mnist_manual/3\.0\.1 cannot be read "
                  r"\(DataLossError: truncated record at \d+.*\); delete that folder and load again to prepare it "
                  r"anew$"),
    ("incomplete", r"\S+/incomplete/fashion_mnist_manual/3\.0\.1 is not a complete TFDS dataset; delete it and "
                   r"load again to prepare it anew$"),
])
def test_tfds_failures_are_one_line(tfds_failures, case, pattern):
    """One line, exit 2 (no absl WARNING before it, no traceback); the library raises the same message."""
    t, results = tfds_failures
    line = cli.one_error_line(results[case], "torch_version", r"^python -m torch_version: error: " + pattern)
    data_dir = {"unwritable": Path("/sys/tfds"), "truncated": t / "truncated", "incomplete": t / "incomplete"}[case]
    with pytest.raises(DataError) as caught:
        tfds_source.load_from_tfds(data_dir=data_dir)
    assert line.split(": error: ", 1)[1] == str(caught.value)
