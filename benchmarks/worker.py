"""One benchmark path in its own process, driven by ``benchmarks.epoch_time``.

Keras reads ``KERAS_BACKEND`` once per process, so every path runs in a process of its
own.  The parent writes one JSON command per line on stdin; the worker answers one
JSON line per command on its stdout (everything else it prints goes to stderr):

    {"cmd": "setup", "cell": "rnn", "hidden_size": 8, "warmup_epochs": 1, "timed_epochs": 6}
        -> answered after the warm-up epochs: device, settings, versions
    {"cmd": "run", "epochs": 2}
        -> answered after 2 more epochs: their seconds, data seconds, CPU seconds, peak RSS
    {"cmd": "quit"}

A path trains all its epochs in one call of the project's ``train`` (one ``fit`` for
Keras), as a user's run does; between ``run`` commands it waits inside its
end-of-epoch hook, so the parent can interleave the paths.  Everything timed is the
project's own code: ``prepare_data`` and ``Batches``, ``build_model``, and ``train``
(the PyTorch loop) or ``compile_model`` + ``train`` (Keras ``fit``).  The epoch
seconds are the ones ``train`` records: the training steps plus the validation pass,
what a user sees on each epoch line.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import sys
import threading
import time
import traceback

import numpy as np

PATHS = ("notebook", "torch", "keras-torch", "keras-jax", "keras-tensorflow")
LABELS = {
    "notebook": "Notebook pipeline (per-example DataLoader) + PyTorch",
    "torch": "PyTorch (native)",
    "keras-torch": "Keras 3, torch backend",
    "keras-jax": "Keras 3, JAX backend",
    "keras-tensorflow": "Keras 3, TensorFlow backend",
}


def backend_of(path: str) -> str | None:
    """The Keras backend of a path, or None for the native PyTorch paths."""
    return path.split("-", 1)[1] if path.startswith("keras-") else None


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, all threads together."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> float:
    """High-water mark of this process's resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- Timing the data pipeline -------------------------------------------------------

class DataClock:
    """Time the data pipeline costs an epoch.

    ``wait``: seconds the training loop, on the main thread, spent getting its next
    batch.  ``validation``: seconds of the epoch's validation pass.  ``background``: CPU seconds other threads spent gathering batches (the
    project's read-ahead thread, tf.data's threads); on a busy 2-core machine they
    are taken from the training, so the data share counts both.
    """

    def __init__(self):
        self.wait = self.background = self.validation = 0.0

    def take(self) -> tuple[float, float]:
        taken = (self.wait, self.background)
        self.wait = self.background = 0.0
        return taken

    def take_validation(self) -> float:
        taken, self.validation = self.validation, 0.0
        return taken

    def timed_validation(self, evaluate):
        """``evaluate`` that adds its wall seconds to ``validation`` (the validation pass of an epoch)."""
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return evaluate(*args, **kwargs)
            finally:
                self.validation += time.perf_counter() - started
        return timed


def on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class WaitTimed:
    """Wraps a batch source for the PyTorch loop, timing each ``next()`` of ``epoch(e)``."""

    def __init__(self, batches, clock: DataClock):
        self.batches, self.clock, self.batch_size = batches, clock, batches.batch_size

    def __len__(self):
        return len(self.batches)

    def epoch(self, epoch: int):
        iterator = iter(self.batches.epoch(epoch))
        while True:
            started = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                self.clock.wait += time.perf_counter() - started
            yield item


def time_batch_sources(clock: DataClock, keras: bool) -> None:
    """Time the project's batch sources wherever they run.

    ``EpochBatches.__getitem__`` on the main thread is what ``fit`` waits for (torch and
    JAX backends); ``Batches.batch`` off the main thread is background work (read-ahead,
    tf.data), counted in CPU seconds.
    """
    from common.data import Batches
    batch = Batches.batch

    def timed_batch(self, *args, **kwargs):
        if on_main_thread():
            return batch(self, *args, **kwargs)
        started = time.thread_time()
        try:
            return batch(self, *args, **kwargs)
        finally:
            clock.background += time.thread_time() - started

    Batches.batch = timed_batch
    if not keras:
        return
    from keras_version import train as keras_train
    getitem = keras_train.EpochBatches.__getitem__

    def timed_getitem(self, index):
        if not on_main_thread():
            return getitem(self, index)
        started = time.perf_counter()
        try:
            return getitem(self, index)
        finally:
            clock.wait += time.perf_counter() - started

    keras_train.EpochBatches.__getitem__ = timed_getitem


# --- The notebook's per-example pipeline ------------------------------------------------

def to_tensor(picture):
    """torchvision's ``ToTensor()`` on a mode-"L" PIL image: (1, H, W) float32 in [0, 1]."""
    import torch
    pixels = torch.from_numpy(np.array(picture, np.uint8, copy=True))
    pixels = pixels.view(picture.size[1], picture.size[0], 1).permute(2, 0, 1).contiguous()
    return pixels.to(torch.float32).div(255)


def normalize(tensor, mean=(0.5,), std=(0.5,)):
    """torchvision's ``Normalize(mean, std)``: per channel, on a copy."""
    import torch
    mean = torch.as_tensor(mean, dtype=tensor.dtype).view(-1, 1, 1)
    std = torch.as_tensor(std, dtype=tensor.dtype).view(-1, 1, 1)
    return tensor.clone().sub_(mean).div_(std)


def notebook_dataset(images: np.ndarray, labels: np.ndarray):
    """A ``torchvision.datasets.FashionMNIST`` look-alike: one PIL image and one int per item."""
    import torch
    from PIL import Image

    class FashionMNISTLike(torch.utils.data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, index):
            picture = Image.fromarray(images[index])  # uint8 (28, 28) -> mode "L", as torchvision does
            return normalize(to_tensor(picture)), int(labels[index])

    return FashionMNISTLike()


class NotebookBatches:
    """The notebook's ``DataLoader(batch_size, shuffle=True)`` as a batch source for ``train``."""

    def __init__(self, images, labels, batch_size: int, seed: int):
        import torch
        self.batch_size, self.num_examples = batch_size, len(images)
        self.loader = torch.utils.data.DataLoader(notebook_dataset(images, labels), batch_size=batch_size,
                                                  shuffle=True, generator=torch.Generator().manual_seed(seed))

    def __len__(self):
        return len(self.loader)

    def epoch(self, epoch: int):
        for x, y in self.loader:  # (batch, 1, 28, 28) float32, (batch,) int64
            yield x.view(-1, 28, 28).numpy(), y.numpy()  # the notebook's images.reshape(-1, 28, 28)


# --- One path --------------------------------------------------------------------

class Worker:
    def __init__(self, path: str, settings: dict):
        self.path, self.settings = path, dict(settings)
        self.backend = backend_of(path)
        self.clock = DataClock()
        self.arrays = None
        if self.backend is not None:
            import keras  # noqa: F401  (KERAS_BACKEND was set by the parent)
            time_batch_sources(self.clock, keras=True)
        elif path == "torch":
            time_batch_sources(self.clock, keras=False)  # the read-ahead thread's work
        if self.backend == "tensorflow" and self.settings.get("tf_threads"):
            import tensorflow as tf
            tf.config.threading.set_intra_op_parallelism_threads(int(self.settings["tf_threads"]))
            tf.config.threading.set_inter_op_parallelism_threads(int(self.settings["tf_threads"]))

    # Setup ---------------------------------------------------------------------------
    def setup(self, channel: "Channel", cell: str = "rnn", hidden_size: int = 8, subset: int | None = None,
              train_batches: int | None = None, warmup_epochs: int = 1, timed_epochs: int = 1,
              seed: int = 0) -> None:
        """Build data and model, then train ``warmup_epochs + timed_epochs`` epochs in one run.

        The answer to ``setup`` goes out after the warm-up; each ``run`` command is then
        answered from inside the training loop, so a path trains in one ``train`` call
        (one ``fit``), as a user's run does, while the parent interleaves the paths.
        """
        from common.config import RunConfig
        from common.data import Batches, load_fashion_mnist, prepare_data, split_indices

        started = time.perf_counter()
        if self.arrays is None:
            self.arrays = load_fashion_mnist()
        self.config = config = RunConfig(cell=cell, hidden_size=hidden_size, subset=subset, seed=seed)
        data = prepare_data(config, arrays=self.arrays)
        train, x_val, y_val = data.train, data.x_val, data.y_val
        if train_batches is not None:
            # A slice of whole batches and a validation set in the same proportion: the
            # epoch time then scales to the full epoch by the number of examples.
            n = min(train_batches * config.batch_size, train.num_examples)
            n_val = max(1, round(len(x_val) * n / train.num_examples))
            train = Batches(train.x[:n], train.y[:n], config.batch_size, config.seed)
            x_val, y_val = x_val[:n_val], y_val[:n_val]
        self.scale = data.train.num_examples / train.num_examples
        if self.settings.get("prefetch") is not None:  # an experiment: read-ahead on or off
            train.prefetch = bool(self.settings["prefetch"])
        if self.path == "notebook":
            (x_train, y_train), _ = self.arrays
            if subset is not None:
                x_train, y_train = x_train[:subset], y_train[:subset]
            train_idx, _ = split_indices(len(x_train), config.val_fraction, config.seed)
            train_idx = train_idx[:train.num_examples]
            train = NotebookBatches(x_train[train_idx], y_train[train_idx].astype(np.int64),
                                    config.batch_size, config.seed)
        self.train_examples = train.num_examples
        self.batches, self.validation = train, (x_val, y_val)
        self.model = self.build()
        info = {"train_examples": self.train_examples, "scale": self.scale, "device": self.device(),
                "settings": self.effective_settings(), "versions": versions()}
        self.train_all(channel, warmup_epochs, timed_epochs, started, info)

    def train_all(self, channel, warmup_epochs: int, timed_epochs: int, started: float, info: dict) -> None:
        total = warmup_epochs + timed_epochs
        segment = {"first": 0, "end": warmup_epochs, "data": [], "cpu": [], "validation": [], "cpu_mark": cpu_seconds()}

        def next_segment(done: int) -> None:
            command = channel.command()
            if command.get("cmd") == "quit":
                raise SystemExit(0)
            if command.get("cmd") != "run" or done + command.get("epochs", 0) > total:
                raise RuntimeError(f"expected a run of at most {total - done} epochs, got {command}")
            segment.update(first=done, end=done + command["epochs"], data=[], cpu=[], validation=[])
            self.clock.take()
            self.clock.take_validation()
            segment["cpu_mark"] = cpu_seconds()

        def on_epoch_end(epoch, history):
            now = cpu_seconds()
            segment["data"].append(self.clock.take())  # (wait, background)
            segment["validation"].append(self.clock.take_validation())
            segment["cpu"].append(now - segment["cpu_mark"])
            done = epoch + 1
            if done < segment["end"]:
                segment["cpu_mark"] = now
                return
            seconds = history["seconds"][segment["first"]:done]
            if segment["first"] == 0 and warmup_epochs:
                channel.reply({**info, "setup_seconds": time.perf_counter() - started, "warmup_seconds": seconds})
            else:
                channel.reply({"seconds": seconds, "data_seconds": segment["data"], "cpu_seconds": segment["cpu"],
                               "validation_seconds": segment["validation"],
                               "loss": history["loss"][segment["first"]:done],
                               "val_accuracy": history["val_accuracy"][segment["first"]:done],
                               "peak_rss_mib": peak_rss_mib()})
            if done < total:
                next_segment(done)

        if not warmup_epochs:
            channel.reply({**info, "setup_seconds": time.perf_counter() - started, "warmup_seconds": []})
            next_segment(0)
        if self.backend is None:
            from torch_version import train as torch_train
            torch_train.evaluate = self.clock.timed_validation(torch_train.evaluate)
            torch_train.train(self.model, WaitTimed(self.batches, self.clock), total, self.criterion, self.optimizer,
                              self.validation, on_epoch_end=on_epoch_end, verbose=False)
        else:
            from keras_version import train as keras_train
            self.model.evaluate = self.clock.timed_validation(self.model.evaluate)  # fit validates through it
            self.choose_feed(keras_train)
            keras_train.train(self.model, self.batches, total, self.validation, on_epoch_end=on_epoch_end,
                              verbose=False)

    def choose_feed(self, keras_train) -> None:
        """Experiments: what ``fit`` reads instead of the project's ``fit_inputs``.

        ``feed=arrays``: the training input as plain NumPy arrays, ``fit(x, y)``, the first
        epoch's batches in order (the same batch sizes and the same arithmetic, no per-epoch
        reshuffle), the validation set as the project passes it: the baseline for the
        training feed's overhead.  ``feed=pydataset``: ``EpochBatches`` through Keras's
        PyDataset adapter and the validation set as arrays, on every backend (the
        TensorFlow backend's feed before the ``tf.data`` one)."""
        feed, project = self.settings.get("feed"), keras_train.fit_inputs
        if feed == "arrays":  # the training input only; validation as the project feeds it
            parts = [self.batches.batch(0, step) for step in range(len(self.batches))]
            x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
            self.clock.take()  # building the arrays is not part of any epoch

            def arrays(batches, validation, start_epoch=0):
                inputs = project(batches, validation, start_epoch)
                return {**{k: v for k, v in inputs.items() if k.startswith("validation")},
                        "x": x, "y": y, "batch_size": batches.batch_size}
            keras_train.fit_inputs = arrays
        elif feed == "pydataset":  # the feed before this round: PyDataset and validation arrays everywhere
            keras_train.fit_inputs = lambda batches, validation, start_epoch=0: {
                "x": keras_train.EpochBatches(batches, start_epoch), "steps_per_epoch": len(batches),
                "validation_data": validation, "validation_batch_size": batches.batch_size}
        elif feed is not None:
            raise ValueError(f"unknown feed {feed!r}; choose arrays or pydataset")

    def build(self):
        if self.backend is None:
            import torch
            from torch_version.model import build_model
            from torch_version.train import set_cpu_threads
            self.torch_device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            set_cpu_threads(self.torch_device)  # as torch_version/run.py does
            torch.manual_seed(self.config.seed)
            model = build_model(**self.config.model_kwargs()).to(self.torch_device)
            self.criterion = torch.nn.CrossEntropyLoss()
            self.optimizer = torch.optim.Adam(model.parameters(), lr=self.config.learning_rate)
            self.override_threads()
            if self.settings.get("torch_compile"):
                model = torch.compile(model)
            return model
        import keras
        from common.speed import keras_speed
        from keras_version.model import build_model
        from keras_version.train import compile_model
        keras.backend.clear_session()
        keras.utils.set_random_seed(self.config.seed)
        # The project's per-backend settings (common/speed.py); an experiment may override each one.
        self.speed = keras_speed(self.backend, self.settings.get("unroll"), self.settings.get("jit_compile"),
                                 self.settings.get("steps_per_execution"))
        model = build_model(**self.config.model_kwargs(), unroll=self.speed.unroll)
        compile_model(model, self.config.learning_rate, jit_compile=self.speed.jit_compile,
                      steps_per_execution=self.speed.steps_per_execution)
        self.override_threads()
        return model

    def override_threads(self) -> None:
        if self.settings.get("torch_threads"):  # an experiment: replace the project's choice
            import torch
            torch.set_num_threads(int(self.settings["torch_threads"]))

    def effective_settings(self) -> dict:
        out = {}
        if self.path in ("notebook", "torch", "keras-torch"):
            import torch
            out["torch_threads"] = torch.get_num_threads()
        if self.backend is not None:
            out["unroll"] = self.speed.unroll
            out["jit_compile"] = self.model.jit_compile  # "auto" resolved
            out["steps_per_execution"] = self.model.steps_per_execution
            out["feed"] = self.settings.get("feed", "tf.data" if self.backend == "tensorflow" else "PyDataset")
        return {**out, **{k: v for k, v in self.settings.items() if k not in out}}

    def device(self) -> str:
        if self.backend in (None, "torch"):
            import torch
            if torch.cuda.is_available():
                return f"cuda: {torch.cuda.get_device_name(0)}"
            return "cpu"
        if self.backend == "jax":
            import jax
            d = jax.devices()[0]
            return "cpu" if d.platform == "cpu" else f"{d.platform}: {d.device_kind}"
        import tensorflow as tf
        gpus = tf.config.list_logical_devices("GPU")
        return f"gpu: {gpus[0].name}" if gpus else "cpu"

def versions() -> dict:
    """Versions of what this process imported."""
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("torch", "keras", "jax", "tensorflow"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "?")
    return out


class Channel:
    """JSON lines: commands from the parent on stdin, answers on the real stdout."""

    def __init__(self):
        self.answers = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)  # anything a library prints goes to stderr
        sys.stdout = sys.stderr

    def command(self) -> dict:
        line = sys.stdin.readline()
        if not line:
            raise SystemExit(0)  # the parent has gone
        return json.loads(line)

    def reply(self, answer: dict) -> None:
        self.answers.write(json.dumps(answer) + "\n")


def main() -> None:
    path = sys.argv[1]
    settings = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    channel = Channel()
    worker = None
    while True:
        command = channel.command()
        cmd = command.pop("cmd", None)
        if cmd == "quit":
            break
        try:
            if cmd != "setup":
                raise ValueError(f"expected setup or quit, got {cmd!r}")
            worker = worker or Worker(path, settings)
            worker.setup(channel, **command)
        except Exception as e:  # the parent reports it and goes on with the other paths
            traceback.print_exc()
            channel.reply({"error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    main()
