"""Training, evaluation, prediction and saving, in Keras 3 (any backend).

``fit`` reads the same ``common.data.Batches`` as the PyTorch loop, epoch ``e``'s
batches in epoch ``e`` (``fit_inputs``): through a ``tf.data`` pipeline on the
TensorFlow backend, a ``keras.utils.PyDataset`` on the others.  The reported
accuracy is Keras's ``"accuracy"``: micro, correct / total.
"""
from __future__ import annotations

import itertools
import math
import os
import time
from pathlib import Path

import keras
import numpy as np

from common import interrupt
from common.checkpoint import atomic_write, check_keras_archive
from common.data import read_ahead
from common.errors import CheckpointError, NonFiniteLossError, check_sequence_shape
from common.report import HISTORY_KEYS, empty_history, epoch_line


def compile_model(model: keras.Model, learning_rate: float = 1e-3, optimizer=None, *,
                  jit_compile: bool | str = "auto", steps_per_execution: int = 1) -> keras.Model:
    """Adam and sparse cross-entropy on logits: the Keras side of the notebook's recipe.

    ``optimizer`` replaces the default Adam (``python -m parity compare --mode lockstep``
    passes one that takes torch's steps).  ``jit_compile`` and ``steps_per_execution``
    are speed settings (``common/speed.py`` chooses them per backend)."""
    if keras.config.backend() == "torch":
        _one_torch_thread_on_cpu()
    model.compile(
        optimizer=optimizer if optimizer is not None else keras.optimizers.Adam(learning_rate=learning_rate),
        # from_logits=True because the model ends in Dense without softmax, as torch's Linear
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


def _one_torch_thread_on_cpu() -> None:
    """The torch backend on CPU computes with one thread unless ``OMP_NUM_THREADS`` asks for
    more, as the PyTorch version does (``torch_version.train.set_cpu_threads`` says why)."""
    import torch
    if not torch.cuda.is_available() and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)


class EpochBatches(keras.utils.PyDataset):
    """Serves the shared batches to ``fit`` as one endless stream: item ``i`` is step
    ``i % n`` of epoch ``start_epoch + i // n``, with ``n = len(batches)``.

    ``fit(steps_per_epoch=n)`` then reads exactly epoch ``e``'s batches in epoch ``e``.
    The item depends only on ``i``, never on when Keras calls ``on_epoch_end`` (it also
    calls it while building the model) or on how far tf.data prefetches.  Like
    ``Batches.epoch``, it gathers the next item in a background thread (``read_ahead``).
    """

    def __init__(self, batches, start_epoch: int = 0):
        super().__init__(workers=1, use_multiprocessing=False)
        self.batches, self.start_epoch = batches, start_epoch
        self._cached = (None, None)  # (epoch, order): one permutation per epoch, not per step
        self._ahead, self._next = None, None  # read_ahead's generator and the item it yields next

    @property
    def num_batches(self):
        return None  # endless; fit's steps_per_epoch marks the epochs

    def __getitem__(self, i: int):
        if not getattr(self.batches, "prefetch", False):
            return self._item(i)
        if i != self._next:  # not the item after the last one served: read ahead from item i
            if self._ahead is not None:
                self._ahead.close()  # waits for its background gather to finish
            self._ahead, self._next = read_ahead(self._item, itertools.count(i)), i
        self._next += 1
        return next(self._ahead)

    def _item(self, i: int):
        epoch, step = divmod(i, len(self.batches))
        epoch += self.start_epoch
        if self._cached[0] != epoch:
            self._cached = (epoch, self.batches.order(epoch))
        return self.batches.batch(epoch, step, self._cached[1])


def tf_dataset(produce, count: int | None, feature_shape: tuple):
    """``produce(0), produce(1), ...`` (``count`` items, or endless if None) as a ``tf.data`` pipeline.

    Each ``(x, y)`` item is still built by NumPy code (through ``tf.numpy_function``), in
    order, one at a time; ``prefetch(1)`` builds the next one while a step runs, as
    ``read_ahead`` does.  Keras reads a ``tf.data.Dataset`` natively on the TensorFlow
    backend, without the Python generator and the extra copy of its ``PyDataset``
    adapter, and, unlike arrays, without copying the whole array into a new pipeline
    each time it iterates (``fit(x, y)`` does that every epoch, for the validation set too).
    """
    import tensorflow as tf

    def fetch(i):
        x, y = tf.numpy_function(lambda i: produce(int(i)), [i], (tf.float32, tf.int64))
        x.set_shape((None, *feature_shape))  # (batch, time, features)
        y.set_shape((None,))
        return x, y

    ids = tf.data.Dataset.counter() if count is None else tf.data.Dataset.range(count)
    return ids.map(fetch).prefetch(1)


def fit_inputs(batches, validation, start_epoch: int = 0) -> dict:
    """What ``fit`` reads, for ``fit(**fit_inputs(...))``: epoch ``e``'s batches in epoch ``e``, and
    the validation set ``(x_val, y_val)`` in batches of the same size."""
    n, size = len(batches), batches.batch_size
    x_val, y_val = validation
    if keras.config.backend() != "tensorflow":
        return {"x": EpochBatches(batches, start_epoch), "steps_per_epoch": n,
                "validation_data": (x_val, y_val), "validation_batch_size": size}  # else batches of 32
    stream = EpochBatches(batches, start_epoch)
    x_val, y_val = np.ascontiguousarray(x_val, np.float32), np.asarray(y_val, np.int64)
    return {"x": tf_dataset(stream._item, None, batches.x.shape[1:]), "steps_per_epoch": n,
            "validation_data": tf_dataset(lambda i: (x_val[i * size:(i + 1) * size], y_val[i * size:(i + 1) * size]),
                                          -(-len(x_val) // size), x_val.shape[1:])}


class _EpochEnd(keras.callbacks.Callback):
    """Records the history in the torch side's format, times epochs, stops on NaN."""

    def __init__(self, epochs, history, on_epoch_end, verbose):
        super().__init__()
        self.epochs, self.history, self.on_epoch_end_fn, self.verbose = epochs, history, on_epoch_end, verbose

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.started = epoch, time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        value = float(logs["loss"])  # the running mean: it turns non-finite with the first bad step
        if not math.isfinite(value):
            raise NonFiniteLossError(self.epoch + 1, batch + 1, value)
        interrupt.check()

    def on_epoch_end(self, epoch, logs=None):
        for key in HISTORY_KEYS:
            self.history[key].append(float(logs[key]))
        self.history["seconds"].append(time.perf_counter() - self.started)
        if self.on_epoch_end_fn is not None:
            self.on_epoch_end_fn(epoch, self.history)
        if self.verbose:
            print(epoch_line(epoch, self.epochs, self.history), flush=True)


@interrupt.deferring  # Ctrl-C stops after the current step (common/interrupt.py)
def train(model, batches, epochs, validation, *, start_epoch=0, history=None, on_epoch_end=None,
          verbose=True) -> dict:
    """Train a compiled model for ``epochs - start_epoch`` epochs; return the history dict.

    The loss, optimizer and metric were given to ``compile_model``; ``validation``
    is ``(x_val, y_val)``.  ``on_epoch_end(epoch, history)`` runs after each epoch.
    """
    history = history if history is not None else empty_history()
    check_input_shape(model, (None, *batches.x.shape[1:]))
    model.fit(
        **fit_inputs(batches, validation, start_epoch),
        epochs=epochs,
        initial_epoch=start_epoch,
        callbacks=[_EpochEnd(epochs, history, on_epoch_end, verbose)],
        shuffle=False,  # the shared batches are already shuffled, per epoch, from the seed
        verbose=0,
    )
    return history


def check_input_shape(model, shape) -> None:
    """Raise ShapeError unless ``shape`` is (batch, time, features) as ``model`` declares them."""
    check_sequence_shape(shape, model.input_shape[-1], time_steps=model.input_shape[1])


def evaluate(model, x, y, batch_size=8192):
    """Mean loss and accuracy over ``(x, y)``."""
    check_input_shape(model, np.shape(x))
    result = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    return float(result["loss"]), float(result["accuracy"])


def predict(model, x, batch_size=8192) -> np.ndarray:
    """Predicted class of each example, as a NumPy array."""
    check_input_shape(model, np.shape(x))
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0)).argmax(axis=1)


def save_model(path: Path, model) -> Path:
    """Save the whole model (architecture, weights, optimizer state) atomically as .keras."""
    return atomic_write(Path(path), lambda tmp: model.save(tmp))


def state_pairs(source: keras.Model, target: keras.Model) -> list:
    """``(target variable, source variable)`` for every weight and optimizer variable of two compiled
    models of the same architecture.  Builds an optimizer not built yet (``fit`` would build it the
    same way, with zero moments), so that its moments are in the list before training starts."""
    for model in (source, target):
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    sizes = [(len(m.weights), len(m.optimizer.variables)) for m in (source, target)]
    if sizes[0] != sizes[1]:
        raise CheckpointError(f"the two models have different numbers of variables: {sizes[0]} and {sizes[1]}")
    pairs = list(zip(target.weights, source.weights)) + list(zip(target.optimizer.variables,
                                                                  source.optimizer.variables))
    # Paired by position, and checked by kind and shape: a clone's paths, and the optimizer's variable
    # names made from them, may differ (a Bidirectional's inner layers are named afresh).
    for i, (mine, theirs) in enumerate(pairs):
        named_alike = i >= len(target.weights) or mine.name == theirs.name
        if not named_alike or tuple(mine.shape) != tuple(theirs.shape):
            raise CheckpointError(f"variable {theirs.path} {tuple(theirs.shape)} has no counterpart "
                                  f"(found {mine.path} {tuple(mine.shape)})")
    return pairs


def copy_state(source: keras.Model, target: keras.Model) -> keras.Model:
    """Copy the weights and the optimizer state of ``source`` into ``target``, exactly.

    A resumed run loads its checkpoint and copies it into the model it built, so that
    the run's own speed settings hold (the file keeps those it was saved with)."""
    for mine, theirs in state_pairs(source, target):
        mine.assign(_copy_of(theirs))
    return target


def _copy_of(variable):
    """A variable's value that later training steps cannot change or free.  Assigning copies it on
    torch and TensorFlow; JAX's train step donates (frees) the buffers it replaces, so copy there."""
    value = variable.value
    return keras.ops.copy(value) if keras.config.backend() == "jax" else value


def snapshotter(model: keras.Model):
    """``take()``: the weights and optimizer state as they are now, copied into a twin model (same
    layers, same compile settings); it returns what saves the twin later, from another thread
    (``common.checkpoint_writer``), while training goes on.  The twin is made once; the writer
    waits for one save to end before it takes the next snapshot."""
    twin = keras.models.clone_model(model)  # same config and layer names, its own variables
    twin.compile_from_config(model.get_compile_config())
    pairs = state_pairs(model, twin)

    def take():
        for mine, theirs in pairs:
            mine.assign(_copy_of(theirs))
        return lambda path: save_model(path, twin)
    return take


def load_model(path: Path, model=None) -> keras.Model:
    """Load a .keras file with ``safe_mode=True`` (no code from the file runs).

    With ``model`` given, check that every layer matches it, name the first that
    does not, and return the loaded (compiled) model in its place.
    """
    path = Path(path)
    check_keras_archive(path)  # sizes and compression of every entry, before Keras reads one
    try:
        loaded = keras.models.load_model(path, safe_mode=True)
    except Exception as e:
        if "safe_mode" in str(e):  # e.g. a Lambda layer: Python code that safe_mode refuses to deserialize
            raise CheckpointError(f"{path} holds Python code (e.g. a Lambda layer); it is refused because loading "
                                  "never runs code from a file (Keras safe_mode)") from None
        raise CheckpointError(f"{path} is not a readable Keras model ({type(e).__name__}); "
                              "was it written by this project?") from None
    if model is not None:
        expected = {layer.name: layer for layer in model.layers if layer.weights}
        found = {layer.name: layer for layer in loaded.layers if layer.weights}
        for name, layer in expected.items():
            if name not in found:
                raise CheckpointError(f"{path} has no layer {name!r}: it was saved from another architecture")
            want = [tuple(w.shape) for w in layer.weights]
            got = [tuple(w.shape) for w in found[name].weights]
            if want != got:
                raise CheckpointError(f"layer {name!r} has weights {got} in {path} but {want} in the model: "
                                      "it was saved from another architecture")
        extra = sorted(set(found) - set(expected))
        if extra:
            raise CheckpointError(f"{path} has layer {extra[0]!r}, which the model lacks: "
                                  "it was saved from another architecture")
    return loaded
