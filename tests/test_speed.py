"""The speed settings and the speed machinery do what they say (how fast they are: benchmarks/).

* the per-backend table, the flags that override it and the line each run prints;
* ``unroll=True`` computes the same function: logits, gradients and lockstep training
  against PyTorch stay within the tolerances measured below;
* the feed hands ``fit`` epoch e's batches in epoch e, resumed runs included;
* checkpoints written in the background are the state at the end of their epoch.

Measured on this project's CPU (AMD EPYC, 2 cores), 2048 real test images, notebook
model and 1-layer GRU/LSTM, uni- and bidirectional; |unrolled - loop|, max over cases:

                     torch backend    TensorFlow     JAX
    logits           0 (bit-equal)    0 (bit-equal)  3.6e-07 (GRU, LSTM; RNN bit-equal)
    gradients        0 (bit-equal)    0 (bit-equal)  1.5e-08 (GRU, LSTM; RNN bit-equal)

Gradients are those of one eager call (``parity.lockstep.keras_gradients``); inside
``fit``, TensorFlow's graph optimiser and XLA may order float32 sums differently, so
training curves with and without ``unroll`` agree to rounding, not bit for bit
(benchmarks/RESULTS.md gives the measured gap over an epoch).
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from common.checkpoint import CheckpointDir
from common.checkpoint_writer import CheckpointWriter
from common.cli import build_parser, config_from_args
from common.config import BACKENDS, RunConfig
from common.errors import ConfigError, OutputError
from common.speed import KERAS_DEFAULTS, KerasSpeed, keras_speed, speed_line, speed_of

UNROLL_LOGIT_TOL = 1e-6  # measured: at most 3.6e-7 (JAX), 0 elsewhere
UNROLL_GRAD_TOL = 1e-6  # measured: 0 on torch and TensorFlow
LOCKSTEP_TOL = 1e-6  # aligned lockstep drift after 5 Adam steps, as in tests/test_parity_lockstep.py (measured ~1e-7)
backend = pytest.mark.backend


# --- The table, the flags, the printed line -----------------------------------------------------------

def test_every_backend_has_defaults_and_each_setting_can_be_overridden():
    assert set(KERAS_DEFAULTS) == set(BACKENDS)
    assert all(isinstance(s, KerasSpeed) for s in KERAS_DEFAULTS.values())
    for name in BACKENDS:
        assert keras_speed(name) == KERAS_DEFAULTS[name]
        flipped = keras_speed(name, unroll=not KERAS_DEFAULTS[name].unroll, jit_compile="false")
        assert flipped.unroll is not KERAS_DEFAULTS[name].unroll and flipped.jit_compile is False
    assert keras_speed("jax", steps_per_execution=4).steps_per_execution == 4
    assert keras_speed("tensorflow", jit_compile="true").jit_compile is True
    with pytest.raises(ConfigError, match="one step per call on the torch backend"):
        keras_speed("torch", steps_per_execution=2)
    with pytest.raises(ConfigError, match="jit_compile must be one of auto, true, false"):
        keras_speed("jax", jit_compile="xla")


def parse(*argv, with_backend=True) -> RunConfig:
    parser = build_parser("prog", "test", with_backend=with_backend)
    return config_from_args(parser.parse_args(["train", *argv]), default_out="x")


def test_flags_reach_the_config_and_default_to_the_table():
    config = parse()
    assert (config.unroll, config.jit_compile, config.steps_per_execution) == (None, None, None)
    assert speed_of("tensorflow", config) == KERAS_DEFAULTS["tensorflow"]
    config = parse("--no-unroll", "--jit-compile", "true", "--steps-per-execution", "7")
    assert (config.unroll, config.jit_compile, config.steps_per_execution) == (False, True, 7)
    assert speed_of("tensorflow", config) == KerasSpeed(unroll=False, jit_compile=True, steps_per_execution=7)
    assert parse("--unroll").unroll is True and parse("--jit-compile", "auto").jit_compile == "auto"

def test_help_states_the_defaults_per_backend(capsys):
    with pytest.raises(SystemExit):
        parse("--help")
    help_text = " ".join(capsys.readouterr().out.split())
    for flag in ("--unroll, --no-unroll", "--jit-compile", "--steps-per-execution"):
        assert flag in help_text
    assert "(default: torch: True, jax: False, tensorflow: True)" in help_text  # unroll's defaults, per backend


def test_the_pytorch_command_has_no_keras_speed_flags(capsys):
    with pytest.raises(SystemExit) as stop:
        parse("--unroll", with_backend=False)
    assert stop.value.code == 2
    assert "unrecognized arguments: --unroll" in capsys.readouterr().err


def test_the_line_names_every_setting_and_marks_what_differs_from_the_default():
    line = speed_line("tensorflow", KERAS_DEFAULTS["tensorflow"], resolved_jit_compile=False)
    assert line == ("speed settings (Keras, tensorflow backend): unroll=True, jit_compile=auto (XLA off), "
                    "steps_per_execution=1")
    line = speed_line("jax", keras_speed("jax", unroll=True), resolved_jit_compile=True)
    assert "unroll=True [--unroll/--no-unroll; the jax default is False]" in line
    assert "jit_compile=auto (XLA on)" in line and "[" not in line.split("jit_compile")[1]


# A setting that differs from the backend's default and is cheap to run there (unrolled JAX compiles slowly)
OVERRIDE = {"torch": dict(unroll=False), "tensorflow": dict(unroll=False), "jax": dict(steps_per_execution=2)}


@backend
def test_a_run_prints_and_applies_its_settings(small_data, keras_backend, tmp_path, capsys):
    """``run.main`` builds and compiles the model with the table's settings, overridden by the config."""
    import keras
    from keras_version.run import main
    override = OVERRIDE[keras_backend]
    main(RunConfig(epochs=1, subset=2048, batch_size=1024, out=tmp_path, **override))
    out = capsys.readouterr().out
    speed = keras_speed(keras_backend, **override)
    assert speed != KERAS_DEFAULTS[keras_backend]
    line = speed_line(keras_backend, speed, resolved_jit_compile=keras_backend == "jax")
    assert "[" in line  # marks the override
    assert line in out.splitlines()
    assert line in (tmp_path / "summary.txt").read_text().splitlines()
    saved = keras.models.load_model(tmp_path / "model.keras")
    assert [layer.unroll for layer in saved.layers if isinstance(layer, keras.layers.RNN)] == [speed.unroll] * 3
    assert saved.steps_per_execution == speed.steps_per_execution


# --- unroll computes the same function ------------------------------------------------------------

def unrolled_pair(**kwargs):
    """The same model twice, looped and unrolled, with the same weights."""
    import keras
    from keras_version.model import build_model
    keras.utils.set_random_seed(0)
    looped = build_model(**kwargs)
    unrolled = build_model(**kwargs, unroll=True)
    unrolled.set_weights(looped.get_weights())
    return looped, unrolled


# The notebook model, then other cells on 8 time steps (XLA compiles unrolled gradients slowly on JAX)
UNROLL_CASES = [dict(), dict(cell="gru", num_layers=1, timesteps=8), dict(cell="lstm", num_layers=1, timesteps=8),
                dict(bidirectional=True, num_layers=2, timesteps=8)]


@backend
@pytest.mark.parametrize("kwargs", UNROLL_CASES, ids=["rnn", "gru", "lstm", "bi-rnn"])
def test_unroll_gives_the_same_logits_and_gradients(kwargs, small_data, keras_backend):
    """Gradients are compared where the backend unrolls by default (torch, TensorFlow); on JAX, which
    does not, compiling unrolled gradients takes 20-40 s per model (measured gap there: 1.5e-8)."""
    import keras
    from parity.lockstep import keras_gradients
    looped, unrolled = unrolled_pair(**kwargs)
    assert all(layer.unroll for layer in unrolled.layers if isinstance(layer, keras.layers.RNN))
    timesteps = kwargs.get("timesteps", 28)
    x, y = small_data.x_test[:2048, :timesteps], small_data.y_test[:2048]
    logits = [keras.ops.convert_to_numpy(m(x)) for m in (looped, unrolled)]
    logit_gap = float(np.max(np.abs(logits[0] - logits[1])))
    assert np.abs(logits[0]).max() > 0.1  # not a degenerate comparison
    assert logit_gap <= UNROLL_LOGIT_TOL
    if not KERAS_DEFAULTS[keras_backend].unroll:
        return
    grads = [keras_gradients(m, x[:512], y[:512]) for m in (looped, unrolled)]
    assert grads[0].keys() == grads[1].keys()
    grad_gap = max(float(np.max(np.abs(grads[0][p] - grads[1][p]))) for p in grads[0])
    print(f"{keras.backend.backend()} {kwargs}: |logits| gap {logit_gap:.2e}, |gradient| gap {grad_gap:.2e}")
    assert grad_gap <= UNROLL_GRAD_TOL
    assert max(np.abs(g).max() for g in grads[0].values()) > 1e-3


@backend
def test_unrolled_keras_stays_in_lockstep_with_pytorch(small_data, keras_backend):
    """Five aligned Adam steps against torch, as tests/test_parity_lockstep.py, with unroll=True: the
    default on torch and TensorFlow, and what --unroll asks for on JAX."""
    import torch
    from keras_version.model import build_model as build_keras
    from parity import torch_to_keras
    from parity.lockstep import align_torch_for_lockstep, keras_adam_like_torch, run_lockstep
    from torch_version.model import build_model as build_torch
    torch.manual_seed(0)
    t = build_torch()
    align_torch_for_lockstep(t)
    k = build_keras(unroll=True)
    torch_to_keras(t, k)
    batches = [tuple(a[:64] for a in small_data.train.batch(0, step)) for step in range(5)]
    params = [p for p in t.parameters() if p.requires_grad]
    history = run_lockstep(t, torch.optim.Adam(params, lr=1e-3), k, keras_adam_like_torch(1e-3), batches)
    assert len(history) == 5
    assert max(h["drift"] for h in history) <= LOCKSTEP_TOL
    assert abs(history[-1]["torch_loss"] - history[-1]["keras_loss"]) <= 1e-5


# --- The feed -------------------------------------------------------------------------------------------

@backend
@pytest.mark.parametrize("start_epoch", [0, 3])
def test_the_feed_serves_each_epochs_batches_in_order(small_data, start_epoch, keras_backend):
    """What ``fit`` iterates, through Keras's own data adapter: epoch e's batches, in order, across
    the epoch boundary; a resumed run (start_epoch) starts at its own epoch."""
    from keras.src.trainers.data_adapters import get_data_adapter
    from keras_version.train import fit_inputs
    batches = small_data.train
    n = len(batches)
    inputs = fit_inputs(batches, (small_data.x_val, small_data.y_val), start_epoch)
    if keras_backend == "tensorflow":
        import tensorflow as tf
        assert isinstance(inputs["x"], tf.data.Dataset)  # the tf.data feed, not the PyDataset adapter
        validation = [tuple(np.asarray(a) for a in item) for item in inputs["validation_data"]]
        assert np.array_equal(np.concatenate([x for x, _ in validation]), small_data.x_val)
        assert np.array_equal(np.concatenate([y for _, y in validation]), small_data.y_val)
        n_val, size = len(small_data.y_val), batches.batch_size
        assert [len(y) for _, y in validation] == [min(size, n_val - i) for i in range(0, n_val, size)]
    else:
        assert inputs["validation_batch_size"] == batches.batch_size
    assert inputs["steps_per_epoch"] == n
    adapter = get_data_adapter(inputs["x"], steps_per_epoch=n)
    stream = iter(adapter.get_tf_dataset() if keras_backend == "tensorflow" else adapter.get_numpy_iterator())
    for epoch in (start_epoch, start_epoch + 1):
        for step in range(n):
            x, y = (np.asarray(a) for a in next(stream))
            want_x, want_y = batches.batch(epoch, step)
            assert x.dtype == np.float32 and np.array_equal(x, want_x), (epoch, step)
            assert np.array_equal(y, want_y), (epoch, step)


# --- Checkpoints in the background ------------------------------------------------------------------------

def bytes_writer(data: bytes):
    return lambda path: path.write_bytes(data)


def into(ckpt: CheckpointDir):
    """What the runs pass (``common.runs.save_checkpoint``), less the run's settings."""
    return lambda epochs_done, write_model, history: ckpt.save(epochs_done, write_model, {"history": history})


def test_background_saves_keep_their_order_and_the_state_of_their_moment(tmp_path):
    ckpt = CheckpointDir(tmp_path / "checkpoints", ".pt")
    history = {"loss": []}
    taken_on = []
    with CheckpointWriter(into(ckpt)) as writer:
        for epoch in range(1, 6):
            history["loss"].append(float(epoch))

            def snapshot(epoch=epoch):
                taken_on.append(threading.current_thread())
                return bytes_writer(f"model after epoch {epoch}".encode())
            writer.save(epoch, snapshot, history)
            history["loss"].append(-1.0)  # training goes on: the saved state must not see this
            history["loss"].pop()
    assert taken_on == [threading.main_thread()] * 5  # the snapshot is taken when save() is called
    state, path = ckpt.latest()
    assert state["epochs_done"] == 5 and path.name == "epoch-0005.pt"
    assert path.read_bytes() == b"model after epoch 5"
    assert state["history"]["loss"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert sorted(p.name for p in ckpt.folder.iterdir()) == ["epoch-0005.pt", "state.json"]


def test_a_slow_save_holds_back_the_next_one_and_a_failed_save_is_raised(tmp_path):
    ckpt = CheckpointDir(tmp_path / "checkpoints", ".pt")
    writer = CheckpointWriter(into(ckpt))

    def slow(path):
        time.sleep(0.3)
        path.write_bytes(b"1")
    writer.save(1, lambda: slow, {})
    assert ckpt.latest() is None  # still being written
    writer.save(2, lambda: bytes_writer(b"2"), {})  # waits for epoch 1 first
    writer.wait()
    assert ckpt.latest()[0]["epochs_done"] == 2

    def broken(path):
        raise OSError(28, "No space left on device")
    writer.save(3, lambda: broken, {})
    with pytest.raises(OutputError, match=r"^no space left on the device to write .*epoch-0003\.pt"):
        writer.wait()
    assert not list(ckpt.folder.glob(".*tmp*"))  # nothing half-written left behind
    writer.close()
    state, path = ckpt.latest()
    assert state["epochs_done"] == 2 and path.read_bytes() == b"2"  # the last good one stands


def test_an_interrupted_run_still_finishes_the_pending_save(tmp_path):
    ckpt = CheckpointDir(tmp_path / "checkpoints", ".pt")

    def slow(path):
        time.sleep(0.3)
        path.write_bytes(b"epoch 1")
    with pytest.raises(KeyboardInterrupt):
        with CheckpointWriter(into(ckpt)) as writer:
            writer.save(1, lambda: slow, {})
            raise KeyboardInterrupt  # Ctrl-C during epoch 2
    state, path = ckpt.latest()
    assert state["epochs_done"] == 1 and path.read_bytes() == b"epoch 1"


@backend
def test_a_keras_snapshot_is_the_state_when_it_was_taken(small_data, tmp_path):
    import keras
    from keras_version.model import build_model
    from keras_version.train import compile_model, load_model, snapshotter, train
    keras.utils.set_random_seed(0)
    model = compile_model(build_model(), 1e-2)
    take = snapshotter(model)  # before training: the optimizer's moments must be in it too
    train(model, small_data.train, 1, (small_data.x_val, small_data.y_val), verbose=False)
    write = take()
    expected = [keras.ops.convert_to_numpy(v.value).copy() for v in model.weights + model.optimizer.variables]
    train(model, small_data.train, 2, (small_data.x_val, small_data.y_val), start_epoch=1, verbose=False)
    write(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras", build_model())
    got = [keras.ops.convert_to_numpy(v.value) for v in loaded.weights + loaded.optimizer.variables]
    assert len(got) == len(expected) == 2 * len(model.weights) + len(model.trainable_weights) + 2
    for a, b in zip(expected, got):
        assert np.array_equal(a, b)
    assert int(loaded.optimizer.iterations) == len(small_data.train)  # one epoch, not two


@backend
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_a_bidirectional_snapshot_resumes_into_a_fresh_model(cell, tmp_path):
    """A clone names a Bidirectional's inner layers afresh: the state is paired by position and shape."""
    import keras
    from keras_version.model import build_model
    from keras_version.train import compile_model, copy_state, load_model, snapshotter
    keras.utils.set_random_seed(1)
    settings = dict(cell=cell, bidirectional=True, num_layers=2)
    model = compile_model(build_model(**settings), 1e-3)
    snapshotter(model)()(tmp_path / "m.keras")
    resumed = copy_state(load_model(tmp_path / "m.keras", build_model(**settings)),
                         compile_model(build_model(**settings), 1e-3))
    x = np.random.default_rng(0).random((4, 28, 28), dtype=np.float32)
    assert len(resumed.weights) == len(model.weights) == 14  # 2 layers x 2 directions x 3, and the Dense's 2
    assert len(resumed.optimizer.variables) == len(model.optimizer.variables) == 2 * 14 + 2
    for mine, theirs in zip(resumed.weights + resumed.optimizer.variables, model.weights + model.optimizer.variables):
        assert np.array_equal(keras.ops.convert_to_numpy(mine.value), keras.ops.convert_to_numpy(theirs.value))
    assert np.array_equal(keras.ops.convert_to_numpy(resumed(x)), keras.ops.convert_to_numpy(model(x)))
