"""One training run in Keras 3: data, model, summary, training, evaluation, artifacts.

    python -m keras_version train --backend jax --epochs 2 --subset 4096
"""
from __future__ import annotations

from pathlib import Path

import keras

from common.config import RunConfig
from common.data import prepare_data
from common.errors import NonFiniteLossError
from common.runs import checkpoint_state, checkpoints, finish_run, resume_point
from keras_version.model import build_model, count_params, summary
from keras_version.train import compile_model, evaluate, load_model, predict, save_model, train

FRAMEWORK = "keras"


def main(config: RunConfig) -> dict:
    # Setup: the backend was fixed by KERAS_BACKEND before keras was imported
    backend = keras.config.backend()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)

    # Prepare the data
    data = prepare_data(config)

    # Build the model
    keras.utils.set_random_seed(config.seed)
    model = build_model(**config.model_kwargs())
    text = summary(model)
    print(text)
    compile_model(model, config.learning_rate)
    ckpt = checkpoints(config, ".keras")
    start_epoch, history, resume_from = resume_point(config, ckpt)
    if resume_from is not None:
        model = load_model(resume_from, model)  # weights and optimizer state
        print(f"resuming from {resume_from} after epoch {start_epoch}")

    # Train
    def save_checkpoint(epoch, history):
        ckpt.save(epoch + 1, lambda p: save_model(p, model), checkpoint_state(config, history))

    try:
        history = train(model, data.train, config.epochs, (data.x_val, data.y_val),
                        start_epoch=start_epoch, history=history, on_epoch_end=save_checkpoint)
    except NonFiniteLossError as e:
        latest = ckpt.latest()
        e.checkpoint = latest[1] if latest else None
        raise

    # Evaluate
    test_loss, test_accuracy = evaluate(model, data.x_test, data.y_test, batch_size=config.batch_size)
    predictions = predict(model, data.x_test[:25])
    save_model(out / "model.keras", model)
    return finish_run(config, framework=FRAMEWORK, backend=backend, params=count_params(model),
                      test_loss=test_loss, test_accuracy=test_accuracy, history=history,
                      images=data.test_images, labels=data.y_test, predictions=predictions,
                      model_file="model.keras", summary=text)
