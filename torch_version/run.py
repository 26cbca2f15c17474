"""One training run in PyTorch: data, model, summary, training, evaluation, artifacts.

    python -m torch_version train --epochs 2 --subset 4096
"""
from __future__ import annotations

from pathlib import Path

import torch

from common.checkpoint_writer import CheckpointWriter
from common.config import RunConfig
from common.data import PreparedData, prepare_data
from common.runs import finish_run, resume_point, run_folder, save_checkpoint
from common.speed import torch_speed_line
from torch_version.model import build_model, count_params, summary
from torch_version.train import evaluate, load_model, predict, save_model, set_cpu_threads, snapshotter, train

FRAMEWORK, BACKEND = "torch", "native"


def main(config: RunConfig, data: PreparedData | None = None) -> dict:
    """Run ``config``; ``data`` is ``prepare_data(config)`` if the caller has it already."""
    # Setup
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    threads = set_cpu_threads(device)
    # --out: created, locked, resolved to the real folder (the only one written), and never another run's
    # checkpoints lost
    with run_folder(config, ".pt") as (config, ckpt):
        out = Path(config.out)
        start_epoch, history, resume_from = resume_point(config, ckpt)  # settings checked before any slow work

        # Build the model
        torch.manual_seed(config.seed)
        model = build_model(**config.model_kwargs()).to(device)
        text = summary(model) + "\n" + torch_speed_line(device.type, threads)
        print(text)
        criterion = torch.nn.CrossEntropyLoss()
        optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        if resume_from is not None:
            load_model(resume_from, model, optimizer)
            print(f"resuming from {resume_from} after epoch {start_epoch}")

        # Prepare the data
        data = data if data is not None else prepare_data(config)

        # Train (each epoch's checkpoint is written while the next one trains)
        with CheckpointWriter(lambda *args: save_checkpoint(config, ckpt, *args)) as writer:
            def on_epoch_end(epoch, history):
                writer.save(epoch + 1, snapshotter(model, optimizer), history)

            history = train(model, data.train, config.epochs, criterion, optimizer, (data.x_val, data.y_val),
                            start_epoch=start_epoch, history=history, on_epoch_end=on_epoch_end)

        # Evaluate
        test_loss, test_accuracy = evaluate(model, data.x_test, data.y_test, criterion, batch_size=config.batch_size)
        predictions = predict(model, data.x_test[:25])
        save_model(out / "model.pt", model)
        return finish_run(config, framework=FRAMEWORK, backend=BACKEND, params=count_params(model),
                          test_loss=test_loss, test_accuracy=test_accuracy, history=history,
                          images=data.test_images, labels=data.y_test, predictions=predictions,
                          model_file="model.pt", summary=text)
