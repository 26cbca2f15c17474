"""Fashion-MNIST for both frameworks: load, validate, preprocess, split and batch.

One pipeline feeds the PyTorch loop and Keras ``fit`` on every backend, so both
see the same examples in the same batches in the same order.  It replaces the
notebook's ``torchvision.datasets.FashionMNIST`` + ``ToTensor`` + ``Normalize``
and has no framework dependency: batches are NumPy arrays built whole, once per
step, never example by example.

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()   # uint8
    data = prepare_data(RunConfig(subset=2048))
    for x, y in data.train.epoch(0): ...   # (batch, time=28, features=28) float32
"""
from __future__ import annotations

import dataclasses
import gzip
import math
import os
import stat
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from common.config import RunConfig
from common.errors import ConfigError, DataError

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (28, 28)  # rows are time steps, columns are features
COUNTS = {"train": 60_000, "test": 10_000}
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SOURCES = ("auto", "files", "tfds", "keras")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
HOW_TO_GET_LOCALLY = ("install it with `apt-get install dataset-fashion-mnist` (Debian), or put the four "
                      "IDX .gz files in a folder and set FASHION_MNIST_DIR to it")
HOW_TO_GET = HOW_TO_GET_LOCALLY + ", or use --source keras to download it"
_MAGIC = {3: 0x00000803, 1: 0x00000801}  # unsigned bytes, 3-d images / 1-d labels
MAX_IDX_BYTES = 1 << 30  # read_idx's bound for any shape (Fashion-MNIST's largest file holds 47 MB)


# --- Loading ------------------------------------------------------------------

def candidate_dirs() -> list[Path]:
    """Local folders searched by ``source="auto"``/``"files"``, in order."""
    dirs = []
    if os.environ.get("FASHION_MNIST_DIR"):
        dirs.append(Path(os.environ["FASHION_MNIST_DIR"]))
    dirs.append(DEBIAN_DIR)
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    dirs.append(keras_home / "datasets" / "fashion-mnist")
    return dirs


def find_local_dir() -> Path | None:
    """The first candidate folder that holds all four files, or None.

    A folder named by FASHION_MNIST_DIR must hold them: a wrong setting is an error,
    not a reason to quietly read another copy.
    """
    chosen = os.environ.get("FASHION_MNIST_DIR")
    if chosen:
        missing = [name for pair in FILES.values() for name in pair if not (Path(chosen) / name).is_file()]
        if missing:
            raise DataError(f"FASHION_MNIST_DIR is set to {chosen}, which lacks {', '.join(missing)}; "
                            f"point it at a folder that holds them, or unset it. To get the data: {HOW_TO_GET}")
    for d in candidate_dirs():
        if all((d / name).is_file() for pair in FILES.values() for name in pair):
            return d
    return None


def read_idx(path: Path, ndim: int, shape: tuple[int | None, ...] | None = None) -> np.ndarray:
    """Read one gzipped IDX file of unsigned bytes, checking magic number, shape and size.

    ``shape`` is the shape the header must declare (None for any size along an axis).
    Reads at most the size the header declares plus one byte, so a file that inflates to
    far more is refused without being inflated; refuses anything but a regular file (a
    FIFO would block the read forever).
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; {HOW_TO_GET}") from None
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror}); check its permissions") from None
    if not stat.S_ISREG(mode):
        raise DataError(f"{path} is not a regular file; {HOW_TO_GET}")
    header = 4 + 4 * ndim
    try:
        with gzip.open(path, "rb") as f:
            head = f.read(header)
            if len(head) < header:
                raise DataError(f"{path} is truncated: {len(head)} bytes, shorter than its {header}-byte header")
            magic = int.from_bytes(head[:4], "big")
            if magic != _MAGIC[ndim]:
                raise DataError(f"{path} has magic number {magic:#010x}, expected {_MAGIC[ndim]:#010x} "
                                f"for a {ndim}-d IDX file of unsigned bytes; is it the right file?")
            dims = tuple(int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
            if shape is not None and any(want is not None and got != want for got, want in zip(dims, shape)):
                wanted = "(" + ", ".join("N" if w is None else str(w) for w in shape) + ")"
                raise DataError(f"{path} declares the shape {dims} in its header, expected {wanted}; "
                                "delete it and get the dataset again")
            expected = math.prod(dims)  # Python integers: no overflow
            if expected > MAX_IDX_BYTES:
                raise DataError(f"{path} declares {expected:,} bytes of data in its header {dims}, more than the "
                                f"{MAX_IDX_BYTES:,} allowed; delete it and get the dataset again")
            raw = f.read(expected + 1)
    except PermissionError as e:
        raise DataError(f"cannot read {path} ({e.strerror}); check its permissions") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path} is not a readable gzip file ({e}); delete it and get the dataset again") from None
    if len(raw) != expected:
        found = f"more than {expected}" if len(raw) > expected else str(len(raw))
        raise DataError(f"{path} is truncated or padded: header says {dims} = {expected} bytes of data, "
                        f"found {found}; delete it and get the dataset again")
    return np.frombuffer(raw, np.uint8).reshape(dims)


def load_from_dir(folder: Path):
    """The four IDX files in ``folder``, in file order."""
    folder = Path(folder)
    out = []
    for split in ("train", "test"):
        images, labels = FILES[split]
        n = COUNTS[split]
        out.append((read_idx(folder / images, 3, (n, *IMAGE_SHAPE)), read_idx(folder / labels, 1, (n,))))
    return tuple(out)


def load_from_keras():
    """Keras's own downloader (``keras.datasets.fashion_mnist``), cached in ~/.keras."""
    try:
        from common.quiet import import_tensorflow_quietly
        import_tensorflow_quietly()  # keras imports it; its import-time log lines are noise here
        from keras.datasets import fashion_mnist
        return fashion_mnist.load_data()
    except Exception as e:  # no network, no keras, a broken cache: all end the same way
        raise DataError(f"could not get Fashion-MNIST through keras.datasets ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}); {HOW_TO_GET_LOCALLY}") from None


def validate(arrays, source: str):
    """Check dtype, shapes, counts and label range of ``((x, y), (x, y))``; return them."""
    try:
        (x_train, y_train), (x_test, y_test) = arrays
    except (TypeError, ValueError):
        raise DataError(f"{source} did not return ((x_train, y_train), (x_test, y_test))") from None
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        n = COUNTS[split]
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype != np.uint8 or x.shape != (n, *IMAGE_SHAPE):
            raise DataError(f"{source}: {split} images are {x.dtype}{x.shape}, expected uint8{(n, *IMAGE_SHAPE)}")
        if y.shape != (n,):
            raise DataError(f"{source}: {split} labels have shape {y.shape}, expected ({n},)")
        if y.min() < 0 or y.max() >= NUM_CLASSES:
            raise DataError(f"{source}: {split} labels span {y.min()}..{y.max()}, expected 0..{NUM_CLASSES - 1}")
    return (np.asarray(x_train), np.asarray(y_train, np.uint8)), (np.asarray(x_test), np.asarray(y_test, np.uint8))


def load_fashion_mnist(source: str = "auto"):
    """Return ``(x_train, y_train), (x_test, y_test)`` as uint8 arrays.

    ``source`` is ``"auto"`` (the first local folder, else Keras's download),
    ``"files"`` (a local folder only), ``"tfds"``, ``"keras"``, or a folder path.
    File sources keep the original file order; TFDS uses its own order.
    """
    if source in ("auto", "files"):
        folder = find_local_dir()
        if folder is not None:
            return validate(load_from_dir(folder), str(folder))
        if source == "files":
            searched = ", ".join(str(d) for d in candidate_dirs())
            raise DataError(f"Fashion-MNIST was not found in {searched}; {HOW_TO_GET}")
        return validate(load_from_keras(), "keras.datasets.fashion_mnist")
    if source == "keras":
        return validate(load_from_keras(), "keras.datasets.fashion_mnist")
    if source == "tfds":
        from common.quiet import import_tensorflow_quietly
        import_tensorflow_quietly()
        from common.tfds_source import load_from_tfds
        return validate(load_from_tfds(), "tensorflow_datasets")
    if os.sep in source or Path(source).is_dir():
        if not Path(source).is_dir():
            raise DataError(f"{source} is not a folder; {HOW_TO_GET}")
        return validate(load_from_dir(Path(source)), source)
    raise ConfigError(f"unknown data source {source!r}; choose one of: {', '.join(SOURCES)}, or a folder path")


# --- Preprocessing --------------------------------------------------------------

# ToTensor() divides by 255, Normalize((0.5,), (0.5,)) subtracts 0.5 and divides by
# 0.5, all in float32.  Applying those exact float32 operations to the 256 possible
# byte values gives a lookup table that reproduces them bit for bit.
_LUT = ((np.arange(256, dtype=np.float32) / np.float32(255)) - np.float32(0.5)) / np.float32(0.5)


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28) in [-1, 1]: (batch, time, features)."""
    return _LUT[np.asarray(images, dtype=np.uint8)]


# --- Splits and batches -------------------------------------------------------------

def split_indices(n: int, val_fraction: float, seed: int):
    """A seeded, deterministic train/validation split of ``range(n)``."""
    n_val = int(round(n * val_fraction))
    if n_val < 1 or n_val >= n:
        raise ConfigError(f"a validation fraction of {val_fraction} leaves no examples on one side of {n}")
    perm = np.random.default_rng([seed, 0x5EED]).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class Batches:
    """Shuffled mini-batches, reshuffled each epoch from ``(seed, epoch)``.

    Epoch ``e`` is a pure function of the seed and ``e``, so the PyTorch loop,
    Keras ``fit`` on any backend and a resumed run all see identical batches.
    The last batch may be smaller, as with ``DataLoader(drop_last=False)``.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, shuffle: bool = True):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
        self.x = np.ascontiguousarray(x, dtype=np.float32)  # (N, time, features)
        self.y = np.asarray(y, dtype=np.int64)              # (N,)
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    @property
    def num_examples(self) -> int:
        return len(self.x)

    def order(self, epoch: int) -> np.ndarray:
        """The example order of one epoch."""
        if not self.shuffle:
            return np.arange(len(self.x))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def batch(self, epoch: int, step: int, order: np.ndarray | None = None):
        """Batch ``step`` of ``epoch`` as ``(x, y)`` NumPy arrays."""
        order = self.order(epoch) if order is None else order
        idx = order[step * self.batch_size:(step + 1) * self.batch_size]
        # np.take on rows is several times faster than fancy indexing x[idx] here
        x = np.take(self.x.reshape(len(self.x), -1), idx, axis=0).reshape(len(idx), *self.x.shape[1:])
        return x, np.take(self.y, idx)

    prefetch = True  # gather the next batch in a background thread (see read_ahead)

    def epoch(self, epoch: int):
        """Yield every ``(x, y)`` batch of one epoch, in order."""
        order = self.order(epoch)

        def gather(step):
            return self.batch(epoch, step, order)

        steps = range(len(self))
        yield from read_ahead(gather, steps) if self.prefetch else map(gather, steps)


def read_ahead(produce, keys):
    """Yield ``produce(key)`` for each key, producing the next one in a background thread.

    While the caller trains on one batch, the next is gathered (NumPy's take releases
    the GIL, so the two run at once on two cores); the results are the same, in order.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead = None
        for key in keys:
            future = pool.submit(produce, key)
            if ahead is not None:
                yield ahead.result()
            ahead = future
        if ahead is not None:
            yield ahead.result()


@dataclasses.dataclass
class PreparedData:
    """Everything a run needs, already preprocessed."""
    train: Batches                      # shuffled training batches
    x_val: np.ndarray                   # (N_val, 28, 28) float32
    y_val: np.ndarray                   # (N_val,) int64
    x_test: np.ndarray                  # (10000, 28, 28) float32
    y_test: np.ndarray                  # (10000,) int64
    test_images: np.ndarray             # (10000, 28, 28) uint8, for the prediction grid


def prepare_data(config: RunConfig, arrays=None) -> PreparedData:
    """Load (unless ``arrays`` is given), subset, split, preprocess and batch."""
    (x_train, y_train), (x_test, y_test) = arrays if arrays is not None else load_fashion_mnist(config.source)
    if config.subset is not None:
        if config.subset > len(x_train):
            raise ConfigError(f"--subset {config.subset} is larger than the {len(x_train)} training examples")
        x_train, y_train = x_train[:config.subset], y_train[:config.subset]
    train_idx, val_idx = split_indices(len(x_train), config.val_fraction, config.seed)
    return PreparedData(
        train=Batches(preprocess(x_train[train_idx]), y_train[train_idx], config.batch_size, config.seed),
        x_val=preprocess(x_train[val_idx]), y_val=y_train[val_idx].astype(np.int64),
        x_test=preprocess(x_test), y_test=y_test.astype(np.int64), test_images=np.asarray(x_test),
    )
