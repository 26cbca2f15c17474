"""Run configuration: one small frozen dataclass, passed explicitly to both versions.

The defaults are the notebook's recipe: three recurrent layers of 8 units,
batch 8192, 64 epochs, Adam with learning rate 1e-3, 10 % held out for validation.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
from pathlib import Path

from common.errors import ConfigError

CELLS = ("rnn", "gru", "lstm")
NONLINEARITIES = ("tanh", "relu")  # nn.RNN's choices; GRU and LSTM cells always use tanh
# What the classifier reads of a bidirectional stack: "h_n", each direction's final state (the forward
# direction's last step beside the backward direction's first step), or "last-output", out[:, -1] (both
# directions at the last step: the backward direction has read one step there).
READOUTS = ("h_n", "last-output")
BACKENDS = ("torch", "jax", "tensorflow")
FRAMEWORKS = ("torch", "keras")
MAX_SEED = 2**32 - 1  # NumPy's legacy seed, which keras.utils.set_random_seed sets, stops here
MAX_LEARNING_RATE = 1e37  # Adam's first step is 10 x the rate; torch refuses one beyond float32 (3.4e38)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    epochs: int = 64
    batch_size: int = 8192
    hidden_size: int = 8
    num_layers: int = 3
    cell: str = "rnn"
    bidirectional: bool = False
    seed: int = 0
    subset: int | None = None  # train on the first N training examples
    val_fraction: float = 0.1
    learning_rate: float = 1e-3
    source: str = "auto"
    out: Path | None = None
    resume: bool = False
    overwrite: bool = False  # start afresh in a folder that holds another run's checkpoints
    # Keras speed settings; None takes the backend's default from common/speed.py
    unroll: bool | None = None
    jit_compile: bool | str | None = None
    steps_per_execution: int | None = None

    def __post_init__(self):
        for name in ("epochs", "batch_size", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed must be an integer from 0 to {MAX_SEED}, got {self.seed!r}")
        check_choice("cell", self.cell, CELLS)
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must lie strictly between 0 and 1, got {self.val_fraction!r}")
        least = min_subset(self.val_fraction)
        if self.subset is not None and (isinstance(self.subset, bool) or not isinstance(self.subset, int)
                                        or self.subset < least):
            raise ConfigError(f"subset must be an integer of at least {least}, so that the "
                              f"{100 * self.val_fraction:g} % held out for validation is one example or more, "
                              f"got {self.subset!r}")
        if not 0 < self.learning_rate <= MAX_LEARNING_RATE:
            raise ConfigError(f"learning_rate must be positive and at most {MAX_LEARNING_RATE:g}, "
                              f"got {self.learning_rate!r}")
        if self.steps_per_execution is not None and (isinstance(self.steps_per_execution, bool) or not isinstance(
                self.steps_per_execution, int) or self.steps_per_execution < 1):
            raise ConfigError(f"steps_per_execution must be a positive integer, got {self.steps_per_execution!r}")
        if self.jit_compile not in (None, True, False, "auto"):
            raise ConfigError(f"jit_compile must be True, False or 'auto', got {self.jit_compile!r}")
        if self.resume and self.out is None:
            raise ConfigError("resume needs the output folder of the run to continue (--out DIR)")
        if self.resume and self.overwrite:
            raise ConfigError("--resume continues a run and --overwrite starts afresh; give only one of them")

    def model_kwargs(self) -> dict:
        """The architecture arguments, shared by ``StackedRNN`` and ``build_model``."""
        return dict(hidden_size=self.hidden_size, num_layers=self.num_layers,
                    cell=self.cell, bidirectional=self.bidirectional)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["out"] = str(self.out) if self.out is not None else None
        return d


def min_subset(val_fraction: float) -> int:
    """The fewest examples whose split (``common.data.split_indices``) leaves one or more on each side."""
    return next(n for n in itertools.count(2) if 1 <= round(n * val_fraction) < n)


def check_choice(what: str, value: str, choices) -> str:
    """Return ``value`` if it is one of ``choices``; raise a one-line ConfigError otherwise."""
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")
    return value


def check_nonlinearity(cell: str, nonlinearity: str) -> str:
    """``nonlinearity`` if ``cell`` can use it (nn.RNN: tanh or relu; GRU, LSTM: tanh only)."""
    check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    if cell != "rnn" and nonlinearity != "tanh":
        raise ConfigError(f"nonlinearity={nonlinearity!r} applies to the rnn cell only; {cell} cells use tanh")
    return nonlinearity


def keras_json() -> Path:
    """The ``keras.json`` Keras reads at import: ``$KERAS_HOME/keras.json``, else ``~/.keras/keras.json``
    (``/tmp/.keras`` when the home folder is not writable), as ``keras.src.backend.config`` finds it."""
    if "KERAS_HOME" in os.environ:
        home = Path(os.environ["KERAS_HOME"])
    else:
        base = os.path.expanduser("~")
        home = Path(base if os.access(base, os.W_OK) else "/tmp") / ".keras"
    return home.expanduser() / "keras.json"


# What Keras accepts in keras.json (keras/src/backend/config.py, read at import)
KERAS_JSON_BACKENDS = ("tensorflow", "jax", "torch", "numpy", "openvino")
IMAGE_DATA_FORMATS = ("channels_last", "channels_first")
MAX_KERAS_JSON = 1 << 20  # Keras writes about 120 bytes


def check_keras_json(path: Path | None = None) -> None:
    """Refuse, with one line naming the file and the key (ConfigError), a keras.json that Keras
    would stop on at import with an internal error, or that would change this project's numbers.

    Keras reads ``$KERAS_HOME/keras.json`` (``keras_json()``) when it is first imported and stops
    there with an ``AttributeError`` for a JSON list, and a bare ``ValueError`` (an empty
    ``AssertionError`` in older releases) for a bad ``epsilon``, ``floatx`` or
    ``image_data_format``; an unknown ``backend`` fails later, when Keras imports it.  So the
    command lines call this before anything imports Keras (through :func:`check_floatx`).
    A file that is not JSON at all is left alone: Keras ignores it and uses its defaults.
    """
    path = keras_json() if path is None else Path(path)
    how = "or point KERAS_HOME to another folder"
    if not os.path.exists(path):  # Keras writes a fresh one
        return
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_KERAS_JSON + 1)
    except OSError as e:
        raise ConfigError(f"cannot read {path} ({e.strerror}), which Keras reads when it is imported: fix its "
                          f"permissions or delete it, {how}") from None
    if len(raw) > MAX_KERAS_JSON:
        raise ConfigError(f"{path} is larger than {MAX_KERAS_JSON:,} bytes, which no keras.json needs: delete it "
                          f"(Keras writes a fresh one), {how}")
    try:
        config = json.loads(raw)
    except (ValueError, RecursionError):
        return  # Keras ignores a file it cannot parse, and so does the project
    if not isinstance(config, dict):
        kind = {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(config), "number")
        raise ConfigError(f"{path} holds a JSON {kind}, not the object of settings Keras expects (such as "
                          f'{{"floatx": "float32", "epsilon": 1e-07}}): fix it or delete it, {how}')
    value = config.get("floatx", "float32")
    if value != "float32":
        raise ConfigError(f"{path} sets floatx={value}; this project trains in float32: set it back to "
                          f"float32, {how}")
    value = config.get("epsilon", 1e-07)
    if isinstance(value, bool) or not isinstance(value, float) or not 0 < value < float("inf"):
        raise ConfigError(f"{path} sets epsilon={json.dumps(value)}; Keras needs a positive number written with a "
                          f"decimal point or an exponent, such as 1e-07: set it so or remove the key, {how}")
    value = config.get("backend", "jax")
    if value not in KERAS_JSON_BACKENDS:
        raise ConfigError(f"{path} sets backend={json.dumps(value)}, which Keras does not know; set it to one of "
                          f"{', '.join(BACKENDS)} or remove the key, {how}")
    value = config.get("image_data_format", "channels_last")
    if value not in IMAGE_DATA_FORMATS:
        raise ConfigError(f"{path} sets image_data_format={json.dumps(value)}; Keras accepts "
                          f"{' or '.join(IMAGE_DATA_FORMATS)}: set one or remove the key, {how}")


def check_floatx(floatx: str | None = None) -> None:
    """Refuse a Keras ``floatx`` other than float32 with one line (ConfigError).

    Keras takes ``floatx`` from keras.json at import: float16 made the models fail deep in
    the recurrent layers, and float64 trained the torch backend silently in float64, with
    other losses and a float64 model file.  Without ``floatx``, this checks keras.json,
    every key of it (:func:`check_keras_json`), before Keras is imported: the command lines
    (train, convert, compare) call it first.  With ``floatx``, it checks the value Keras
    holds now (``keras.config.floatx()``, which a program may have set).
    """
    if floatx is None:
        check_keras_json()
    elif floatx != "float32":
        raise ConfigError(f"Keras's floatx is {floatx} (keras.config.set_floatx); this project trains in float32: "
                          "call keras.config.set_floatx('float32') first")
