"""The shared pipeline: sources agree in content, preprocessing is the notebook's, splits and batches are deterministic."""
import gzip
import hashlib
import shutil
import sys

import numpy as np
import pytest

from common.config import RunConfig
from common.data import (Batches, CLASS_NAMES, DEBIAN_DIR, FILES, candidate_dirs, load_fashion_mnist,
                         load_from_dir, prepare_data, preprocess, split_indices)
from common.errors import ConfigError, DataError


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def test_shapes_dtypes_and_counts(fashion):
    (x_train, y_train), (x_test, y_test) = fashion
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert {x_train.dtype, y_train.dtype, x_test.dtype, y_test.dtype} == {np.dtype(np.uint8)}
    # Fashion-MNIST is balanced: 6000 training and 1000 test images per class
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert len(CLASS_NAMES) == 10


def test_file_order_is_the_original(fashion):
    (x_train, y_train), (_, y_test) = fashion
    # The first labels of the published files: ankle boot, T-shirt, T-shirt, dress, ...
    assert y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert y_test[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert int(x_train[0].sum()) == 76247  # a fingerprint of the first image


def test_search_order_env_first(tmp_path, monkeypatch, fashion):
    for name in (n for pair in FILES.values() for n in pair):
        (tmp_path / name).symlink_to(DEBIAN_DIR / name)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path))
    assert candidate_dirs()[0] == tmp_path
    assert candidate_dirs()[1] == DEBIAN_DIR
    (x, y), _ = load_fashion_mnist("auto")
    assert digest(x, y) == digest(*fashion[0])


def test_keras_cache_source_agrees_with_files(tmp_path, monkeypatch, fashion):
    """Keras's downloader reads its cache offline; its arrays equal the IDX files' exactly."""
    cache = tmp_path / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    for name in (n for pair in FILES.values() for n in pair):
        shutil.copy(DEBIAN_DIR / name, cache / name)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    if "keras" in sys.modules:  # Keras reads KERAS_HOME once, at import, and an earlier test may have imported it
        monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path))
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist("keras")
    assert digest(x_train, y_train) == digest(*fashion[0])
    assert digest(x_test, y_test) == digest(*fashion[1])


def test_folder_source_and_unknown_source(fashion):
    (x, y), (xt, yt) = load_fashion_mnist(str(DEBIAN_DIR))
    assert digest(xt, yt) == digest(*fashion[1])
    with pytest.raises(ConfigError, match="unknown data source 'mnist'"):
        load_fashion_mnist("mnist")


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr("common.data.candidate_dirs", lambda: [tmp_path])
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("files")


def test_truncated_file_is_named(tmp_path):
    for name in (n for pair in FILES.values() for n in pair):
        shutil.copy(DEBIAN_DIR / name, tmp_path / name)
    raw = gzip.decompress((DEBIAN_DIR / FILES["test"][0]).read_bytes())
    (tmp_path / FILES["test"][0]).write_bytes(gzip.compress(raw[:-100], compresslevel=1))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz is truncated"):
        load_from_dir(tmp_path)


def test_preprocessing_is_totensor_then_normalize(fashion):
    import torch
    x = fashion[1][0][:500].copy()
    # ToTensor: uint8 -> float32 / 255; Normalize((0.5,), (0.5,)): (t - 0.5) / 0.5
    expected = (torch.from_numpy(x).float().div(255).sub(0.5).div(0.5)).numpy()
    got = preprocess(x)
    assert got.dtype == np.float32 and got.shape == (500, 28, 28)
    assert np.array_equal(got, expected)  # bit for bit
    assert got.min() == -1.0 and got.max() == 1.0
    np.testing.assert_allclose(got, x / 255 * 2 - 1, atol=1e-6)


def test_split_is_deterministic_disjoint_and_ten_percent():
    train, val = split_indices(60000, 0.1, seed=0)
    assert len(val) == 6000 and len(train) == 54000
    assert len(np.intersect1d(train, val)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(60000))
    again_train, again_val = split_indices(60000, 0.1, seed=0)
    assert np.array_equal(val, again_val)
    _, other_val = split_indices(60000, 0.1, seed=1)
    assert not np.array_equal(val, other_val)


def test_batches_cover_every_example_once_per_epoch_and_reshuffle():
    x = np.arange(1000, dtype=np.float32).reshape(1000, 1, 1)
    b = Batches(x, np.arange(1000), batch_size=128, seed=3)
    assert len(b) == 8
    epoch0 = [y for _, y in b.epoch(0)]
    assert [len(y) for y in epoch0] == [128] * 7 + [104]  # the last batch is partial, as drop_last=False
    assert np.array_equal(np.sort(np.concatenate(epoch0)), np.arange(1000))
    assert not np.array_equal(np.concatenate(epoch0), np.concatenate([y for _, y in b.epoch(1)]))
    assert all(np.array_equal(a, c) for (_, a), (_, c) in zip(b.epoch(0), Batches(x, np.arange(1000), 128, 3).epoch(0)))
    for xb, yb in b.epoch(2):
        assert np.array_equal(xb[:, 0, 0], yb.astype(np.float32))  # images travel with their labels


def test_shuffle_follows_the_seed():
    """Seed 0 and seed 1 give different epoch orders; the same seed, the same order, in every epoch."""
    x = np.arange(1000, dtype=np.float32)[:, None, None] * np.ones((1, 28, 28), np.float32)

    def labels(seed, epoch):
        return np.concatenate([y for _, y in Batches(x, np.arange(1000), 128, seed).epoch(epoch)])

    for epoch in (0, 1):
        assert np.array_equal(labels(0, epoch), labels(0, epoch))
        assert sorted(labels(1, epoch)) == list(range(1000))
        assert np.mean(labels(0, epoch) == labels(1, epoch)) < 0.05  # two shuffles agree by chance on ~1 in 1000


def test_prepare_data_with_subset(fashion):
    data = prepare_data(RunConfig(subset=3000, batch_size=1000, seed=0), arrays=fashion)
    assert data.train.num_examples == 2700 and len(data.x_val) == 300
    assert data.x_test.shape == (10000, 28, 28) and data.x_test.dtype == np.float32
    xb, yb = next(data.train.epoch(0))
    assert xb.shape == (1000, 28, 28) and yb.dtype == np.int64
    # The subset is the first 3000 training examples, split by the seed: these exact examples, in file order.
    (x_train, y_train), _ = fashion
    train_idx, val_idx = [0, 2, 3, 4, 6, 7, 8, 9], [1, 5, 14, 24, 36, 38, 82, 87]  # the first of each side
    assert data.train.y[:10].tolist() == [9, 0, 3, 0, 7, 2, 5, 5, 0, 9]
    assert data.y_val[:10].tolist() == [0, 2, 7, 4, 5, 1, 5, 7, 9, 3]
    np.testing.assert_array_equal(data.train.x[:8], preprocess(x_train[train_idx]))
    np.testing.assert_array_equal(data.x_val[:8], preprocess(x_train[val_idx]))
    assert np.bincount(data.y_val, minlength=10).tolist() == [34, 35, 29, 33, 25, 28, 38, 26, 23, 29]
    assert (np.bincount(data.train.y, minlength=10) + np.bincount(data.y_val, minlength=10)).tolist() == \
        np.bincount(y_train[:3000], minlength=10).tolist()  # every one of the first 3000, nothing beyond
    with pytest.raises(ConfigError, match="--subset 70000 is larger than the 60000 training examples"):
        prepare_data(RunConfig(subset=70000), arrays=fashion)
