"""What a run prints and writes: the per-epoch line, ``metrics.json`` and the comparison table."""
from __future__ import annotations

import json
import math
import re
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
    metrics = strict_json({
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
    })
    atomic_write_json(Path(out) / "metrics.json", metrics)
    return metrics


def strict_json(metrics: dict) -> dict:
    """``metrics`` with each NaN or infinity replaced by null, and ``non_finite`` saying where and what
    it was (``{"history.val_loss[3]": "inf"}``): JSON has no NaN, and strict readers refuse Python's ``NaN``."""
    where: dict[str, str] = {}

    def clean(value, path: str):
        if isinstance(value, float) and not math.isfinite(value):
            where[path] = str(value)
            return None
        if isinstance(value, dict):
            return {key: clean(v, f"{path}.{key}" if path else key) for key, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    cleaned = clean(metrics, "")
    if where:
        cleaned["non_finite"] = where
    return cleaned


def finite_or_none(values) -> list:
    """A history list for state.json, which is strict JSON: a non-finite number becomes null."""
    return [float(v) if math.isfinite(v) else None for v in values]


def read_metrics(out: Path) -> dict:
    """metrics.json, with the numbers :func:`strict_json` wrote as null back as NaN or infinity."""
    metrics = json.loads((Path(out) / "metrics.json").read_text())
    for path, value in metrics.get("non_finite", {}).items():
        keys = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path)]
        target = metrics
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = float(value)
    return metrics


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
