"""One training run in Keras 3: data, model, summary, training, evaluation, artifacts.

    python -m keras_version train --backend jax --epochs 2 --subset 4096
"""
from __future__ import annotations

from pathlib import Path

import keras

from common.checkpoint_writer import CheckpointWriter
from common.config import RunConfig, check_floatx
from common.data import PreparedData, prepare_data
from common.quiet import import_tensorflow_quietly
from common.runs import finish_run, resume_point, run_folder, save_checkpoint
from common.speed import speed_line, speed_of
from keras_version.model import build_model, count_params, summary
from keras_version.train import (compile_model, copy_state, evaluate, load_model, predict, save_model, snapshotter,
                                 train)

FRAMEWORK = "keras"


def setup() -> str:
    """Prepare the backend for a reproducible run with a quiet stderr; return the backend's name.

    Determinism: ``keras.utils.set_random_seed`` (called before the model is built)
    seeds Python, NumPy, Keras, the torch backend and TensorFlow.  On CPU that alone
    makes a run bitwise reproducible on all three backends (docs/determinism.md,
    tests/test_determinism.py), so no backend switch is turned on here: TensorFlow's
    ``enable_op_determinism`` is not needed, and it would turn off XLA in ``fit``
    and change the numbers.

    Quiet: Keras imports TensorFlow on every backend where it is installed (to seed
    it, and when saving); importing it first, with stderr silenced, keeps an error
    message the only line on stderr (``common.quiet``).
    """
    import_tensorflow_quietly()
    check_floatx(keras.config.floatx())  # float32 only: keras.json or a program may have set another
    return keras.config.backend()


def main(config: RunConfig, data: PreparedData | None = None) -> dict:
    """Run ``config``; ``data`` is ``prepare_data(config)`` if the caller has it already."""
    # Setup: the backend was fixed by KERAS_BACKEND before keras was imported
    backend = setup()
    speed = speed_of(backend, config)  # per-backend defaults (common/speed.py), overridden by the flags
    # --out: created, locked, resolved to the real folder (the only one written), and never another run's
    # checkpoints lost
    with run_folder(config, ".keras") as (config, ckpt):
        out = Path(config.out)
        start_epoch, history, resume_from = resume_point(config, ckpt)  # settings checked before any slow work

        # Build the model
        keras.utils.set_random_seed(config.seed)
        model = build_model(**config.model_kwargs(), unroll=speed.unroll)
        compile_model(model, config.learning_rate, jit_compile=speed.jit_compile,
                      steps_per_execution=speed.steps_per_execution)
        text = summary(model) + "\n" + speed_line(backend, speed, model.jit_compile)
        print(text)
        if resume_from is not None:
            copy_state(load_model(resume_from, model), model)  # weights and optimizer state, this run's settings
            print(f"resuming from {resume_from} after epoch {start_epoch}")

        # Prepare the data
        data = data if data is not None else prepare_data(config)

        # Train (each epoch's checkpoint is written while the next one trains)
        snapshot = snapshotter(model)
        with CheckpointWriter(lambda *args: save_checkpoint(config, ckpt, *args)) as writer:
            def on_epoch_end(epoch, history):
                writer.save(epoch + 1, snapshot, history)

            history = train(model, data.train, config.epochs, (data.x_val, data.y_val),
                            start_epoch=start_epoch, history=history, on_epoch_end=on_epoch_end)

        # Evaluate
        test_loss, test_accuracy = evaluate(model, data.x_test, data.y_test, batch_size=config.batch_size)
        predictions = predict(model, data.x_test[:25])
        save_model(out / "model.keras", model)
        return finish_run(config, framework=FRAMEWORK, backend=backend, params=count_params(model),
                          test_loss=test_loss, test_accuracy=test_accuracy, history=history,
                          images=data.test_images, labels=data.y_test, predictions=predictions,
                          model_file="model.keras", summary=text)
