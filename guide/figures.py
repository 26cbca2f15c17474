"""The guide's pictures, written to guide/images/.

    python -m guide.figures                                   # the architecture diagram (en and es)
    python -m guide.figures --from-runs runs/torch runs/keras-jax   # + curves and prediction grids

The diagram is computed from the two models (``torch_version.model`` and
``keras_version.model``): shapes by running a batch through them, parameters by
counting.  ``--from-runs`` takes output folders of ``python -m torch_version train
--out DIR`` and ``python -m keras_version train --out DIR`` (each holds
``metrics.json`` and ``predictions.png``) and writes:

* ``training_curves.png``: every run's loss (above) and accuracy (below), stacked so that
  they read at a phone's width;
* ``predictions_torch.png`` and ``predictions_keras.png``: the 5 x 5 grids of the
  first PyTorch run and the first Keras run given, redrawn from their ``metrics.json``;
* the same three in Spanish, ``*_es.png`` (titles, axes, legends, class names as the Spanish
  notebook has them).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

IMAGES = Path(__file__).resolve().parent / "images"


# --- The architectures ----------------------------------------------------------------

def torch_layers() -> list[tuple[str, str, int]]:
    """``(layer, output shape, parameters)`` of the notebook's torch model, input first."""
    import torch
    from torch_version.model import build_model

    model = build_model()
    shapes = {}

    def record(name):
        def hook(module, inputs, output):  # returns None, so the output is left as it is
            shapes[name] = tuple((output[0] if isinstance(output, tuple) else output).shape)
        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in model.named_modules() if name]
    with torch.no_grad():
        model(torch.zeros(2, 28, 28))
    for h in hooks:
        h.remove()

    def fmt(shape):
        return "(" + ", ".join(["B", *map(str, shape[1:])]) + ")"

    rows = [("input", fmt((2, 28, 28)), 0)]
    for i, rnn in enumerate(model.rnns):
        rows.append((f"nn.RNN({rnn.input_size}, {rnn.hidden_size}, batch_first=True)", fmt(shapes[f"rnns.{i}"]),
                     sum(p.numel() for p in rnn.parameters())))
    rows.append(("out[:, -1, :]", fmt((2, shapes[f"rnns.{len(model.rnns) - 1}"][-1])), 0))
    rows.append(("nn.Linear(8, 10)", fmt(shapes["fc"]), sum(p.numel() for p in model.fc.parameters())))
    return rows


def keras_layers() -> list[tuple[str, str, int]]:
    """``(layer, output shape, parameters)`` of the notebook's Keras model, input first."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    from keras_version.model import build_model

    model = build_model()
    rows = []
    for layer in model.layers:
        shape = "(" + ", ".join("None" if d is None else str(d) for d in layer.output.shape) + ")"
        kind = type(layer).__name__
        if kind == "InputLayer":
            name = "Input(shape=(28, 28))"
        elif kind == "SimpleRNN":
            name = "SimpleRNN(8, return_sequences=True)" if layer.return_sequences else "SimpleRNN(8)"
        elif kind == "Dense":
            name = "Dense(10)"
        else:
            name = kind
        rows.append((name, shape, layer.count_params()))
    return rows


# The diagram's words, per language (the Spanish pages show architectures_es.png).
WORDS = {
    "en": {"last step": "(already the last step)", "biases": ("2 biases", "1 bias"), "params": "{n} params",
           "no params": "no params", "total": "total: {n} parameters",
           "title": "The notebook's stacked RNN: output shape and parameters after each layer"},
    "es": {"last step": "(ya es el último paso)", "biases": ("2 sesgos", "1 sesgo"), "params": "{n} parámetros",
           "no params": "sin parámetros", "total": "total: {n} parámetros",
           "title": "La RNN apilada del cuaderno: forma de salida y parámetros tras cada capa"},
}


def draw_architectures(path: Path, language: str = "en") -> Path:
    """Both models side by side, aligned layer by layer, with shape and parameters after each;
    the labels in ``language`` ("en" or "es")."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba
    from matplotlib.patches import FancyBboxPatch

    import common.plots  # noqa: F401  (Agg backend and the project's style)

    torch_rows, keras_rows = torch_layers(), keras_layers()
    # Keras has no separate last-step selection: its third recurrent layer returns the last step.
    words = WORDS[language]
    keras_rows.insert(len(keras_rows) - 1, (words["last step"], "", None))
    columns = [("PyTorch", torch_rows, "#cc4c02", words["biases"][0]),
               ("Keras 3", keras_rows, "#1f5fa8", words["biases"][1])]
    n = max(len(rows) for _, rows, _, _ in columns)
    fig, ax = plt.subplots(figsize=(12, 0.95 * n + 1.6), dpi=100)
    ax.set_xlim(0, 12)
    ax.set_ylim(-0.05, n + 1.35)
    ax.axis("off")
    fig.patch.set_facecolor("white")
    for c, (title, rows, color, biases) in enumerate(columns):
        x0, width = 0.3 + 6.0 * c, 5.4
        middle = x0 + width / 2
        ax.text(middle, n + 0.95, title, ha="center", va="center", fontsize=15, weight="bold", color=color)
        previous = None
        for r, (name, shape, params) in enumerate(rows):
            y = n - r
            if params is None:  # a slot with nothing in it, so both columns line up
                ax.text(middle, y, name, ha="center", va="center", fontsize=9, style="italic", color="dimgray",
                        bbox=dict(facecolor="white", edgecolor="none"))
                continue
            face = to_rgba(color, 0.14) if params else to_rgba("white")
            ax.add_patch(FancyBboxPatch((x0, y - 0.31), width, 0.62, boxstyle="round,pad=0.02,rounding_size=0.12",
                                        facecolor=face, edgecolor=color, linewidth=1.5))
            ax.text(x0 + 0.15, y, name, ha="left", va="center", fontsize=10, family="monospace")
            ax.text(x0 + width - 0.15, y + 0.12, shape, ha="right", va="center", fontsize=10, weight="bold")
            recurrent = "RNN" in name
            note = (words["params"].format(n=params) + (f" ({biases})" if recurrent else "")
                    if params else words["no params"])
            ax.text(x0 + width - 0.15, y - 0.16, note, ha="right", va="center", fontsize=8, color="dimgray")
            if previous is not None:
                ax.annotate("", xy=(middle, y + 0.33), xytext=(middle, previous - 0.33),
                            arrowprops=dict(arrowstyle="->", color=color, lw=1.3), zorder=0)
            previous = y
        total = sum(p for _, _, p in rows if p)
        ax.text(middle, 0.2, words["total"].format(n=total), ha="center", va="center", fontsize=12,
                weight="bold", color=color)
    fig.suptitle(words["title"], fontsize=12)
    fig.tight_layout()
    fig.savefig(path, facecolor="white")
    plt.close(fig)
    return Path(path)


# --- From real runs -----------------------------------------------------------------------

def read_run(folder: Path) -> dict:
    folder = Path(folder)
    metrics_file = folder / "metrics.json"
    if not metrics_file.is_file():
        raise SystemExit(f"python -m guide.figures: error: {folder} has no metrics.json; "
                         "pass folders written by `python -m torch_version train --out DIR` "
                         "or `python -m keras_version train --out DIR`")
    metrics = json.loads(metrics_file.read_text())
    metrics["folder"] = folder
    return metrics


FAITHFUL_REPORT = Path(__file__).resolve().parents[1] / "docs" / "results" / "faithful" / "report.json"


# The words of the curves and the grids, per language (the Spanish pages show the *_es.png files).
# The class names are the Spanish notebook's (guide/notebooks/src).
FIGURE_WORDS = {
    "en": {"classes": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                       "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
           "expected": "expected", "predicted": "predicted", "right": "{n}/{total} right",
           "epoch": "epoch", "loss": "loss (log scale)", "accuracy": "accuracy",
           "train": "training", "val": "validation",
           "setting": "{epochs} epochs, batch {batch}, {data}{seed}",
           "subset": "first {n} training images", "all": "all 60,000 training images", "seed": ", seed {seed}",
           "spread": "One seed only: over {n} seeds, each run's test accuracy\nvaries by {low:.1f} to {high:.1f} points (standard deviation)."},
    "es": {"classes": ("Camiseta/top", "Pantalón", "Jersey", "Vestido", "Abrigo",
                       "Sandalia", "Camisa", "Zapatilla", "Bolso", "Botín"),
           "expected": "esperada", "predicted": "predicha", "right": "{n}/{total} aciertos",
           "epoch": "época", "loss": "pérdida (escala log.)", "accuracy": "exactitud",
           "train": "entrenamiento", "val": "validación",
           "setting": "{epochs} épocas, lotes de {batch}, {data}{seed}",
           "subset": "primeras {n} imágenes de entrenamiento", "all": "las 60 000 imágenes de entrenamiento",
           "seed": ", semilla {seed}",
           "spread": "Una sola semilla: con {n} semillas, la exactitud de prueba de cada ejecución\nvaría entre {low:.1f} y {high:.1f} puntos (desviación típica)."},
}
LANGUAGE_SUFFIX = {"en": "", "es": "_es"}


def describe(runs: list[dict], language: str = "en") -> str:
    """A title that says what the curves come from (epochs, batch size, training set, seed) and,
    for one seed, how much the seed alone moves the result (``python -m parity compare --seeds 3``)."""
    words = FIGURE_WORDS[language]
    settings = set()
    for m in runs:
        c = m["config"]
        data = words["subset"].format(n=c["subset"]) if c.get("subset") else words["all"]
        seed = words["seed"].format(seed=c["seed"]) if c.get("seed") is not None else ""
        settings.add(words["setting"].format(epochs=len(m["history"]["loss"]), batch=c["batch_size"], data=data, seed=seed))
    title = "; ".join(sorted(settings))
    if len({m["config"].get("seed") for m in runs}) == 1 and FAITHFUL_REPORT.is_file():
        rows = json.loads(FAITHFUL_REPORT.read_text())["rows"]
        spread = [100 * row["std"] for row in rows]
        line = words["spread"].format(n=len(rows[0]["seeds"]), low=min(spread), high=max(spread))
        title += "\n" + (re.sub(r"(\d)\.(\d)", r"\1,\2", line) if language == "es" else line)  # 2,3 in Spanish
    return title


def draw_curves(histories: dict[str, dict], path: Path, title: str, language: str = "en") -> Path:
    """Loss above, accuracy below (stacked, to be read at a phone's width): solid training,
    dashed validation, one colour per run; the legend under the panels."""
    import matplotlib.pyplot as plt
    import numpy as np

    import common.plots  # noqa: F401  (Agg backend and the project's style)
    words = FIGURE_WORDS[language]
    fig, (ax_loss, ax_acc) = plt.subplots(2, 1, figsize=(6.4, 8.6), dpi=120, sharex=True)
    for name, history in histories.items():
        epochs = np.arange(1, len(history["loss"]) + 1)
        line, = ax_loss.plot(epochs, history["loss"], lw=2, label=f"{name}, {words['train']}")
        colour = line.get_color()
        ax_loss.plot(epochs, history["val_loss"], lw=2, ls="--", color=colour, label=f"{name}, {words['val']}")
        ax_acc.plot(epochs, history["accuracy"], lw=2, color=colour)
        ax_acc.plot(epochs, history["val_accuracy"], lw=2, ls="--", color=colour)
    ax_loss.set_yscale("log")
    from matplotlib.ticker import FormatStrFormatter
    for axis in (ax_loss.yaxis,):  # 1.2, 1.4, ... rather than 1.2 x 10^0
        axis.set_major_formatter(FormatStrFormatter("%.1f"))
        axis.set_minor_formatter(FormatStrFormatter("%.1f"))
    ax_loss.set_ylabel(words["loss"], fontsize=14)
    ax_acc.set_ylabel(words["accuracy"], fontsize=14)
    ax_acc.set_xlabel(words["epoch"], fontsize=14)
    for ax in (ax_loss, ax_acc):
        ax.tick_params(labelsize=12)
    handles, labels = ax_loss.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=12, frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    fig.savefig(path, facecolor="white")
    plt.close(fig)
    return Path(path)


def draw_grid(images, labels, predicted, path: Path, title: str, language: str = "en") -> Path:
    """The 5 x 5 prediction grid of a run, with the expected and predicted class over each image:
    green when right, red when wrong; labels in ``language``."""
    import matplotlib.pyplot as plt

    import common.plots  # noqa: F401
    words = FIGURE_WORDS[language]
    classes = words["classes"]
    fig, axes = plt.subplots(5, 5, figsize=(10, 12), dpi=90)
    for ax, image, label, guess in zip(axes.flat, images, labels, predicted):
        right = int(label) == int(guess)
        ax.imshow(image, cmap="Greens" if right else "Reds")
        ax.set_title(f"{words['expected']}: {classes[label]}\n{words['predicted']}: {classes[guess]}",
                     fontsize=11, color="darkgreen" if right else "darkred")
        ax.axis("off")
    correct = sum(int(a) == int(b) for a, b in zip(labels, predicted))
    fig.suptitle(f"{title}: {words['right'].format(n=correct, total=len(labels))}", fontsize=16)
    fig.tight_layout()
    fig.savefig(path, facecolor="white")
    plt.close(fig)
    return Path(path)


def grid_images(record: dict):
    """The 25 test images of a run's grid, checked against the SHA-256 its metrics.json holds."""
    import hashlib

    import numpy as np

    from common.data import load_fashion_mnist
    (_, _), (test_images, _) = load_fashion_mnist()
    images = np.ascontiguousarray(test_images[:len(record["labels"])], np.uint8)
    if hashlib.sha256(images.tobytes()).hexdigest() != record["images_sha256"]:
        raise SystemExit("python -m guide.figures: error: the local test images are not the ones this run's "
                         "grid shows (images_sha256 differs); run make data")
    return images


def draw_from_runs(folders: list[Path], out: Path) -> list[Path]:
    """The curves and the grids, in English and in Spanish, from the runs' metrics.json (the
    grids' images are the first test images, checked by their SHA-256)."""
    runs = [read_run(f) for f in folders]
    written = []
    histories = {}
    for m in runs:
        name = m["label"]
        while name in histories:
            name += "'"
        histories[name] = m["history"]
    for language, suffix in LANGUAGE_SUFFIX.items():
        written.append(draw_curves(histories, out / f"training_curves{suffix}.png", describe(runs, language), language))
    for framework in ("torch", "keras"):
        mine = [m for m in runs if m["framework"] == framework]
        if not mine:
            print(f"note: no {framework} run given; predictions_{framework}*.png left as they are", file=sys.stderr)
            continue
        record = mine[0].get("prediction_grid")
        if not record:
            raise SystemExit(f"python -m guide.figures: error: {mine[0]['folder'] / 'metrics.json'} has no "
                             "prediction_grid; rerun the training with this version of the project")
        images = grid_images(record)
        for language, suffix in LANGUAGE_SUFFIX.items():
            target = out / f"predictions_{framework}{suffix}.png"
            written.append(draw_grid(images, record["labels"], record["predicted"], target, mine[0]["label"], language))
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m guide.figures", description="Draw the guide's pictures.")
    parser.add_argument("--from-runs", nargs="+", type=Path, default=None, metavar="DIR",
                        help="run folders (with metrics.json and predictions.png) for the curves and grids")
    parser.add_argument("--out", type=Path, default=IMAGES, help=f"where to write (default: {IMAGES})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[1]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    for folder in args.from_runs or []:
        read_run(folder)  # fail before drawing anything
    written = [draw_architectures(args.out / "architectures.png"),
               draw_architectures(args.out / "architectures_es.png", "es")]
    if args.from_runs:
        written += draw_from_runs(args.from_runs, args.out)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
