"""What a run prints and writes: the per-epoch line, ``metrics.json`` and the comparison table."""
from __future__ import annotations

import json
from pathlib import Path

from common.checkpoint import atomic_write_json
from common.config import BACKENDS, FRAMEWORKS, check_choice

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
ACCURACY_KIND = "micro"  # correct / total, Keras's "accuracy"; torchmetrics defaults to macro


def empty_history() -> dict[str, list[float]]:
    return {key: [] for key in (*HISTORY_KEYS, "seconds")}


def epoch_line(epoch: int, epochs: int, history: dict) -> str:
    """One line per epoch, identical on both sides: ``epoch 3/64  loss 1.2345 ...  0.52 s``."""
    metrics = "  ".join(f"{key} {history[key][-1]:.4f}" for key in HISTORY_KEYS)
    return f"epoch {epoch + 1:>{len(str(epochs))}}/{epochs}  {metrics}  {history['seconds'][-1]:.2f} s"


def label(framework: str, backend: str) -> str:
    """``PyTorch`` or ``Keras (<backend>)``; an unknown framework or Keras backend is a ConfigError."""
    if check_choice("framework", framework, FRAMEWORKS) == "torch":
        return "PyTorch"
    return f"Keras ({check_choice('backend', backend, BACKENDS)})"


def write_metrics(out: Path, *, framework: str, backend: str, config, params: int,
                  test_loss: float, test_accuracy: float, history: dict, **extra) -> dict:
    """Write ``metrics.json`` in ``out`` and return what was written."""
    metrics = {
        "framework": framework,
        "backend": backend,
        "label": label(framework, backend),
        "accuracy_kind": ACCURACY_KIND,
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "params": int(params),
        "epoch_seconds": [float(s) for s in history["seconds"]],
        "history": {key: [float(v) for v in history[key]] for key in HISTORY_KEYS},
        "config": config.to_json(),
        **extra,
    }
    atomic_write_json(Path(out) / "metrics.json", metrics)
    return metrics


def read_metrics(out: Path) -> dict:
    return json.loads((Path(out) / "metrics.json").read_text())


def median(values) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def table(rows: list[dict]) -> str:
    """A side-by-side Markdown table of test accuracy, parameters and seconds per epoch."""
    lines = ["| run | test accuracy | test loss | parameters | s/epoch (median) | epochs |",
             "|---|---:|---:|---:|---:|---:|"]
    for m in rows:
        lines.append(f"| {m['label']} | {100 * m['test_accuracy']:.2f} % | {m['test_loss']:.4f} | {m['params']} "
                     f"| {median(m['epoch_seconds']):.3f} | {len(m['epoch_seconds'])} |")
    return "\n".join(lines)
