"""The pictures: training curves, prediction grids and curve overlays (matplotlib, no display)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from common.data import CLASS_NAMES  # noqa: E402

plt.style.use("ggplot")


def plot_history(history: dict, path: Path, title: str) -> Path:
    """Loss and accuracy per epoch, on a log y-axis as in the notebook."""
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    epochs = np.arange(1, len(history["loss"]) + 1)
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        ax.plot(epochs, history[key], label=key, linestyle="--" if key.startswith("val_") else "-")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_predictions(images: np.ndarray, labels: np.ndarray, predictions: np.ndarray,
                     path: Path, title: str, rows: int = 5, cols: int = 5) -> Path:
    """A rows x cols grid of test images, green when predicted right and red when wrong."""
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.5 * rows), dpi=80)
    for ax, image, label, pred in zip(axes.flat, images, labels, predictions):
        right = int(label) == int(pred)
        ax.imshow(image, cmap="Greens" if right else "Reds")
        ax.set_title(f"expected: {CLASS_NAMES[label]}\npredicted: {CLASS_NAMES[pred]}", fontsize=8,
                     color="darkgreen" if right else "darkred")
        ax.axis("off")
    correct = int(np.sum(np.asarray(labels[:rows * cols]) == np.asarray(predictions[:rows * cols])))
    fig.suptitle(f"{title}: {correct}/{rows * cols} right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_overlay(histories: dict[str, dict], path: Path, title: str) -> Path:
    """Loss (left) and validation accuracy (right) of several runs on shared axes."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    for name, history in histories.items():
        epochs = np.arange(1, len(history["loss"]) + 1)
        line, = ax_loss.plot(epochs, history["loss"], label=f"{name} train")
        ax_loss.plot(epochs, history["val_loss"], linestyle="--", color=line.get_color(), label=f"{name} val")
        ax_acc.plot(epochs, history["accuracy"], color=line.get_color(), label=f"{name} train")
        ax_acc.plot(epochs, history["val_accuracy"], linestyle="--", color=line.get_color(), label=f"{name} val")
    ax_loss.set_yscale("log")
    ax_loss.set(xlabel="epoch", ylabel="loss (log)", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    ax_acc.legend(fontsize=7, ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
