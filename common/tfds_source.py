"""Fashion-MNIST through TensorFlow Datasets, built offline from the local IDX files.

TFDS's own ``fashion_mnist`` builder downloads four .gz files and checks them
against its registered checksums.  Debian's ``dataset-fashion-mnist`` ships the
same IDX contents recompressed, so their gzip bytes (and checksums) differ and
that builder rejects them; without a network it cannot download at all.  This
module registers ``fashion_mnist_manual``, a subclass of TFDS's ``FashionMNIST``
that takes the four files from ``dl_manager.manual_dir`` instead of downloading
them.  Nothing is downloaded, so no checksum is looked up, and the features,
``DatasetInfo`` and example generator are TFDS's own: the result is the
``fashion_mnist`` dataset (image uint8 (28, 28, 1), label ClassLabel(10)) in
TFDS's own example order.

    from common.tfds_source import load_from_tfds
    (x_train, y_train), (x_test, y_test) = load_from_tfds()   # uint8 (N, 28, 28), (N,)

The first call prepares the dataset into ``data_dir`` (``$TFDS_DATA_DIR``, else
``~/.cache/stacked-rnn/tensorflow_datasets``); later calls only read it.  The
builder class is also available as ``FashionMnistManual`` (or
``tfds.builder("fashion_mnist_manual")`` once it has been created) for code that
wants a ``tf.data`` pipeline rather than arrays.

TensorFlow is imported on first use, not on import, because the PyTorch side
imports ``common.data``, which names this module.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from common.checkpoint import lock_folder, unlock_folder
from common.data import COUNTS, FILES, HOW_TO_GET, IMAGE_SHAPE, candidate_dirs, find_local_dir, read_idx
from common.errors import DataError, OutputError

NAME = "fashion_mnist_manual"
LOCK = f".{NAME}.lock"        # in data_dir: one process prepares at a time
SCRATCH = f"{NAME}.downloads."  # prefix of the throwaway folder of extracted IDX files, in data_dir
MANUAL_DOWNLOAD_INSTRUCTIONS = (
    "Put the four Fashion-MNIST IDX files (" + ", ".join(n for pair in FILES.values() for n in pair)
    + ") in one folder and pass it as `tfds.download.DownloadConfig(manual_dir=...)`; "
    "on Debian, `apt-get install dataset-fashion-mnist` puts them in /usr/share/datasets/fashion-mnist."
)

_builder_cls = None


def default_data_dir() -> Path:
    """Where prepared TFDS data lives: ``$TFDS_DATA_DIR``, else a per-user cache folder."""
    if os.environ.get("TFDS_DATA_DIR"):
        return Path(os.environ["TFDS_DATA_DIR"])
    return Path.home() / ".cache" / "stacked-rnn" / "tensorflow_datasets"


def _import_tfds():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow  # noqa: F401  (tfds imports it lazily; fail here, with a clear message)
        import tensorflow_datasets as tfds
    except ImportError as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"the tfds source needs tensorflow and tensorflow-datasets, which could not be imported "
                        f"({reason}); install them with `pip install tensorflow-cpu tensorflow-datasets`, "
                        "or use --source files") from None
    # TFDS logs through absl, whose WARNING lines (e.g. about a folder it is about to
    # reject) would arrive on stderr before this module's one-line error.
    logging.getLogger("absl").setLevel(logging.ERROR)
    return tfds


def _first_line(e: BaseException) -> str:
    """``Type: message`` on one line, without TensorFlow's ``{{function_node ...}}`` and ``[Op:...]`` wrapping."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    text = re.sub(r"\s*\[Op:.*$", "", re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text))
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def builder_class():
    """The ``fashion_mnist_manual`` builder class, created and registered on first call."""
    global _builder_cls
    if _builder_cls is not None:
        return _builder_cls
    tfds = _import_tfds()
    # TFDS refuses to register a name twice, and this module can be imported (or
    # reloaded) more than once in a process: reuse the class already registered.
    if NAME in tfds.list_builders(with_community_datasets=False):
        _builder_cls = tfds.builder_cls(NAME)
        return _builder_cls

    class FashionMnistManual(tfds.image_classification.FashionMNIST):
        """TFDS's ``fashion_mnist``, generated from manually supplied IDX .gz files."""

        name = NAME
        MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
        # TFDS 4.9.10 finds a builder's code through `importlib_resources`, which
        # it imports but declares only for Python < 3.9 (tensorflow/datasets#11212),
        # so the inherited lookup raises ModuleNotFoundError on 3.11.  It only
        # locates an optional checksums.tsv next to the code; this builder
        # downloads nothing and has none, so say where the code is.
        code_path = tfds.core.Path(__file__)

        def _split_generators(self, dl_manager):
            folder = dl_manager.manual_dir
            # The parent's _generate_examples reads raw IDX bytes, so decompress
            # first; extract() works on local paths and never checks checksums.
            paths = dl_manager.extract({f"{split}_{kind}": folder / name
                                        for split, pair in FILES.items()
                                        for kind, name in zip(("data", "labels"), pair)})
            return [
                tfds.core.SplitGenerator(
                    name=split,
                    gen_kwargs=dict(num_examples=COUNTS[split], data_path=paths[f"{split}_data"],
                                    label_path=paths[f"{split}_labels"]),
                )
                for split in ("train", "test")
            ]

    # A module-level name, so pickle (and readers of tracebacks) can find the class.
    FashionMnistManual.__qualname__ = "FashionMnistManual"
    _builder_cls = FashionMnistManual
    return _builder_cls


def __getattr__(attr: str):
    if attr == "FashionMnistManual":
        return builder_class()
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def _check_manual_dir(manual_dir: Path | None) -> Path:
    """The folder to prepare from, after checking that its four files are readable IDX files."""
    if manual_dir is None:
        searched = ", ".join(str(d) for d in candidate_dirs())
        raise DataError(f"the tfds source is built from the local Fashion-MNIST files, but none were found "
                        f"in {searched}; {HOW_TO_GET}")
    manual_dir = Path(manual_dir)
    missing = [n for pair in FILES.values() for n in pair if not (manual_dir / n).is_file()]
    if missing:
        raise DataError(f"{manual_dir} lacks {', '.join(missing)}, needed to prepare the tfds source; {HOW_TO_GET}")
    # TFDS's generator reshapes raw bytes without checking them; read_idx gives a
    # clear message for a truncated or wrong file before anything is written.
    for split, (images, labels) in FILES.items():
        read_idx(manual_dir / labels, 1, (COUNTS[split],))
        read_idx(manual_dir / images, 3, (COUNTS[split], *IMAGE_SHAPE))
    return manual_dir


def prepare(data_dir: str | os.PathLike | None = None, manual_dir: str | os.PathLike | None = None):
    """Return a ``FashionMnistManual`` builder whose data is prepared in ``data_dir``.

    Prepares it from ``manual_dir`` (default: the first local folder holding the
    four files) unless ``data_dir`` already holds it.  One process prepares at a
    time (a lock file in ``data_dir``; others wait, then read what it made), and the
    one that holds the lock first removes what a killed preparation left behind.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    cls = builder_class()
    tfds = _import_tfds()
    builder = cls(data_dir=os.fspath(data_dir))
    if _prepared(builder):
        return builder
    folder = _check_manual_dir(Path(manual_dir) if manual_dir is not None else find_local_dir())
    unwritable = ("cannot prepare the tfds source in {folder} ({reason}); set TFDS_DATA_DIR to a folder you "
                  "may write to, or use --source files")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(unwritable.format(folder=data_dir, reason=e.strerror or type(e).__name__)) from None
    try:
        lock_folder(data_dir, name=LOCK, wait=True, unwritable=unwritable)
    except OutputError as e:
        raise DataError(str(e)) from None
    try:
        if _prepared(builder):  # another process prepared it while this one waited
            return builder
        _remove_leftovers(data_dir)
        # Extracted copies are only needed while generating; a throwaway download
        # dir keeps ~55 MB of raw IDX out of the cache and never reuses an
        # extraction made from another folder's files.
        with tempfile.TemporaryDirectory(prefix=SCRATCH, dir=data_dir) as scratch:
            builder.download_and_prepare(
                download_dir=scratch,
                download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(folder), try_download_gcs=False),
            )
    except (OSError, _tf_errors().OpError) as e:
        raise DataError(f"could not prepare the tfds source in {data_dir} ({_first_line(e)}); set TFDS_DATA_DIR to "
                        "a folder you may write to, with about 100 MB free, or use --source files") from None
    finally:
        unlock_folder(data_dir, name=LOCK)
    return builder


def _prepared(builder) -> bool:
    """True if the builder's folder holds a finished dataset; DataError for a half-made one."""
    # is_prepared() logs a warning for a folder that does not exist yet.
    if not builder.data_path.exists():
        return False
    if builder.is_prepared():
        return True
    # TFDS renames a finished folder into place, so a final folder without
    # its metadata was left by something else; TFDS would "reuse" it and fail.
    raise DataError(f"{builder.data_path} is not a complete TFDS dataset; "
                    "delete it and load again to prepare it anew")


def _remove_leftovers(data_dir: Path) -> list[Path]:
    """Delete what a killed preparation left in ``data_dir``: extracted IDX copies and
    TFDS's unfinished dataset folder.  Only the holder of the lock calls this."""
    leftovers = [*data_dir.glob(f"{SCRATCH}*"), *(data_dir / NAME).glob("incomplete.*")]
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
    return leftovers


def _tf_errors():
    import tensorflow as tf
    return tf.errors


def load_from_tfds(data_dir: str | os.PathLike | None = None, manual_dir: str | os.PathLike | None = None):
    """Return ``(x_train, y_train), (x_test, y_test)`` as uint8 arrays, in TFDS's order.

    Images are (N, 28, 28), labels (N,).  See :func:`prepare` for the arguments.
    """
    builder = prepare(data_dir, manual_dir)
    tfds = _import_tfds()
    out = []
    for split in ("train", "test"):
        try:
            images, labels = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
        except (OSError, _tf_errors().OpError) as e:  # e.g. DataLossError: a truncated tfrecord
            raise DataError(f"the prepared tfds data in {builder.data_path} cannot be read ({_first_line(e)}); "
                            "delete that folder and load again to prepare it anew") from None
        out.append((np.asarray(images, np.uint8).squeeze(-1), np.asarray(labels).astype(np.uint8)))
    return tuple(out)
