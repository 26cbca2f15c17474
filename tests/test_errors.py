"""Every bad input gives one clear line on stderr, a non-zero exit and no traceback; the
library raises a specific exception with the same message.

``TABLE`` is the bad-input table of docs/errors.md: each row runs the command line in a
subprocess (all rows concurrently, once per session) and, where a library call can
make the same mistake, checks that the call raises the named exception with exactly
the message the command line printed.  Rows that need Keras run under every backend.
"""
from __future__ import annotations

import gzip
import json
import os
import pickle
import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from common.checkpoint import CheckpointDir, atomic_write_json
from common.cli import one_line
from common.config import FRAMEWORKS, MAX_SEED, RunConfig, check_choice, check_floatx
from common.data import DEBIAN_DIR, FILES, load_fashion_mnist, prepare_data, read_idx
from common.errors import (CheckpointError, ConfigError, ConversionError, DataError, NonFiniteLossError, OutputError,
                           ShapeError, UserError)
from common.report import empty_history, label
from common.runs import checkpoint_state, check_fits_in_memory, checkpoints, make_out_dir, resume_point
from tests import cli_support as cli

SMALL = ["--subset", "2048", "--batch-size", "256", "--epochs", "3"]
# Keras on the torch backend pays per step, not per example: few, large batches
KERAS_SMALL = ["--subset", "4096", "--batch-size", "2048", "--epochs", "3"]
IMAGES, LABELS = FILES["train"]
TEST_IMAGES = FILES["test"][0]


# --- The inputs: corrupt data folders and run folders with bad checkpoints --------------------

def data_copy(folder, replace: dict):
    """A folder of links to the real IDX files, with ``replace``'s files written instead."""
    folder.mkdir()
    for name in (n for pair in FILES.values() for n in pair):
        if name in replace:
            (folder / name).write_bytes(replace[name])
        else:
            (folder / name).symlink_to(DEBIAN_DIR / name)
    return folder


def fake_run(folder, config: RunConfig, suffix: str, write, epochs_done: int = 1):
    """A run folder whose checkpoint after ``epochs_done`` epochs is written by ``write(path)``."""
    history = {key: [0.5] * epochs_done for key in empty_history()}
    CheckpointDir(folder / "checkpoints", suffix).save(epochs_done, write, checkpoint_state(config, history))
    return folder


class Evil:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="session")
def bad(tmp_path_factory):
    """The folder holding every bad input; ``bad / name``."""
    import torch
    from torch_version.model import StackedRNN
    from torch_version.train import save_model
    t = tmp_path_factory.mktemp("bad")
    (t / "empty").mkdir()
    (t / "empty-run").mkdir()
    (t / "a-file").write_text("not a folder\n")
    raw_test_images = gzip.decompress((DEBIAN_DIR / TEST_IMAGES).read_bytes())
    data_copy(t / "idx-not-gzip", {LABELS: b"these are not gzip bytes\n" * 10})
    data_copy(t / "idx-truncated", {TEST_IMAGES: gzip.compress(raw_test_images[:-100], compresslevel=1)})
    data_copy(t / "idx-header-cut", {IMAGES: gzip.compress(raw_test_images[:10])})
    data_copy(t / "idx-wrong-magic", {LABELS: (DEBIAN_DIR / TEST_IMAGES).read_bytes()})  # images where labels go

    data_copy(t / "idx-fifo", {})
    (t / "idx-fifo" / LABELS).unlink()
    os.mkfifo(t / "idx-fifo" / LABELS)  # reading it would wait forever for a writer
    data_copy(t / "idx-dims-overflow", {IMAGES: gzip.compress(idx_header(3, (2**31, 2**31, 4)) + bytes(64))})
    data_copy(t / "idx-bomb", {})
    (t / "idx-bomb" / LABELS).unlink()
    cli.gzip_bomb(t / "idx-bomb" / LABELS, idx_header(1, (60000,)), gigabytes=2.5)
    (t / "new\nline").write_text("a file whose name holds a line break\n")
    for floatx in ("float16", "float64"):  # a KERAS_HOME whose keras.json makes Keras compute in another precision
        (t / f"keras-home-{floatx}").mkdir()
        (t / f"keras-home-{floatx}" / "keras.json").write_text(json.dumps({"floatx": floatx, "backend": "jax"}))

    config = RunConfig(subset=2048, batch_size=256, epochs=3)
    torch.manual_seed(0)
    for name in ("run-torch", "run-other-architecture", "run-other-batches", "run-other-learning-rate",
                 "run-fresh"):  # one folder per row: each run locks its folder
        fake_run(t / name, config, ".pt", lambda p: save_model(p, StackedRNN()))
    for name, edit in STATE_EDITS.items():
        fake_run(t / name, config, ".pt", lambda p: save_model(p, StackedRNN()), epochs_done=2)
        state_file = t / name / "checkpoints" / "state.json"
        state_file.write_text(json.dumps(edit(json.loads(state_file.read_text()), t)))
    fake_run(t / "run-swapped", config, ".pt", lambda p: save_model(p, StackedRNN()), epochs_done=2)
    torch.manual_seed(1)  # another run's checkpoint of the same epoch, copied over this one's
    save_model(t / "run-swapped" / "checkpoints" / "epoch-0002.pt", StackedRNN())
    fake_run(t / "run-torch-3", config, ".pt", lambda p: save_model(p, StackedRNN()), epochs_done=3)
    fake_run(t / "run-keras", config, ".keras", lambda p: p.write_bytes(b"PK\x05\x06" + bytes(18)))
    fake_run(t / "run-h16-file", config, ".pt", lambda p: save_model(p, StackedRNN(hidden_size=16)))
    fake_run(t / "run-corrupt", config, ".pt",
             lambda p: p.write_bytes((t / "run-torch/checkpoints/epoch-0001.pt").read_bytes()[:3000]))
    fake_run(t / "run-evil", config, ".pt", lambda p: torch.save({"model": Evil(t / "pwned")}, p))
    fake_run(t / "run-bad-state", config, ".pt", lambda p: save_model(p, StackedRNN()))
    (t / "run-bad-state/checkpoints/state.json").write_text('{"epochs_done": 1, "fi')  # cut short
    convert_inputs(t / "convert")
    return t


def convert_inputs(folder):
    """State dicts for ``python -m parity convert``: what a file cannot say, and a stride-0 bomb."""
    import torch
    from torch import nn
    folder.mkdir()
    torch.manual_seed(0)
    lstm, fc = nn.LSTM(28, 16, 2, batch_first=True, bidirectional=True), nn.Linear(32, 10)
    torch.save({**{f"lstm.{k}": v for k, v in lstm.state_dict().items()},
                **{f"fc.{k}": v for k, v in fc.state_dict().items()}}, folder / "bidirectional.pt")
    rnn, fc = nn.RNN(28, 8, batch_first=True), nn.Linear(8, 10)
    torch.save({**{f"rnn.{k}": v for k, v in rnn.state_dict().items()},
                **{f"fc.{k}": v for k, v in fc.state_dict().items()}}, folder / "rnn.pt")
    (folder / "taken.keras").write_text("a file the user keeps\n")
    # 2 kB on disk; stride 0 makes the tensor describe all 30000 x 30000 floats
    torch.save({"rnn.weight_ih_l0": torch.zeros(1).expand(30000, 30000)}, folder / "stride-bomb.pt")


def lib_convert(src, dst, **kwargs):
    def call(t, fashion):
        from parity.files import convert_file
        return convert_file(t / "convert" / src, t / "convert" / dst, out=lambda line: None, **kwargs)
    return call


def idx_header(ndim: int, dims) -> bytes:
    return (0x800 + ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)


def without(key):
    def edit(state, t):
        del state[key]
        return state
    return edit


def setting(key, value):
    def edit(state, t):
        state[key] = value(t) if callable(value) else value
        return state
    return edit


# Hand edits of a state.json written after 2 epochs (beside epoch-0002.pt): each must be refused.
STATE_EDITS = {
    "state-epochs-ahead": setting("epochs_done", 5),
    "state-epochs-zero": setting("epochs_done", 0),
    "state-epochs-fraction": setting("epochs_done", 1.7),
    "state-epochs-negative": setting("epochs_done", -2),
    "state-epochs-missing": without("epochs_done"),
    "state-file-foreign": setting("file", lambda t: str(t / "run-torch" / "checkpoints" / "epoch-0001.pt")),
    "state-history-null": setting("history", None),
    "state-history-short": setting("history", {k: [0.5] for k in empty_history()}),
    "state-not-object": lambda state, t: [state],
}
STATE_FIX = (r"; the file was edited or damaged, so the run cannot be resumed from it \(start afresh with "
             r"--overwrite, or choose another --out\)$")


# --- The table ------------------------------------------------------------------------------------

def lib_load(source):
    return lambda t, fashion: load_fashion_mnist(source.format(t=t))


def lib_config(**kwargs):
    return lambda t, fashion: RunConfig(**kwargs)


def lib_resume(run, **kwargs):
    def call(t, fashion):
        config = RunConfig(**{"subset": 2048, "batch_size": 256, "epochs": 3, **kwargs}, out=t / run, resume=True)
        make_out_dir(config)
        return resume_point(config, checkpoints(config, ".pt"))
    return call


def lib_load_torch(run):
    def call(t, fashion):
        from torch_version.model import StackedRNN
        from torch_version.train import load_model
        return load_model(t / run / "checkpoints" / "epoch-0001.pt", StackedRNN())
    return call


NO_NETWORK = {name: "http://127.0.0.1:9" for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}

# (id, what the user did, module, args, environment, pattern the line must match, library call, exception)
TABLE = [
    ("data-missing", "FASHION_MNIST_DIR names an empty folder, --source files", "torch_version",
     ["--source", "files", *SMALL, "--out", "{t}/out/{id}"], {"FASHION_MNIST_DIR": "{t}/empty"},
     r"FASHION_MNIST_DIR is set to \S+/empty, which lacks train-images-idx3-ubyte\.gz, .*; point it at a folder "
     r"that holds them, or unset it\. To get the data: install it with `apt-get install dataset-fashion-mnist`",
     lib_load("files"), DataError),
    ("download-offline", "--source keras without a network (nor a cached copy)", "torch_version",
     ["--source", "keras", *SMALL, "--out", "{t}/out/{id}"], {"KERAS_HOME": "{t}/keras-home", **NO_NETWORK},
     r"could not get Fashion-MNIST through keras\.datasets \(Exception: URL fetch failure on https://\S+: .+\); "
     r"install it with `apt-get install dataset-fashion-mnist` \(Debian\), or put the four IDX \.gz files in a "
     r"folder and set FASHION_MNIST_DIR to it$", None, None),  # (keras reads KERAS_HOME once: no library twin here)
    ("source-folder-missing", "--source names a folder that does not exist", "torch_version",
     ["--source", "{t}/no-such-folder", *SMALL, "--out", "{t}/out/{id}"], None,
     r"\S+/no-such-folder is not a folder; install it with `apt-get install dataset-fashion-mnist`",
     lib_load("{t}/no-such-folder"), DataError),
    ("source-unknown", "--source mnist", "torch_version", ["--source", "mnist", *SMALL, "--out", "{t}/out/{id}"], None,
     r"unknown data source 'mnist'; choose one of: auto, files, tfds, keras, or a folder path",
     lib_load("mnist"), ConfigError),
    ("idx-not-gzip", "an IDX file that is not gzip", "torch_version",
     ["--source", "{t}/idx-not-gzip", *SMALL, "--out", "{t}/out/{id}"], None,
     r"\S+/idx-not-gzip/train-labels-idx1-ubyte\.gz is not a readable gzip file \(Not a gzipped file .*\); "
     r"delete it and get the dataset again", lib_load("{t}/idx-not-gzip"), DataError),
    ("idx-truncated", "an IDX file cut short", "torch_version",
     ["--source", "{t}/idx-truncated", *SMALL, "--out", "{t}/out/{id}"], None,
     r"\S+/idx-truncated/t10k-images-idx3-ubyte\.gz is truncated or padded: header says \(10000, 28, 28\) = "
     r"7840000 bytes of data, found 7839900; delete it and get the dataset again",
     lib_load("{t}/idx-truncated"), DataError),
    ("idx-header-cut", "an IDX file shorter than its header", "torch_version",
     ["--source", "{t}/idx-header-cut", *SMALL, "--out", "{t}/out/{id}"], None,
     r"\S+/idx-header-cut/train-images-idx3-ubyte\.gz is truncated: 10 bytes, shorter than its 16-byte header",
     lib_load("{t}/idx-header-cut"), DataError),
    ("idx-wrong-magic", "an images file where the labels file belongs", "torch_version",
     ["--source", "{t}/idx-wrong-magic", *SMALL, "--out", "{t}/out/{id}"], None,
     r"\S+/idx-wrong-magic/train-labels-idx1-ubyte\.gz has magic number 0x00000803, expected 0x00000801 "
     r"for a 1-d IDX file of unsigned bytes; is it the right file\?", lib_load("{t}/idx-wrong-magic"), DataError),
    ("epochs-zero", "--epochs 0", "torch_version", ["--epochs", "0"], None,
     r"argument --epochs: expected a positive integer, got '0' \(see --help\)", None, None),
    ("batch-size-negative", "--batch-size -3", "torch_version", ["--batch-size", "-3"], None,
     r"argument --batch-size: expected a positive integer, got '-3' \(see --help\)", None, None),
    ("hidden-size-fraction", "--hidden-size 2.5", "torch_version", ["--hidden-size", "2.5"], None,
     r"argument --hidden-size: expected a positive integer, got '2\.5' \(see --help\)", None, None),
    ("num-layers-word", "--num-layers three", "torch_version", ["--num-layers", "three"], None,
     r"argument --num-layers: expected a positive integer, got 'three' \(see --help\)", None, None),
    ("learning-rate-nan", "--learning-rate nan", "torch_version", ["--learning-rate", "nan"], None,
     r"argument --learning-rate: expected a positive number, got 'nan' \(see --help\)", None, None),
    ("learning-rate-huge", "--learning-rate 1e38", "torch_version", ["--learning-rate", "1e38"], None,
     r"learning_rate must be positive and at most 1e\+37, got 1e\+38", lib_config(learning_rate=1e38), ConfigError),
    ("seed-negative", "--seed -1", "torch_version", ["--seed", "-1"], None,
     r"argument --seed: expected an integer from 0 to 4294967295, got '-1' \(see --help\)", None, None),
    ("subset-too-large", "--subset 70000", "torch_version", ["--subset", "70000", "--out", "{t}/out/{id}"], None,
     r"--subset 70000 is larger than the 60000 training examples",
     lambda t, fashion: prepare_data(RunConfig(subset=70000), arrays=fashion), ConfigError),
    ("subset-five", "--subset 5 (2 to 5 hold out no validation example)", "torch_version", ["--subset", "5"], None,
     r"subset must be an integer of at least 6, so that the 10 % held out for validation is one example or more, "
     r"got 5", lib_config(subset=5), ConfigError),
    ("cell-unknown", "--cell transformer", "torch_version", ["--cell", "transformer"], None,
     r"unknown cell 'transformer'; choose one of: rnn, gru, lstm", lib_config(cell="transformer"), ConfigError),
    ("backend-unknown", "--backend mxnet", "keras_version", ["--backend", "mxnet"], None,
     r"unknown backend 'mxnet'; choose one of: torch, jax, tensorflow",
     lambda t, fashion: label("keras", "mxnet"), ConfigError),
    ("parity-backend-unknown", "python -m parity compare --backends torch,mxnet", "parity",
     ["compare", "--backends", "torch,mxnet", "--out", "{t}/out/{id}"], None,
     r"unknown backend 'mxnet' in --backends; choose from: torch, jax, tensorflow", None, None),
    ("out-is-file", "--out names a file", "torch_version", [*SMALL, "--out", "{t}/a-file"], None,
     r"the output folder \S+/a-file is a file; choose another --out",
     lambda t, fashion: make_out_dir(RunConfig(out=t / "a-file")), ConfigError),
    ("out-unwritable", "--out names a folder nobody may write to", "torch_version", [*SMALL, "--out", "/sys"], None,
     r"cannot write to the output folder /sys \(Permission denied\); choose another --out",
     lambda t, fashion: make_out_dir(RunConfig(out="/sys")), OutputError),
    ("resume-missing-folder", "--resume names a folder that does not exist", "torch_version",
     ["--resume", "{t}/no-such-run", *SMALL], None,
     r"\S+/no-such-run is not a folder, so there is no run to resume; check the path given to --resume",
     lib_resume("no-such-run"), CheckpointError),
    ("resume-no-checkpoint", "--resume names a folder without checkpoints", "torch_version",
     ["--resume", "{t}/empty-run", *SMALL], None,
     r"\S+/empty-run/checkpoints holds no checkpoint to resume from; run without --resume first",
     lib_resume("empty-run"), CheckpointError),
    ("resume-other-architecture", "--resume with --hidden-size 16 for a run of 8 units", "torch_version",
     ["--resume", "{t}/run-other-architecture", *SMALL, "--hidden-size", "16"], None,
     r"\S+/run-other-architecture/checkpoints/epoch-0001\.pt was trained with hidden_size=8, but this run asks for "
     r"hidden_size=16; pass the same settings to resume it, or start afresh with another --out",
     lib_resume("run-other-architecture", hidden_size=16), CheckpointError),
    ("resume-other-batches", "--resume with another --batch-size", "torch_version",
     ["--resume", "{t}/run-other-batches", "--subset", "2048", "--batch-size", "128", "--epochs", "3"], None,
     r"epoch-0001\.pt was trained with batch_size=256, but this run asks for batch_size=128; the batches would differ",
     lib_resume("run-other-batches", batch_size=128), CheckpointError),
    ("resume-other-learning-rate", "--resume with another --learning-rate", "torch_version",
     ["--resume", "{t}/run-other-learning-rate", *SMALL, "--learning-rate", "0.01"], None,
     r"epoch-0001\.pt was trained with learning_rate=0\.001, but this run asks for learning_rate=0\.01; "
     r"the optimizer keeps the checkpoint's learning rate", lib_resume("run-other-learning-rate", learning_rate=0.01),
     CheckpointError),
    ("resume-keras-run", "python -m torch_version train --resume on a Keras run", "torch_version",
     ["--resume", "{t}/run-keras", *SMALL], None,
     r"\S+/run-keras/checkpoints/epoch-0001\.keras is a Keras checkpoint; resume it with "
     r"`python -m keras_version train --resume \S+/run-keras`", lib_resume("run-keras"), CheckpointError),
    ("resume-fewer-epochs", "--resume --epochs 2 on a run of 3 epochs", "torch_version",
     ["--resume", "{t}/run-torch-3", "--subset", "2048", "--batch-size", "256", "--epochs", "2"], None,
     r"\S+/run-torch-3 already holds 3 completed epochs, more than the 2 asked for; pass --epochs 3 or more",
     lib_resume("run-torch-3", epochs=2), ConfigError),
    ("checkpoint-other-architecture", "a checkpoint of 16 units where one of 8 belongs", "torch_version",
     ["--resume", "{t}/run-h16-file", *SMALL], None,
     r"layer 'rnns\.0\.weight_ih_l0' has shape \(16, 28\) in \S+/run-h16-file/checkpoints/epoch-0001\.pt but "
     r"\(8, 28\) in the model: it was saved from another architecture", lib_load_torch("run-h16-file"),
     CheckpointError),
    ("checkpoint-truncated", "a checkpoint cut short", "torch_version", ["--resume", "{t}/run-corrupt", *SMALL], None,
     r"\S+/run-corrupt/checkpoints/epoch-0001\.pt is not a readable PyTorch checkpoint \(RuntimeError\); "
     r"was it written by this project\?", lib_load_torch("run-corrupt"), CheckpointError),
    ("checkpoint-malicious", "a checkpoint whose pickle would run a command", "torch_version",
     ["--resume", "{t}/run-evil", *SMALL], None,
     r"\S+/run-evil/checkpoints/epoch-0001\.pt refers to the Python object \S*system; it is refused because "
     r"loading never runs code from a file \(torch\.load\(weights_only=True\)\)", lib_load_torch("run-evil"),
     CheckpointError),
    ("state-unreadable", "a state.json cut short", "torch_version", ["--resume", "{t}/run-bad-state", *SMALL], None,
     r"\S+/run-bad-state/checkpoints/state\.json is unreadable \(.+\); start afresh with --overwrite, "
     r"or choose another --out$", lib_resume("run-bad-state"), CheckpointError),
    ("state-epochs-ahead", "state.json says 5 epochs beside epoch-0002.pt", "torch_version",
     ["--resume", "{t}/state-epochs-ahead", *SMALL], None,
     r"\S+/state-epochs-ahead/checkpoints/state\.json: field 'epochs_done' is 5, but field 'file' names "
     r"epoch-0002\.pt, the checkpoint after epoch 2" + STATE_FIX, lib_resume("state-epochs-ahead"), CheckpointError),
    ("state-epochs-zero", "state.json says 0 epochs beside epoch-0002.pt", "torch_version",
     ["--resume", "{t}/state-epochs-zero", *SMALL], None,
     r"state\.json: field 'epochs_done' is 0, but field 'file' names epoch-0002\.pt, the checkpoint after epoch 2"
     + STATE_FIX, lib_resume("state-epochs-zero"), CheckpointError),
    ("state-epochs-fraction", "state.json says 1.7 epochs", "torch_version",
     ["--resume", "{t}/state-epochs-fraction", *SMALL], None,
     r"state\.json: field 'epochs_done' must be a non-negative integer, got 1\.7" + STATE_FIX,
     lib_resume("state-epochs-fraction"), CheckpointError),
    ("state-epochs-negative", "state.json says -2 epochs", "torch_version",
     ["--resume", "{t}/state-epochs-negative", *SMALL], None,
     r"state\.json: field 'epochs_done' must be a non-negative integer, got -2" + STATE_FIX,
     lib_resume("state-epochs-negative"), CheckpointError),
    ("state-epochs-missing", "state.json without epochs_done", "torch_version",
     ["--resume", "{t}/state-epochs-missing", *SMALL], None,
     r"state\.json: field 'epochs_done' is missing" + STATE_FIX, lib_resume("state-epochs-missing"), CheckpointError),
    ("state-file-foreign", "state.json names another run's model file", "torch_version",
     ["--resume", "{t}/state-file-foreign", *SMALL], None,
     r"state\.json: field 'file' must be a plain name such as epoch-0002\.pt inside \S+/state-file-foreign/"
     r"checkpoints, got '\S+/run-torch/checkpoints/epoch-0001\.pt'" + STATE_FIX,
     lib_resume("state-file-foreign"), CheckpointError),
    ("state-history-null", "state.json with history: null", "torch_version",
     ["--resume", "{t}/state-history-null", *SMALL], None,
     r"state\.json: field 'history' must be an object with the lists loss, accuracy, val_loss, val_accuracy, "
     r"seconds, got 'None'" + STATE_FIX, lib_resume("state-history-null"), CheckpointError),
    ("state-history-short", "state.json with a 1-epoch history beside epoch 2", "torch_version",
     ["--resume", "{t}/state-history-short", *SMALL], None,
     r"state\.json: field 'history' list 'loss' has 1 entry, but field 'epochs_done' is 2" + STATE_FIX,
     lib_resume("state-history-short"), CheckpointError),
    ("state-not-object", "state.json holding a list", "torch_version", ["--resume", "{t}/state-not-object", *SMALL],
     None, r"state\.json holds list, not the JSON object this project writes; start afresh with --overwrite, or "
     r"choose another --out$", lib_resume("state-not-object"), CheckpointError),
    ("state-checkpoint-swapped", "another run's epoch-0002.pt copied over the run's own", "torch_version",
     ["--resume", "{t}/run-swapped", *SMALL], None,
     r"\S+/run-swapped/checkpoints/state\.json: field 'sha256' does not match epoch-0002\.pt: the checkpoint was "
     r"replaced or changed after the state was written" + STATE_FIX, lib_resume("run-swapped"), CheckpointError),
    ("fresh-run-into-a-run", "a fresh run into a folder that holds a run's checkpoints", "torch_version",
     [*SMALL, "--out", "{t}/run-fresh"], None,
     r"\S+/run-fresh already holds a run's checkpoints \(\S+/run-fresh/checkpoints/epoch-0001\.pt\); continue "
     r"that run with --resume \S+/run-fresh, or start afresh with --overwrite \(its checkpoint is kept until this "
     r"run saves its first epoch\), or choose another --out$",
     lambda t, fashion: resume_point(RunConfig(out=t / "run-fresh"), checkpoints(RunConfig(out=t / "run-fresh"),
                                                                               ".pt")), CheckpointError),
    ("resume-and-overwrite", "--resume and --overwrite together", "torch_version",
     ["--resume", "{t}/run-torch", "--overwrite", *SMALL], None,
     r"--resume continues a run and --overwrite starts afresh; give only one of them$",
     lib_config(out="x", resume=True, overwrite=True), ConfigError),
    ("out-root", "--out /", "torch_version", [*SMALL, "--out", "/"], None,
     r"the output folder / is the root of the file system; give the run a folder of its own with --out$",
     lambda t, fashion: make_out_dir(RunConfig(out="/")), ConfigError),
    ("path-newline", "--out names a file whose name holds a line break", "torch_version",
     [*SMALL, "--out", "{t}/new\nline"], None,
     r"the output folder \S+/new\\nline is a file; choose another --out$",
     lambda t, fashion: make_out_dir(RunConfig(out=t / "new\nline")), ConfigError),
    ("idx-fifo", "a FIFO where an IDX file belongs", "torch_version",
     ["--source", "{t}/idx-fifo", *SMALL, "--out", "{t}/out/{id}"], None,
     r"\S+/idx-fifo/train-labels-idx1-ubyte\.gz is not a regular file; install it with `apt-get install "
     r"dataset-fashion-mnist`", lib_load("{t}/idx-fifo"), DataError),
    ("idx-dims-overflow", "an IDX header whose dimensions (2^31, 2^31, 4) overflow int64", "torch_version",
     ["--source", "{t}/idx-dims-overflow", *SMALL, "--out", "{t}/out/{id}"], None,
     r"\S+/idx-dims-overflow/train-images-idx3-ubyte\.gz declares the shape \(2147483648, 2147483648, 4\) in its "
     r"header, expected \(60000, 28, 28\); delete it and get the dataset again$",
     lib_load("{t}/idx-dims-overflow"), DataError),
    ("idx-bomb", "a 12 MB labels file that inflates to 2.5 GB", "torch_version",
     ["--source", "{t}/idx-bomb", *SMALL, "--out", "{t}/out/{id}"], None,
     r"\S+/idx-bomb/train-labels-idx1-ubyte\.gz is truncated or padded: header says \(60000,\) = 60000 bytes of "
     r"data, found more than 60000; delete it and get the dataset again$", lib_load("{t}/idx-bomb"), DataError),
    ("hidden-size-huge", "--hidden-size 100000: the model cannot fit in memory", "torch_version",
     ["--hidden-size", "100000", "--out", "{t}/out/{id}"], None,
     r"this model and batch need at least [\d,.]+ GiB to train \([\d,]+ parameters with their "
     r"gradients and Adam's state, and the outputs of 3 layers of 100000 units over a batch of 8192\), more than the "
     r"[\d,.]+ GiB of this machine; choose a smaller --hidden-size, --num-layers or --batch-size$",
     lambda t, fashion: check_fits_in_memory(RunConfig(hidden_size=100000)), ConfigError),
    ("parity-seed-overflow", "python -m parity compare --seed 4294967295 --seeds 2", "parity",
     ["compare", "--seed", "4294967295", "--seeds", "2", "--out", "{t}/compare-seeds"], None,
     r"--seed 4294967295 with --seeds 2 would use seeds up to 4294967296, beyond the largest, 4294967295; lower "
     r"--seed or --seeds$",
     lambda t, fashion: compare_seeds(t), ConfigError),
    ("floatx-float16-train", "keras.json sets floatx float16 (train)", "keras_version",
     [*SMALL, "--out", "{t}/out/{id}"], {"KERAS_HOME": "{t}/keras-home-float16"},
     r"^python -m keras_version: error: \S+/keras-home-float16/keras\.json sets floatx=float16; this project trains in "
     r"float32: set it back to float32, or point KERAS_HOME to another folder$",
     lambda t, fashion: check_floatx(), ConfigError),
    ("floatx-float64-convert", "keras.json sets floatx float64 (convert)", "parity",
     ["convert", "{t}/run-torch/checkpoints/epoch-0001.pt", "{t}/out/{id}.keras"],
     {"KERAS_HOME": "{t}/keras-home-float64"},
     r"^python -m parity: error: \S+/keras-home-float64/keras\.json sets floatx=float64; this project trains in "
     r"float32: set it back to float32, or point KERAS_HOME to another folder$",
     lambda t, fashion: check_floatx(), ConfigError),
    ("parity-backend-twice", "python -m parity compare --backends JAX,jax", "parity",
     ["compare", "--backends", "JAX,jax", "--out", "{t}/out/{id}"], None,
     r"^python -m parity: error: --backends names jax twice \('JAX' and 'jax'\); give each backend once, and "
     r"--seeds K for more runs of one$", lambda t, fashion: parse_backends("JAX,jax"), UserError),
    ("loss-not-finite", "--learning-rate 1e37: the loss overflows in epoch 2", "torch_version",
     ["--subset", "2048", "--batch-size", "2048", "--epochs", "3", "--learning-rate", "1e37",
      "--out", "{t}/nan-torch"], None,
     r"training stopped: the loss became inf at epoch 2, step 1; the last good checkpoint is "
     r"\S+/nan-torch/checkpoints/epoch-0001\.pt \(try a lower --learning-rate\)", None, None),
]
CONVERT_ROUTES = (r"a forward that pools over time \(mean, max\) or does anything else is another model: convert the "
                  r"forward itself: save it with torch\.export\.save\(torch\.export\.export\(model, \(x,\)\), "
                  r"'model\.pt2'\) and convert the \.pt2, or call parity\.convert_module\(model, x\)$")
TABLE += [
    ("convert-readout-missing", "python -m parity convert of a bidirectional state dict, no --readout", "parity",
     ["convert", "{t}/convert/bidirectional.pt", "{t}/convert/out.keras", "--backend", "torch"], None,
     r"\S+/bidirectional\.pt holds weights only, which cannot show what your forward computes: pass --readout h_n "
     r"\(each direction's final state\) or --readout last-output \(out\[:, -1\]\), as your forward hands the "
     r"Linear; " + CONVERT_ROUTES, lib_convert("bidirectional.pt", "out.keras"), ConversionError),
    ("convert-nonlinearity-missing", "python -m parity convert of an nn.RNN state dict, no --nonlinearity", "parity",
     ["convert", "{t}/convert/rnn.pt", "{t}/convert/out.keras", "--backend", "torch", "--readout", "last-output"],
     None,
     r"\S+/rnn\.pt holds weights only, which cannot show what your forward computes: pass --nonlinearity tanh or "
     r"--nonlinearity relu, as your nn\.RNN was built \(the weights are the same for both\); " + CONVERT_ROUTES,
     lib_convert("rnn.pt", "out.keras", readout="last-output"), ConversionError),
    ("convert-dst-is-src", "python -m parity convert x.pt x.pt", "parity",
     ["convert", "{t}/convert/rnn.pt", "{t}/convert/rnn.pt", "--nonlinearity", "tanh", "--overwrite"], None,
     r"DST \S+/rnn\.pt is SRC \S+/rnn\.pt itself; converting a file onto itself would replace your model: choose "
     r"another DST$", lib_convert("rnn.pt", "rnn.pt", nonlinearity="tanh", overwrite=True), ConversionError),
    ("convert-dst-exists", "python -m parity convert onto an existing DST, no --overwrite", "parity",
     ["convert", "{t}/convert/rnn.pt", "{t}/convert/taken.keras", "--nonlinearity", "tanh"], None,
     r"DST \S+/taken\.keras already exists; pass --overwrite to replace it, or choose another DST$",
     lib_convert("rnn.pt", "taken.keras", nonlinearity="tanh"), ConversionError),
    ("convert-dst-folder-missing", "python -m parity convert into a folder that does not exist", "parity",
     ["convert", "{t}/convert/rnn.pt", "{t}/convert/new/out.keras", "--nonlinearity", "tanh"], None,
     r"the folder of DST, \S+/convert/new, does not exist; create it with `mkdir -p \S+/convert/new`, or choose "
     r"another DST$", lib_convert("rnn.pt", "new/out.keras", nonlinearity="tanh"), ConversionError),
    ("convert-stride-bomb", "a 2 kB state dict whose expand()ed tensor describes 30000 x 30000 floats", "parity",
     ["convert", "{t}/convert/stride-bomb.pt", "{t}/convert/out.keras", "--backend", "torch"], None,
     r"tensor 'rnn\.weight_ih_l0' in \S+/stride-bomb\.pt describes \(30000, 30000\) values, which brings the "
     r"file's tensors to 3,600,000,000 bytes, more than the 1,073,741,824 convert accepts; a stacked RNN of this "
     r"project's kind is far smaller: is this the right file\?$",
     lib_convert("stride-bomb.pt", "out.keras"), ConversionError),
]
ROWS = {row[0]: row for row in TABLE}


def parse_backends(text):
    from parity.compare import parse_backends
    return parse_backends(text)


def compare_seeds(t):
    from parity.compare import compare
    return compare(RunConfig(seed=MAX_SEED), ["jax"], 2, "faithful", t / "compare-seeds")


def fill(value, t, row_id=""):
    """A TABLE string with ``{t}`` (the folder of bad inputs) and ``{id}`` (the row's own output folder) filled in."""
    return value.format(t=t, id=row_id) if isinstance(value, str) else value


@pytest.fixture(scope="session")
def table_results(bad):
    """Every row of TABLE run once, concurrently: ``{id: CompletedProcess}``."""
    jobs = {row_id: (module, [fill(a, bad, row_id) for a in args], None,
                     {k: fill(v, bad, row_id) for k, v in (env or {}).items()})
            for row_id, _, module, args, env, *_ in TABLE}
    jobs["ctrl-c"] = lambda: cli.ctrl_c("torch_version", CTRL_C, bad / "ctrl-c")
    return cli.run_many(jobs, workers=3)


@pytest.mark.parametrize("row_id", list(ROWS))
def test_bad_input_table(row_id, table_results, bad, fashion, monkeypatch):
    _, _, module, _, env, pattern, lib_call, exc = ROWS[row_id]
    line = cli.one_error_line(table_results[row_id], module, pattern)
    for name, value in (env or {}).items():  # the library sees what the command line saw
        monkeypatch.setenv(name, fill(value, bad))
    if lib_call is not None:
        with pytest.raises(exc) as caught:
            lib_call(bad, fashion)
        assert line.split(": error: ", 1)[1] == one_line(str(caught.value))
    if row_id == "checkpoint-malicious":
        assert not (bad / "pwned").exists(), "loading the checkpoint ran the command in it"
    if row_id.startswith("convert-"):  # nothing written, nothing the user had changed
        assert sorted(p.name for p in (bad / "convert").iterdir()) == [
            "bidirectional.pt", "rnn.pt", "stride-bomb.pt", "taken.keras"]
        assert (bad / "convert" / "taken.keras").read_text() == "a file the user keeps\n"


def test_nonfinite_loss_keeps_the_last_good_checkpoint(table_results, bad):
    """The run that overflowed in epoch 2 kept epoch 1's checkpoint, and it loads."""
    import torch
    from torch_version.model import StackedRNN
    from torch_version.train import load_model
    state = cli.read_state(bad / "nan-torch")
    assert state["epochs_done"] == 1 and state["file"] == "epoch-0001.pt"
    assert len(state["history"]["loss"]) == 1 and np.isfinite(state["history"]["loss"]).all()
    model = load_model(bad / "nan-torch" / "checkpoints" / "epoch-0001.pt", StackedRNN())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not (bad / "nan-torch" / "metrics.json").exists()


def test_argparse_rows_have_library_counterparts():
    """What argparse refuses on the command line, RunConfig refuses in the library."""
    for kwargs, message in [(dict(epochs=0), "epochs must be a positive integer, got 0"),
                            (dict(batch_size=-3), "batch_size must be a positive integer, got -3"),
                            (dict(hidden_size=2.5), "hidden_size must be a positive integer, got 2.5"),
                            (dict(num_layers="three"), "num_layers must be a positive integer, got 'three'"),
                            (dict(epochs=True), "epochs must be a positive integer, got True"),
                            (dict(learning_rate=float("nan")), "learning_rate must be positive and at most 1e+37, got nan"),
                            (dict(seed=-1), "seed must be an integer from 0 to 4294967295, got -1"),
                            (dict(seed=2**32), "seed must be an integer from 0 to 4294967295, got 4294967296")]:
        with pytest.raises(ConfigError) as caught:
            RunConfig(**kwargs)
        assert str(caught.value) == message


def test_unknown_framework_and_backend():
    with pytest.raises(ConfigError, match=r"^unknown framework 'tf'; choose one of: torch, keras$"):
        check_choice("framework", "tf", FRAMEWORKS)
    with pytest.raises(ConfigError, match=r"^unknown framework 'tensorflow'; choose one of: torch, keras$"):
        label("tensorflow", "native")  # metrics.json is never written for a framework that does not exist
    from parity.compare import parse_backends
    with pytest.raises(UserError, match=r"unknown backend 'mxnet' in --backends"):
        parse_backends("jax,mxnet")


def test_memory_estimate_uses_the_batch_a_run_can_have():
    """--batch-size beyond the training examples makes one batch of all of them (2048 - 205 = 1843 here):
    the estimate is that batch's, so `--batch-size 20000000 --subset 2048` is not refused as needing 50 GiB."""
    from common.runs import real_batch, training_bytes
    huge = RunConfig(batch_size=20_000_000, subset=2048)
    assert real_batch(huge) == 1843 and real_batch(RunConfig(batch_size=20_000_000)) == 54_000
    assert training_bytes(huge) == training_bytes(RunConfig(batch_size=1843, subset=2048))
    assert training_bytes(huge)[1] < 2**30
    check_fits_in_memory(huge)  # no error


def test_floatx_set_by_a_program_is_refused():
    """keras.config.set_floatx('float64') in the caller's program: run.main refuses it, as keras.json's."""
    check_floatx("float32")
    with pytest.raises(ConfigError, match=r"^Keras's floatx is float64 \(keras\.config\.set_floatx\); this project "
                                          r"trains in float32: call keras\.config\.set_floatx\('float32'\) first$"):
        check_floatx("float64")


CTRL_C = ["--subset", "4096", "--batch-size", "2048", "--epochs", "50"]  # 2 steps per epoch


def test_ctrl_c_keeps_the_checkpoint_torch(table_results, bad):
    check_ctrl_c("torch_version", table_results["ctrl-c"], bad / "ctrl-c")


@pytest.mark.backend
def test_ctrl_c_keeps_the_checkpoint_keras(keras_table):
    out, results = keras_table
    check_ctrl_c("keras_version", results["ctrl-c"], out / "ctrl-c")


def check_ctrl_c(module, result, out):
    """SIGINT (Ctrl-C) after the first checkpoint: exit 130, one line, the checkpoint loads."""
    state = cli.read_state(out)
    cli.one_error_line(result, module, rf"interrupted; {re.escape(str(out / 'checkpoints' / state['file']))} is kept "
                                       rf"\(continue with --resume {re.escape(str(out))}\)$", code=130)
    assert 1 <= state["epochs_done"] < 50
    path = out / "checkpoints" / state["file"]
    if module == "torch_version":
        from torch_version.model import StackedRNN
        from torch_version.train import load_model
        load_model(path, StackedRNN())
    else:
        from keras_version.model import build_model
        from keras_version.train import compile_model, load_model
        loaded = load_model(path, compile_model(build_model()))
        assert int(loaded.optimizer.iterations) == 2 * state["epochs_done"]  # 3686 examples in batches of 2048


# --- Files nobody may read, files that would inflate to gigabytes, a full disk ---------------------------------

def test_unreadable_files_say_to_check_permissions(bad):
    """An IDX file, state.json or a checkpoint that cannot be opened: the line says so, and never advises
    deleting it.  (The tests run as root, who may read any file, so the opens are made to fail.)"""
    data_copy(bad / "idx-denied", {})
    config = RunConfig(subset=2048, batch_size=256, epochs=3)
    for name in ("run-state-denied", "run-checkpoint-denied"):
        fake_run(bad / name, config, ".pt", lambda p: p.write_bytes(b"weights"))
    cases = {
        "idx": (["--source", bad / "idx-denied", *SMALL, "--out", bad / "out" / "idx-denied"],
                "idx-denied/train-images-idx3-ubyte.gz"),
        "state": (["--resume", bad / "run-state-denied", *SMALL], "run-state-denied/checkpoints/state.json"),
        "checkpoint": (["--resume", bad / "run-checkpoint-denied", *SMALL],
                       "run-checkpoint-denied/checkpoints/epoch-0001.pt"),
    }
    results = cli.run_many({key: (lambda a=args, d=denied: cli.run_denied("torch_version", a, d))
                            for key, (args, denied) in cases.items()})
    for key, (args, denied) in cases.items():
        cli.one_error_line(results[key], "torch_version",
                           rf"^python -m torch_version: error: cannot read \S+/{re.escape(denied)} \(Permission "
                           r"denied\); check its permissions$")


def test_files_that_would_inflate_to_gigabytes_are_refused_with_little_memory(bad, tmp_path, keras_backend):
    """A 12 MB labels file that inflates to 2.5 GB, and a 2.3 MB .keras checkpoint whose config.json
    inflates to 2.2 GB: each refused with one line, the process never above 1.5 GB (peak RSS)."""
    from common.checkpoint import check_keras_archive
    config = RunConfig(subset=2048, batch_size=256, epochs=3)
    bomb = lambda p: cli.zip_bomb(p, "config.json", 2.2, {"metadata.json": b"{}", "model.weights.h5": b""})
    fake_run(tmp_path / "run-keras-bomb", config, ".keras", bomb)
    checkpoint = tmp_path / "run-keras-bomb" / "checkpoints" / "epoch-0001.keras"
    python = [cli.sys.executable, "-m"]
    (idx, idx_peak), (keras, keras_peak) = cli.run_many({
        "idx": lambda: cli.run_measured([*python, "torch_version", "train", "--source", str(bad / "idx-bomb"),
                                         *SMALL, "--out", str(tmp_path / "out")]),
        "keras": lambda: cli.run_measured([*python, "keras_version", "train", "--backend", keras_backend,
                                           "--resume", str(tmp_path / "run-keras-bomb"), *SMALL]),
    }).values()
    cli.one_error_line(idx, "torch_version", ROWS["idx-bomb"][5])
    line = cli.one_error_line(keras, "keras_version",
                              rf"^python -m keras_version: error: {re.escape(str(checkpoint))}: entry 'config\.json' "
                              r"would inflate to 2,348,810,240 bytes, more than the 16,777,216 allowed; the file is "
                              r"refused unopened$")
    print(f"\npeak RSS: IDX bomb {idx_peak / 2**20:.0f} MiB, .keras bomb {keras_peak / 2**20:.0f} MiB")
    assert idx_peak < 1.5e9 and keras_peak < 1.5e9
    with pytest.raises(CheckpointError) as caught:
        check_keras_archive(checkpoint)
    assert line.split(": error: ", 1)[1] == str(caught.value)


def on_a_full_disk(module: str, args, size: str, where: Path, backend: str | None = None) -> tuple:
    """Run the command line with --out on a tmpfs of ``size`` (a private mount: ``unshare``), then
    inspect what it left there; ``(result, report)``.  Skips where no mount namespace can be made."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("a full disk is simulated with a tmpfs in a private mount namespace (unshare -rm), "
                    "which this machine does not allow")
    inspect = """\
import json, sys
from pathlib import Path
from common.checkpoint import CheckpointDir
out = Path(sys.argv[1]); suffix = sys.argv[2]
report = {"files": sorted(str(p.relative_to(out)) for p in out.rglob("*"))}
state, path = CheckpointDir(out / "checkpoints", suffix).latest()  # validates state.json against the file
report["state"] = state
if suffix == ".pt":
    from torch_version.model import StackedRNN
    from torch_version.train import load_model
    load_model(path, StackedRNN())
else:
    from keras_version.model import build_model
    from keras_version.train import load_model
    report["iterations"] = int(load_model(path, build_model()).optimizer.iterations)
if (out / "metrics.json").exists():
    report["metrics"] = json.loads((out / "metrics.json").read_text())
print(json.dumps(report))
"""
    suffix = ".pt" if module == "torch_version" else ".keras"
    mount = where / "disk"
    mount.mkdir()
    command = " ".join(shlex.quote(str(a)) for a in cli.train_command(module, [*args, "--out", mount / "run"], backend))
    script = (f"mount -t tmpfs -o size={size} tmpfs {mount} || exit 99\n"
              f"{command} > {mount}.stdout 2> {mount}.stderr; echo $? > {mount}.rc\n"
              f"{shlex.quote(cli.sys.executable)} -c {shlex.quote(inspect)} {mount / 'run'} {suffix}\n")
    inspected = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=cli.ROOT, env=cli.cli_env(),
                               capture_output=True, text=True, timeout=600)
    if inspected.returncode == 99:
        pytest.skip(f"cannot mount a tmpfs here: {inspected.stderr.strip()}")
    assert inspected.returncode == 0, inspected.stderr[-3000:]
    result = subprocess.CompletedProcess(command, int(Path(f"{mount}.rc").read_text()),
                                         Path(f"{mount}.stdout").read_text(), Path(f"{mount}.stderr").read_text())
    return result, json.loads(inspected.stdout.splitlines()[-1])


@pytest.mark.parametrize("size, fails_on, epochs_kept", [("40k", r"checkpoints/epoch-0002\.pt", 1),
                                                         ("100k", r"predictions\.png", 3)], ids=["training", "end"])
def test_full_disk_is_one_line_and_leaves_nothing_half_written(size, fails_on, epochs_kept, tmp_path):
    """--out on a full file system: one line, exit 2; the last checkpoint is intact (state.json matches it,
    it loads), and no temporary or half-written file is left.  40k fills up at the second checkpoint,
    100k at the prediction grid after training."""
    result, report = on_a_full_disk("torch_version", ["--subset", "2048", "--batch-size", "256", "--epochs", "3"], size,
                                    tmp_path)
    cli.one_error_line(result, "torch_version",
                       rf"^python -m torch_version: error: no space left on the device to write \S+/run/{fails_on} "
                       r"\(No space left on device\); free some space, or choose another --out; \S+/run/checkpoints/"
                       rf"epoch-000{epochs_kept}\.pt is kept \(continue with --resume \S+/run\)$")
    assert report["state"]["epochs_done"] == epochs_kept
    assert not [f for f in report["files"] if ".tmp" in f], report["files"]
    assert "metrics.json" not in report["files"]  # written last: a run that did not finish has none


def test_full_disk_keras(keras_backend, tmp_path):
    """The same for a Keras run (its .keras writer, the same code on every backend; here the backend of this
    pytest process): 80k holds one checkpoint, not two."""
    result, report = on_a_full_disk("keras_version", ["--subset", "2048", "--batch-size", "1024", "--epochs", "2"],
                                    "80k", tmp_path, keras_backend)
    cli.one_error_line(result, "keras_version",
                       r"^python -m keras_version: error: no space left on the device to write \S+/run/checkpoints/"
                       r"epoch-0002\.keras \(No space left on device\); free some space, or choose another --out; "
                       r"\S+/run/checkpoints/epoch-0001\.keras is kept \(continue with --resume \S+/run\)$")
    assert report["state"]["epochs_done"] == 1 and report["iterations"] == 2
    assert not [f for f in report["files"] if ".tmp" in f], report["files"]


def test_run_cli_turns_every_way_of_stopping_into_one_line(capsys, monkeypatch):
    """What ``common.cli.run_cli`` prints and returns for each kind of exception (in-process)."""
    import errno
    from common.cli import DEBUG_ENV, run_cli
    monkeypatch.delenv(DEBUG_ENV, raising=False)

    def raising(e):
        def main():
            raise e
        return main
    cases = [
        (raising(CheckpointError("a\nb")), 2, r"prog: error: a\\nb"),
        (raising(MemoryError()), 2, r"prog: error: out of memory \(MemoryError\); choose a smaller --hidden-size, "
                                    r"--num-layers or --batch-size, or close other programs"),
        (raising(RuntimeError("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate memory: "
                              "you tried to allocate 400000000000 bytes.")), 2, r"prog: error: out of memory \(Runtime.*"),
        (raising(OSError(errno.ENOSPC, "No space left on device", "/full/x.png")), 2,
         r"prog: error: no space left on the device to write /full/x\.png \(No space left on device\); free some "
         r"space, or choose another --out"),
        (raising(KeyboardInterrupt("interrupted; x is kept")), 130, r"prog: interrupted; x is kept"),
        (raising(KeyboardInterrupt()), 130, r"prog: interrupted"),
        (raising(OSError(errno.EIO, "Input/output error")), 1, r"prog: internal error: OSError: .*"),
        (raising(ValueError("a bug\nsecond line")), 1, r"prog: internal error: ValueError: a bug \(set .*"),
    ]
    for main, code, pattern in cases:
        assert run_cli(main, "prog") == code
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and re.fullmatch(pattern, err.rstrip("\n")), err


# --- Library-level errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("bad_shape", [(4, 784), (4, 1, 28, 28), (4, 28, 27), (4, 28)])
def test_torch_model_refuses_other_shapes(bad_shape):
    import torch
    from torch_version.model import StackedRNN
    with pytest.raises(ShapeError) as caught:
        StackedRNN()(torch.zeros(bad_shape))
    assert str(caught.value) == (f"the model expects input of shape (batch, time, features) with 28 features, "
                                 f"got {bad_shape}; Fashion-MNIST images of shape (N, 28, 28) are already "
                                 "(batch, time=rows, features=columns)")


# the same on every backend: once, under torch
def test_keras_helpers_refuse_other_shapes(small_data):
    from keras_version.model import build_model
    from keras_version.train import compile_model, evaluate, predict, train
    model = compile_model(build_model())
    y = np.zeros(4, np.int64)
    for bad_shape in [(4, 784), (4, 1, 28, 28), (4, 28, 27), (4, 20, 28)]:
        x = np.zeros(bad_shape, np.float32)
        for call in (lambda: evaluate(model, x, y), lambda: predict(model, x)):
            with pytest.raises(ShapeError) as caught:
                call()
            assert str(caught.value) == (
                f"the model expects input of shape (batch, time, features) with 28 time steps and 28 features, "
                f"got {bad_shape}; Fashion-MNIST images of shape (N, 28, 28) are already "
                "(batch, time=rows, features=columns)")
    flat = type(small_data.train)(small_data.train.x.reshape(-1, 784), small_data.train.y, 256, 0)
    with pytest.raises(ShapeError, match=r"got \(None, 784\)"):
        train(model, flat, 1, (small_data.x_val, small_data.y_val), verbose=False)


def test_unknown_cell_in_both_builders():
    from torch_version.model import build_model
    with pytest.raises(ConfigError, match="^unknown cell 'transformer'; choose one of: rnn, gru, lstm$"):
        build_model(cell="transformer")


# the same on every backend: once, under torch
def test_unknown_cell_keras():
    from keras_version.model import build_model
    with pytest.raises(ConfigError, match="^unknown cell 'transformer'; choose one of: rnn, gru, lstm$"):
        build_model(cell="transformer")


@pytest.mark.parametrize("kwargs, message", [
    (dict(hidden_size=16), r"layer 'rnns\.0\.weight_ih_l0' has shape \(8, 28\) in \S+ but \(16, 28\) in the model"),
    (dict(cell="gru"), r"layer 'rnns\.0\.weight_ih_l0' has shape \(8, 28\) in \S+ but \(24, 28\) in the model"),
    (dict(num_layers=2), r"\S+ has layer 'rnns\.2\.bias_hh_l0', which the model lacks"),
    (dict(num_layers=4), r"\S+ has no weights for layer 'rnns\.3\.weight_ih_l0'"),
    (dict(bidirectional=True), r"\S+ has no weights for layer 'rnns\.0\.weight_ih_l0_reverse'"),
])
def test_torch_checkpoint_of_another_architecture_names_the_layer(kwargs, message, tmp_path):
    from torch_version.model import StackedRNN
    from torch_version.train import load_model, save_model
    path = save_model(tmp_path / "m.pt", StackedRNN())
    with pytest.raises(CheckpointError, match=message + ": it was saved from another architecture$"):
        load_model(path, StackedRNN(**kwargs))


@pytest.mark.backend
def test_keras_checkpoint_of_another_architecture_names_the_layer(tmp_path):
    from keras_version.model import build_model
    from keras_version.train import compile_model, load_model, save_model
    model = compile_model(build_model())
    model.optimizer.build(model.trainable_variables)  # as after training: Adam's moments are saved too
    path = save_model(tmp_path / "m.keras", model)
    for kwargs, message in [
        (dict(hidden_size=16), r"layer 'rnn_1' has weights \[\(28, 8\), \(8, 8\), \(8,\)\] in \S+ but "
                               r"\[\(28, 16\), \(16, 16\), \(16,\)\] in the model"),
        (dict(cell="gru"), r"\S+ has no layer 'gru_1'"),
        (dict(num_layers=2), r"\S+ has layer 'rnn_3', which the model lacks"),
        (dict(num_layers=4), r"\S+ has no layer 'rnn_4'"),
        (dict(bidirectional=True), r"\S+ has no layer 'bi_rnn_1'"),
    ]:
        with pytest.raises(CheckpointError, match=message + ": it was saved from another architecture$"):
            load_model(path, build_model(**kwargs))


def test_torch_load_refuses_a_malicious_pickle(tmp_path):
    """A pickle whose ``__reduce__`` runs a command: refused, and the command never runs."""
    import torch
    from torch_version.model import StackedRNN
    from torch_version.train import load_model
    marker = tmp_path / "pwned"
    evil = Evil(marker)
    assert pickle.loads(pickle.dumps(evil)) == 0 and marker.exists()  # the payload works when unpickled...
    marker.unlink()
    for name, write in [("torch-save.pt", lambda p: torch.save({"model": evil}, p)),
                        ("pickle-2.pt", lambda p: p.write_bytes(pickle.dumps({"model": evil}, protocol=2))),
                        ("pickle-4.pt", lambda p: p.write_bytes(pickle.dumps({"model": evil}, protocol=4)))]:
        write(tmp_path / name)
        with pytest.raises(CheckpointError, match=rf"^{re.escape(str(tmp_path / name))} (refers to the Python object "
                                                  r"\S*system; it is refused because loading never runs code|"
                                                  r"is not a readable PyTorch checkpoint)"):
            load_model(tmp_path / name, StackedRNN())
        assert not marker.exists(), f"loading {name} ran its command"  # ...but load_model never unpickles it


# the same on every backend: once, under torch
def test_keras_load_refuses_a_lambda_layer(tmp_path):
    """A .keras file whose config holds a Python lambda: refused under safe_mode, never run."""
    import keras
    from keras_version.train import load_model
    marker = tmp_path / "ran"
    fn = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")  # leaves a file each time it runs
    inputs = keras.Input((28, 28))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(keras.layers.Lambda(fn)(inputs))))
    model.save(tmp_path / "lambda.keras")
    assert marker.exists()  # building the model ran it
    marker.unlink()
    with pytest.raises(CheckpointError) as caught:
        load_model(tmp_path / "lambda.keras")
    assert str(caught.value) == (f"{tmp_path / 'lambda.keras'} holds Python code (e.g. a Lambda layer); it is refused "
                                 "because loading never runs code from a file (Keras safe_mode)")
    assert not marker.exists()


# the same on every backend: once, under torch
def test_conversion_between_mismatched_models():
    """``parity.torch_to_keras``/``keras_to_torch`` name both layers and leave the target untouched."""
    import keras
    from keras_version.model import build_model as build_keras
    from parity import keras_to_torch, torch_to_keras
    from torch_version.model import StackedRNN
    keras_model = build_keras(hidden_size=16)
    before = [keras.ops.convert_to_numpy(w).copy() for w in keras_model.weights]
    with pytest.raises(ConversionError, match=r"^torch_to_keras: torch layer 0 'rnns\.0' \(RNN: weight_ih_l0 \(8, 28\)"
                                              r".* vs keras layer 0 'rnn_1' \(SimpleRNN: .*\): hidden sizes differ: "
                                              r"torch hidden_size=8, keras units=16$"):
        torch_to_keras(StackedRNN(), keras_model)
    assert all(np.array_equal(a, keras.ops.convert_to_numpy(w)) for a, w in zip(before, keras_model.weights))
    torch_model = StackedRNN(cell="gru")
    with pytest.raises(ConversionError, match=r"^keras_to_torch: .*layer kinds differ: nn\.GRU maps to GRU, "
                                              r"not to SimpleRNN$"):
        keras_to_torch(build_keras(), torch_model)
    with pytest.raises(ConversionError, match=r"\(torch has 4 mappable layers, keras 3\)$"):
        torch_to_keras(StackedRNN(), build_keras(num_layers=2))


# --- Keras command-line rows, once per backend ---------------------------------------------------------

@pytest.fixture(scope="module")
def keras_table(bad, tmp_path_factory, keras_backend):
    """The Keras rows, run concurrently under this session's backend: ``(folder, {id: result})``."""
    tmp_path = tmp_path_factory.mktemp("keras-rows")
    from keras_version.model import build_model
    from keras_version.train import compile_model, save_model
    config = RunConfig(subset=4096, batch_size=2048, epochs=3)
    fake_run(tmp_path / "run-keras", config, ".keras", lambda p: save_model(p, compile_model(build_model())))
    jobs = {
        "resume-other-architecture": ("keras_version", ["--resume", tmp_path / "run-keras", *KERAS_SMALL,
                                                        "--hidden-size", "16"], keras_backend, None),
        "loss-not-finite": ("keras_version", ["--subset", "2048", "--batch-size", "2048", "--epochs", "3",
                                              "--learning-rate", "1e37", "--out", tmp_path / "nan"], keras_backend, None),
        "ctrl-c": lambda: cli.ctrl_c("keras_version", CTRL_C, tmp_path / "ctrl-c", keras_backend),
    }
    return tmp_path, cli.run_many(jobs, workers=3)


@pytest.mark.backend
def test_keras_command_line_rows(keras_table, bad):
    out, results = keras_table
    cli.one_error_line(results["resume-other-architecture"], "keras_version",
                       r"^python -m keras_version: error: \S+/run-keras/checkpoints/epoch-0001\.keras was trained "
                       r"with hidden_size=8, but this run asks for hidden_size=16; pass the same settings to resume "
                       r"it, or start afresh with another --out$")
    cli.one_error_line(results["loss-not-finite"], "keras_version",
                       r"training stopped: the loss became inf at epoch 2, step 1; the last good checkpoint is "
                       rf"{re.escape(str(out))}/nan/checkpoints/epoch-0001\.keras \(try a lower --learning-rate\)$")
    # The checkpoint of the last good epoch survives, loads, and holds that epoch's one step.
    from keras_version.model import build_model
    from keras_version.train import compile_model, load_model
    state = cli.read_state(out / "nan")
    assert state["epochs_done"] == 1 and np.isfinite(state["history"]["loss"]).all()
    loaded = load_model(out / "nan" / "checkpoints" / state["file"], compile_model(build_model()))
    assert int(loaded.optimizer.iterations) == 1
    assert all(np.isfinite(np.asarray(w)).all() for w in loaded.get_weights())


# --- Non-finite loss, injected: the library names the epoch and the step -------------------------------------

class NaNAt:
    """Batches that put a NaN in one batch of one epoch."""

    def __init__(self, batches, epoch: int, step: int):
        self.inner, self.at = batches, (epoch, step)
        self.x, self.y, self.batch_size = batches.x, batches.y, batches.batch_size

    def __len__(self):
        return len(self.inner)

    def order(self, epoch):
        return self.inner.order(epoch)

    def batch(self, epoch, step, order=None):
        x, y = self.inner.batch(epoch, step, order)
        if (epoch, step) == self.at:
            x = x.copy()
            x[0, 0, 0] = np.nan
        return x, y

    def epoch(self, epoch):
        order = self.order(epoch)
        for step in range(len(self)):
            yield self.batch(epoch, step, order)


def test_torch_nan_names_epoch_and_step(small_data, tmp_path):
    import torch
    from torch_version.model import StackedRNN
    from torch_version.train import load_model, save_model, train
    torch.manual_seed(0)
    model = StackedRNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ckpt = CheckpointDir(tmp_path, ".pt")
    with pytest.raises(NonFiniteLossError) as caught:
        train(model, NaNAt(small_data.train, epoch=1, step=2), 3, torch.nn.CrossEntropyLoss(), optimizer,
              (small_data.x_val, small_data.y_val), verbose=False,
              on_epoch_end=lambda e, h: ckpt.save(e + 1, lambda p: save_model(p, model, optimizer), {}))
    e = caught.value
    assert (e.epoch, e.step, np.isnan(e.value)) == (2, 3, True)
    assert str(e) == ("training stopped: the loss became nan at epoch 2, step 3; no epoch had completed, so there is "
                      "no checkpoint (try a lower --learning-rate)")  # run.main fills in e.checkpoint
    state, path = ckpt.latest()
    assert state["epochs_done"] == 1
    load_model(path, StackedRNN())


@pytest.mark.backend
def test_keras_nan_names_epoch_and_step(small_data, tmp_path):
    import keras
    from keras_version.model import build_model
    from keras_version.train import compile_model, load_model, save_model, train
    keras.utils.set_random_seed(0)
    model = compile_model(build_model())
    ckpt = CheckpointDir(tmp_path, ".keras")
    with pytest.raises(NonFiniteLossError) as caught:
        train(model, NaNAt(small_data.train, epoch=1, step=2), 3, (small_data.x_val, small_data.y_val), verbose=False,
              on_epoch_end=lambda e, h: ckpt.save(e + 1, lambda p: save_model(p, model), {}))
    e = caught.value
    assert (e.epoch, e.step, np.isnan(e.value)) == (2, 3, True)
    state, path = ckpt.latest()
    assert state["epochs_done"] == 1
    loaded = load_model(path, build_model())
    assert int(loaded.optimizer.iterations) == len(small_data.train)
    assert all(np.isfinite(np.asarray(w)).all() for w in loaded.get_weights())


def test_ctrl_c_during_training_waits_for_the_step_and_is_never_lost():
    """Inside ``interrupt.deferred`` the first SIGINT only sets a flag, raised by the next ``check``
    (or at the end of the block); a second SIGINT raises at once."""
    from common import interrupt
    with pytest.raises(KeyboardInterrupt):
        with interrupt.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            reached = True  # not raised here: in a GC callback it would have been swallowed
            interrupt.check()
    assert reached
    with pytest.raises(KeyboardInterrupt):
        with interrupt.deferred():
            os.kill(os.getpid(), signal.SIGINT)  # after the last check: raised when the block ends
    with pytest.raises(KeyboardInterrupt):
        with interrupt.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # the second one raises at once
            pytest.fail("not reached")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    interrupt.check()  # outside the block nothing is pending
