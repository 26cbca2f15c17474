"""Training, evaluation, prediction and saving: the notebook's ``utils.train``, in PyTorch.

The batches come from ``common.data.Batches``, the same object Keras ``fit`` reads.
The reported accuracy is micro (correct / total), the same kind as Keras's
``"accuracy"``; torchmetrics' ``MulticlassAccuracy`` would default to macro.
"""
from __future__ import annotations

import io
import math
import os
import pickle
import re
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from common import interrupt
from common.checkpoint import atomic_write
from common.errors import CheckpointError, NonFiniteLossError
from common.report import empty_history, epoch_line


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Micro accuracy: the fraction of examples whose argmax is the target."""
    return (logits.argmax(dim=1) == targets).float().mean()


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def set_cpu_threads(device: torch.device) -> int:
    """On CPU, compute with one thread unless ``OMP_NUM_THREADS`` asks for more; return the count.

    The notebook's operations are small (8192 x 8 values): splitting each one across
    threads gains little, and when other programs share the cores the threads wait for
    each other, many times slower.  ``benchmarks/RESULTS.md`` has the measurements.
    """
    if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)
    return torch.get_num_threads()


@interrupt.deferring  # Ctrl-C stops after the current step (common/interrupt.py)
def train(model, batches, epochs, criterion, optimizer, validation, metric=accuracy, *,
          start_epoch=0, history=None, on_epoch_end=None, verbose=True) -> dict:
    """Train for ``epochs - start_epoch`` epochs; return the history dict.

    ``validation`` is ``(x_val, y_val)`` as NumPy arrays.  ``on_epoch_end(epoch,
    history)`` runs after each completed epoch (the run saves its checkpoint there).
    """
    history = history if history is not None else empty_history()
    device = _device(model)
    for epoch in range(start_epoch, epochs):
        started = time.perf_counter()
        model.train()
        total_loss, total_metric, seen = 0.0, 0.0, 0
        for step, (x, y) in enumerate(batches.epoch(epoch)):
            x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)  # (batch, time, features), (batch,)
            optimizer.zero_grad(set_to_none=True)
            logits = model(x)
            loss = criterion(logits, y)  # torch losses take (prediction, target)
            value = loss.item()
            if not math.isfinite(value):
                raise NonFiniteLossError(epoch + 1, step + 1, value)
            loss.backward()
            optimizer.step()
            interrupt.check()
            total_loss += value * len(y)
            total_metric += metric(logits.detach(), y).item() * len(y)
            seen += len(y)
        val_loss, val_metric = evaluate(model, *validation, criterion, metric, batch_size=batches.batch_size)
        for key, value in (("loss", total_loss / seen), ("accuracy", total_metric / seen),
                           ("val_loss", val_loss), ("val_accuracy", val_metric),
                           ("seconds", time.perf_counter() - started)):
            history[key].append(value)
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
        if verbose:
            print(epoch_line(epoch, epochs, history), flush=True)
    return history


@torch.no_grad()
def evaluate(model, x, y, criterion=torch.nn.functional.cross_entropy, metric=accuracy, batch_size=8192):
    """Mean loss and metric over ``(x, y)``, in eval mode and without gradients."""
    model.eval()
    device = _device(model)
    total_loss, total_metric = 0.0, 0.0
    for i in range(0, len(x), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size])).to(device)
        yb = torch.from_numpy(np.ascontiguousarray(y[i:i + batch_size])).to(device)
        logits = model(xb)
        total_loss += criterion(logits, yb).item() * len(yb)
        total_metric += metric(logits, yb).item() * len(yb)
    return total_loss / len(x), total_metric / len(x)


@torch.no_grad()
def predict(model, x, batch_size=8192) -> np.ndarray:
    """Predicted class of each example, as a NumPy array."""
    model.eval()
    device = _device(model)
    out = [model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size])).to(device)).argmax(dim=1).cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


def save_model(path: Path, model, optimizer=None) -> Path:
    """Save the state dicts (never the pickled module) atomically.

    Serialised in memory first: torch's own file writer reports a full disk as a
    RuntimeError (``basic_ios::clear``), Python's file as ``OSError(ENOSPC)``.
    """
    return atomic_write(Path(path), snapshotter(model, optimizer)())


def snapshotter(model, optimizer=None):
    """``take()``: the state dicts as they are now, serialised; it returns what writes them to a
    file later, from another thread (``common.checkpoint_writer``), while training goes on."""
    def take():
        state = {"model": model.state_dict()}
        if optimizer is not None:
            state["optimizer"] = optimizer.state_dict()
        buffer = io.BytesIO()
        torch.save(state, buffer)  # copies every tensor: later steps do not change these bytes
        data = buffer.getvalue()
        return lambda path: Path(path).write_bytes(data)  # Python's file: a full disk is OSError(ENOSPC)
    return take


def load_model(path: Path, model, optimizer=None):
    """Load weights saved by :func:`save_model` into ``model``; no code from the file runs."""
    path = Path(path)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=_device(model), weights_only=True)
        weights = state["model"]
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except PermissionError as e:
        raise CheckpointError(f"cannot read {path} ({e.strerror}); check its permissions") from None
    except pickle.UnpicklingError as e:  # weights_only met something other than tensors and containers
        found = re.search(r"unsupported GLOBAL (\S+)", str(e))
        if found is None:
            raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (UnpicklingError); "
                                  "was it written by this project?") from None
        raise CheckpointError(f"{path} refers to the Python object {found.group(1)}; it is refused because loading "
                              "never runs code from a file (torch.load(weights_only=True))") from None
    except Exception as e:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({type(e).__name__}); "
                              "was it written by this project?") from None
    expected = model.state_dict()
    for name, tensor in expected.items():
        if name not in weights:
            raise CheckpointError(f"{path} has no weights for layer {name!r}: it was saved from another architecture")
        if tuple(weights[name].shape) != tuple(tensor.shape):
            raise CheckpointError(f"layer {name!r} has shape {tuple(weights[name].shape)} in {path} but "
                                  f"{tuple(tensor.shape)} in the model: it was saved from another architecture")
    extra = sorted(set(weights) - set(expected))
    if extra:
        raise CheckpointError(f"{path} has layer {extra[0]!r}, which the model lacks: it was saved from another architecture")
    model.load_state_dict(weights)
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    return model
