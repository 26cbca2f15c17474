"""One training run in PyTorch: data, model, summary, training, evaluation, artifacts.

    python -m torch_version train --epochs 2 --subset 4096
"""
from __future__ import annotations

from pathlib import Path

import torch

from common.config import RunConfig
from common.data import prepare_data
from common.errors import NonFiniteLossError
from common.runs import checkpoint_state, checkpoints, finish_run, resume_point
from torch_version.model import build_model, count_params, summary
from torch_version.train import evaluate, load_model, predict, save_model, train

FRAMEWORK, BACKEND = "torch", "native"


def main(config: RunConfig) -> dict:
    # Setup
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)

    # Prepare the data
    data = prepare_data(config)

    # Build the model
    torch.manual_seed(config.seed)
    model = build_model(**config.model_kwargs()).to(device)
    text = summary(model)
    print(text)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    ckpt = checkpoints(config, ".pt")
    start_epoch, history, resume_from = resume_point(config, ckpt)
    if resume_from is not None:
        load_model(resume_from, model, optimizer)
        print(f"resuming from {resume_from} after epoch {start_epoch}")

    # Train
    def save_checkpoint(epoch, history):
        ckpt.save(epoch + 1, lambda p: save_model(p, model, optimizer), checkpoint_state(config, history))

    try:
        history = train(model, data.train, config.epochs, criterion, optimizer, (data.x_val, data.y_val),
                        start_epoch=start_epoch, history=history, on_epoch_end=save_checkpoint)
    except NonFiniteLossError as e:
        latest = ckpt.latest()
        e.checkpoint = latest[1] if latest else None
        raise

    # Evaluate
    test_loss, test_accuracy = evaluate(model, data.x_test, data.y_test, criterion, batch_size=config.batch_size)
    predictions = predict(model, data.x_test[:25])
    save_model(out / "model.pt", model)
    return finish_run(config, framework=FRAMEWORK, backend=BACKEND, params=count_params(model),
                      test_loss=test_loss, test_accuracy=test_accuracy, history=history,
                      images=data.test_images, labels=data.y_test, predictions=predictions,
                      model_file="model.pt", summary=text)
