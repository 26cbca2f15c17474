"""Write the guide's notebooks from the Python structures below.

    python -m guide.notebooks.build           # (re)write the .ipynb files
    python -m guide.notebooks.build --check   # exit 1 if a committed file differs

The notebooks are stored without outputs; the test suite executes them in quick
mode (``GUIDE_EPOCHS=2 GUIDE_SUBSET=2048``).  Edit this file, never the .ipynb
files: ``tests/test_guide.py`` fails when they differ from what this writes.

* ``keras_rnn_apiladas_es.ipynb`` / ``keras_stacked_rnn_en.ipynb``: the Keras 3
  port, in Spanish and in English, with identical code cells.
* ``torch_rnn_apiladas_es.ipynb``: the PyTorch original rebuilt on the project's
  data pipeline (Spanish, like the original).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

# --- Code shared by every notebook --------------------------------------------------------

FIND_ROOT = '''\
import os
import sys
from pathlib import Path


def find_project_root(start: Path) -> Path:
    for folder in [start, *start.parents]:
        if (folder / "common" / "data.py").is_file() and (folder / "keras_version").is_dir():
            return folder
    raise RuntimeError(f"no project folder above {start}: open the notebook from inside the repository")


ROOT = find_project_root(Path.cwd().resolve())
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
print(ROOT)'''

CHOOSE_BACKEND = '''\
os.environ.setdefault("KERAS_BACKEND", "jax")  # torch, jax or tensorflow; read once, at the first import of keras
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
print("KERAS_BACKEND:", os.environ["KERAS_BACKEND"])'''

CONSTANTS = '''\
EPOCHS = int(os.environ.get("GUIDE_EPOCHS", 64))
BATCH_SIZE = int(os.environ.get("GUIDE_BATCH_SIZE", 8192))
SUBSET = int(os.environ["GUIDE_SUBSET"]) if os.environ.get("GUIDE_SUBSET") else None  # None: all 60000
SEED = 0
print(f"epochs={EPOCHS} batch_size={BATCH_SIZE} subset={SUBSET}")'''

PLOT_STYLE = '''\
plt.style.use("ggplot")
plt.rcParams["figure.figsize"] = (14, 5)'''

DATA = '''\
(x_train, y_train), (x_test, y_test) = load_fashion_mnist()
print("images:", x_train.shape, x_train.dtype, " labels:", y_train.shape, y_train.dtype)

config = RunConfig(epochs=EPOCHS, batch_size=BATCH_SIZE, subset=SUBSET, seed=SEED)
data = prepare_data(config, arrays=((x_train, y_train), (x_test, y_test)))
print("training:", data.train.num_examples, " validation:", len(data.x_val), " test:", len(data.x_test))
print("batches per epoch:", len(data.train), " one batch:", data.train.batch(0, 0)[0].shape)'''

SHOW_DATA = '''\
fig, axes = plt.subplots(1, 10, figsize=(14, 2))
for ax, image, label in zip(axes, x_train, y_train):
    ax.imshow(image, cmap="gray_r")
    ax.set_title(CLASS_NAMES[label], fontsize=9)
    ax.axis("off")
plt.show()'''

PLOT_HISTORY = '''\
fig, ax = plt.subplots()
for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
    values = history[key]
    ax.plot(range(1, len(values) + 1), values, label=key, linestyle="--" if key.startswith("val_") else "-")
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.legend()
plt.show()'''

GRID = '''\
fig, axes = plt.subplots(ROWS, COLS, figsize=(12, 13))
for ax, image, label, guess in zip(axes.flat, data.test_images, data.y_test, predicted):
    ax.imshow(image, cmap="Greens" if label == guess else "Reds")
    ax.set_title(f"{CLASS_NAMES[label]} -> {CLASS_NAMES[guess]}", fontsize=9)
    ax.axis("off")
plt.tight_layout()
plt.show()
print("right:", int((predicted == data.y_test[:ROWS * COLS]).sum()), "of", ROWS * COLS)'''

# --- The Keras 3 notebook: code cells, identical in both languages -----------------------

KERAS_CODE = {
    "root": FIND_ROOT + "\n\n" + CHOOSE_BACKEND,
    "imports": '''\
%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
import keras

from common.config import RunConfig
from common.data import CLASS_NAMES, load_fashion_mnist, prepare_data
from keras_version.train import EpochBatches

print("Keras", keras.__version__, "on the", keras.config.backend(), "backend")''',
    "style": PLOT_STYLE,
    "constants": CONSTANTS,
    "data": DATA,
    "show": SHOW_DATA,
    "model": '''\
keras.utils.set_random_seed(SEED)
model = keras.Sequential([
    keras.Input(shape=(28, 28)),
    keras.layers.SimpleRNN(8, return_sequences=True),
    keras.layers.SimpleRNN(8, return_sequences=True),
    keras.layers.SimpleRNN(8),
    keras.layers.Dense(10),
], name="stacked_rnn")
model.summary()''',
    "compile": '''\
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)''',
    "fit": '''\
fitted = model.fit(
    EpochBatches(data.train),
    steps_per_epoch=len(data.train),
    epochs=EPOCHS,
    validation_data=(data.x_val, data.y_val),
    validation_batch_size=BATCH_SIZE,
    shuffle=False,
    verbose=2,
)
history = fitted.history''',
    "history": PLOT_HISTORY,
    "evaluate": '''\
test_loss, test_accuracy = model.evaluate(data.x_test, data.y_test, batch_size=BATCH_SIZE, verbose=0)
print(f"test accuracy: {test_accuracy:.4f}   test loss: {test_loss:.4f}")''',
    "predict": '''\
ROWS, COLS = 5, 5
logits = model.predict(data.x_test[:ROWS * COLS], verbose=0)
predicted = logits.argmax(axis=1)
print(logits.shape, predicted[:10])''',
    "grid": GRID,
}

KERAS_TEXT = {
    "es": {
        "title": '''\
# Apilando redes recurrentes, en Keras 3

Versión en Keras 3 del cuaderno que entrena en PyTorch una red recurrente apilada sobre
Fashion-MNIST. Funciona con los tres *backends* de Keras (JAX, PyTorch y TensorFlow).
La guía de traducción que lo acompaña está en [`guide/es/README.md`](../es/README.md).''',
        "intro": '''\
## Introducción

Una red recurrente apilada encadena varias capas recurrentes: la secuencia que produce cada
capa es la entrada de la siguiente. Las capas bajas trabajan sobre la señal original y las
altas sobre las representaciones de las anteriores, de modo que el conjunto puede captar
patrones temporales más abstractos que una sola capa.

## Objetivos

- Construir en Keras 3 la misma red que el cuaderno de PyTorch: tres capas `SimpleRNN` de 8
  unidades y un clasificador denso.
- Ver qué cambia al apilar capas en Keras: `return_sequences`.
- Entrenarla, dibujar su historial y revisar sus predicciones sobre imágenes de prueba.''',
        "setup": '''\
## Bibliotecas y configuración

La primera celda localiza la carpeta del proyecto (para poder importar `common` y
`keras_version`) y elige el *backend* de Keras. Keras lee `KERAS_BACKEND` una sola vez, al
importarse por primera vez, así que hay que fijarlo **antes** de `import keras`; si la
variable no existe, usamos JAX.''',
        "imports": "Importamos las bibliotecas y los módulos del proyecto.",
        "style": "Un estilo para las gráficas:",
        "constants": '''\
Las constantes de la receta original: 64 épocas y lotes de 8192 ejemplos. Las variables de
entorno `GUIDE_EPOCHS`, `GUIDE_BATCH_SIZE` y `GUIDE_SUBSET` permiten una ejecución rápida
(por ejemplo, 2 épocas sobre 2048 imágenes), que es lo que hacen las pruebas.''',
        "data": '''\
## Descarga y preproceso de los datos

En lugar de `torchvision`, usamos la canalización común del proyecto: `load_fashion_mnist`
devuelve las imágenes como `uint8` de forma `(N, 28, 28)`, sin eje de canal, y
`prepare_data` las lleva a `float32` en [-1, 1] (los mismos valores que
`ToTensor` + `Normalize(0.5, 0.5)`), separa un 10 % para validación con una semilla y
prepara los lotes. Cada imagen se lee como una secuencia: 28 pasos de tiempo (las filas)
de 28 características (las columnas).''',
        "show": "Algunas imágenes de entrenamiento con su clase:",
        "model": '''\
## Modelo con varias capas recurrentes

Aquí está la diferencia principal con PyTorch. Una capa recurrente de PyTorch devuelve
siempre la secuencia completa, `(lote, 28, 8)`, junto con el estado final. En Keras, en
cambio, una capa recurrente devuelve por defecto **solo la salida del último paso**,
`(lote, 8)`. Para apilar capas, todas menos la última necesitan `return_sequences=True`,
de forma que la siguiente reciba una secuencia. La última capa no lo lleva: su salida ya es
el último paso, lo que en PyTorch se obtiene con `out[:, -1, :]`.

El resumen muestra 658 parámetros, frente a los 682 de PyTorch: cada capa de PyTorch tiene
dos vectores de sesgo (`bias_ih` y `bias_hh`) y la de Keras uno solo; 3 capas × 8 = 24.''',
        "compile": '''\
En Keras la función de pérdida, el optimizador y la métrica se declaran en `compile`.
`from_logits=True` es imprescindible: el modelo termina en una capa densa sin softmax, igual
que la `Linear` de PyTorch, y sin esa opción Keras interpretaría las salidas como
probabilidades. La métrica `"accuracy"` es la proporción de aciertos (*micro*); la
`MulticlassAccuracy` de torchmetrics promedia por clase (*macro*) por defecto.''',
        "fit": '''\
## Entrenamiento del modelo

`fit` recorre el bucle de entrenamiento que en PyTorch escribimos a mano. `EpochBatches`
sirve a Keras los mismos lotes, en el mismo orden, que recibe la versión de PyTorch del
proyecto; ya vienen barajados, época a época, así que `shuffle=False` evita que Keras cambie
su orden. Entrenar es lento: cada paso recorre 28 instantes en secuencia en cada una de las
tres capas.''',
        "history": "Evolución de la pérdida y la precisión (escala logarítmica):",
        "evaluate": "Resultado sobre el conjunto de prueba:",
        "predict": '''\
## Clasificación de nuevas muestras

`predict` trabaja siempre en modo inferencia, por lotes y sin gradientes, y devuelve un
array de NumPy: no hace falta nada equivalente a `model.eval()` ni a `torch.no_grad()`.''',
        "grid": "Las 25 primeras imágenes de prueba: en verde los aciertos, en rojo los errores.",
        "end": '''\
## Conclusiones

La misma red se escribe en Keras con tres capas `SimpleRNN`, de las que solo las dos
primeras devuelven la secuencia completa. Con una receta equivalente (mismos datos, mismos
lotes, Adam con tasa 1e-3 y entropía cruzada sobre *logits*) el aprendizaje es comparable,
aunque no idéntico: Keras inicializa los pesos de otra forma y su Adam usa otro `epsilon`.
Todas estas diferencias, con ejemplos ejecutables, están en la
[guía de traducción](../es/README.md). Y la conclusión del cuaderno original sigue en pie:
para imágenes, una red convolucional es más rápida y más precisa.''',
    },
    "en": {
        "title": '''\
# Stacking recurrent networks, in Keras 3

The Keras 3 version of the notebook that trains a stacked recurrent network on
Fashion-MNIST in PyTorch. It runs on all three Keras backends (JAX, PyTorch and
TensorFlow). The translation guide that goes with it is
[`guide/en/README.md`](../en/README.md).''',
        "intro": '''\
## Introduction

A stacked recurrent network chains several recurrent layers: the sequence that each layer
produces is the input of the next. The lower layers work on the raw signal and the higher
ones on the representations of the layers below, so together they can pick up more
abstract patterns in time than a single layer.

## Objectives

- Build in Keras 3 the same network as the PyTorch notebook: three `SimpleRNN` layers of 8
  units and a dense classifier.
- See what changes when stacking layers in Keras: `return_sequences`.
- Train it, plot its history and check its predictions on test images.''',
        "setup": '''\
## Libraries and setup

The first cell finds the project folder (to import `common` and `keras_version`) and
chooses the Keras backend. Keras reads `KERAS_BACKEND` only once, when it is first
imported, so it must be set **before** `import keras`; when the variable is not set we use
JAX.''',
        "imports": "We import the libraries and the project's modules.",
        "style": "A style for the plots:",
        "constants": '''\
The original recipe's constants: 64 epochs and batches of 8192 examples. The environment
variables `GUIDE_EPOCHS`, `GUIDE_BATCH_SIZE` and `GUIDE_SUBSET` allow a quick run (for
instance 2 epochs on 2048 images), which is what the tests do.''',
        "data": '''\
## Data download and preprocessing

Instead of `torchvision`, we use the project's shared pipeline: `load_fashion_mnist`
returns the images as `uint8` of shape `(N, 28, 28)`, with no channel axis, and
`prepare_data` turns them into `float32` in [-1, 1] (the same values as
`ToTensor` + `Normalize(0.5, 0.5)`), holds out a seeded 10 % for validation and prepares
the batches. Each image is read as a sequence: 28 time steps (the rows) of 28 features
(the columns).''',
        "show": "A few training images with their class:",
        "model": '''\
## A model with several recurrent layers

Here is the main difference from PyTorch. A PyTorch recurrent layer always returns the
whole sequence, `(batch, 28, 8)`, together with the final state. In Keras, by contrast, a
recurrent layer returns by default **only the output of the last step**, `(batch, 8)`. To
stack layers, every layer but the last needs `return_sequences=True`, so that the next one
receives a sequence. The last layer goes without it: its output already is the last step,
which PyTorch gets with `out[:, -1, :]`.

The summary shows 658 parameters, against PyTorch's 682: each PyTorch layer has two bias
vectors (`bias_ih` and `bias_hh`) and Keras's only one; 3 layers × 8 = 24.''',
        "compile": '''\
In Keras the loss, the optimizer and the metric are declared in `compile`.
`from_logits=True` is essential: the model ends in a dense layer without a softmax, like
PyTorch's `Linear`, and without that option Keras would read its outputs as probabilities.
The `"accuracy"` metric is the fraction of right answers (*micro*); torchmetrics'
`MulticlassAccuracy` averages per class (*macro*) by default.''',
        "fit": '''\
## Training the model

`fit` runs the training loop that PyTorch code writes by hand. `EpochBatches` serves Keras
the same batches, in the same order, that the project's PyTorch version receives; they come
already shuffled, epoch by epoch, so `shuffle=False` stops Keras from reordering them. Training
is slow: every step walks 28 time steps in sequence in each of the three layers.''',
        "history": "Loss and accuracy per epoch (log scale):",
        "evaluate": "The result on the test set:",
        "predict": '''\
## Classifying new samples

`predict` always runs in inference mode, in batches and without gradients, and returns a
NumPy array: there is no need for anything like `model.eval()` or `torch.no_grad()`.''',
        "grid": "The first 25 test images: green where the model is right, red where it is wrong.",
        "end": '''\
## Conclusions

The same network is written in Keras with three `SimpleRNN` layers, of which only the first
two return the whole sequence. With an equivalent recipe (same data, same batches, Adam
with learning rate 1e-3 and cross-entropy on logits) the learning is comparable, but not
identical: Keras initialises the weights differently and its Adam uses another `epsilon`.
All those differences, with runnable examples, are in the
[translation guide](../en/README.md). And the original notebook's conclusion still stands:
for images, a convolutional network is faster and more accurate.''',
    },
}

KERAS_ORDER = ["title", "intro", "setup", "=root", "imports", "=imports", "style", "=style", "constants",
               "=constants", "data", "=data", "show", "=show", "model", "=model", "compile", "=compile",
               "fit", "=fit", "history", "=history", "evaluate", "=evaluate", "predict", "=predict",
               "grid", "=grid", "end"]

# --- The PyTorch notebook, rebuilt on the shared pipeline (Spanish) ------------------------

TORCH_CODE = {
    "root": FIND_ROOT,
    "imports": '''\
%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
import torch
import torchinfo

from common.config import RunConfig
from common.data import CLASS_NAMES, load_fashion_mnist, prepare_data
from torch_version.train import evaluate, train

print("PyTorch", torch.__version__)''',
    "style": PLOT_STYLE,
    "constants": CONSTANTS,
    "data": DATA,
    "show": SHOW_DATA,
    "model": '''\
class StackedRNN(torch.nn.Module):
    def __init__(self, features=28, hidden=8, classes=10):
        super().__init__()
        self.layer1 = torch.nn.RNN(features, hidden, batch_first=True)
        self.layer2 = torch.nn.RNN(hidden, hidden, batch_first=True)
        self.layer3 = torch.nn.RNN(hidden, hidden, batch_first=True)
        self.classifier = torch.nn.Linear(hidden, classes)

    def forward(self, x):
        for layer in (self.layer1, self.layer2, self.layer3):
            x, _ = layer(x)
        return self.classifier(x[:, -1, :])


torch.manual_seed(SEED)
model = StackedRNN()
torchinfo.summary(model, input_size=(1, 28, 28), col_names=("output_size", "num_params"))''',
    "fit": '''\
criterion = torch.nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
history = train(model, data.train, EPOCHS, criterion, optimizer, (data.x_val, data.y_val))''',
    "history": PLOT_HISTORY,
    "evaluate": '''\
test_loss, test_accuracy = evaluate(model, data.x_test, data.y_test, criterion, batch_size=BATCH_SIZE)
print(f"test accuracy: {test_accuracy:.4f}   test loss: {test_loss:.4f}")''',
    "predict": '''\
ROWS, COLS = 5, 5
model.eval()
with torch.no_grad():
    logits = model(torch.from_numpy(data.x_test[:ROWS * COLS]))
predicted = logits.argmax(dim=1).numpy()
print(tuple(logits.shape), predicted[:10])''',
    "grid": GRID,
}

TORCH_TEXT = {
    "title": '''\
# Apilando redes recurrentes, en PyTorch

El cuaderno original, reconstruido sobre la canalización de datos común del proyecto: la
misma red (tres `nn.RNN` de 8 unidades y una `Linear`), la misma receta (Adam, entropía
cruzada, lotes de 8192, 64 épocas) y los mismos lotes que recibe la versión de Keras
([`keras_rnn_apiladas_es.ipynb`](keras_rnn_apiladas_es.ipynb)). La guía de traducción está
en [`guide/es/README.md`](../es/README.md).''',
    "intro": '''\
## Introducción

Una red recurrente apilada encadena varias capas recurrentes: la secuencia que produce cada
capa es la entrada de la siguiente, y así las capas altas trabajan sobre lo que han
extraído las bajas.

## Objetivos

- Definir en PyTorch un modelo con tres capas recurrentes superpuestas.
- Entrenarlo con la misma receta que la versión de Keras y comparar.''',
    "setup": '''\
## Bibliotecas y configuración

La primera celda localiza la carpeta del proyecto para poder importar `common` y
`torch_version`.''',
    "imports": '''\
Las bibliotecas. `torchinfo` sustituye a `torchsummary`, y `torch_version.train.train` hace
el papel de la función `utils.train` del original: un bucle de entrenamiento con validación
al final de cada época. `torchvision` y `torchmetrics` ya no hacen falta.''',
    "style": "Un estilo para las gráficas:",
    "constants": '''\
La receta original: 64 épocas y lotes de 8192. `GUIDE_EPOCHS`, `GUIDE_BATCH_SIZE` y
`GUIDE_SUBSET` permiten una ejecución rápida (las pruebas usan 2 épocas y 2048 imágenes).''',
    "data": '''\
## Descarga y preproceso de los datos

El original usaba `torchvision.datasets.FashionMNIST` con `ToTensor()` y
`Normalize(0.5, 0.5)`, que dan tensores de forma `(1, 28, 28)` por imagen, con un eje de
canal que el modelo tenía que quitar con `squeeze(1)`. La canalización común da
directamente `(N, 28, 28)` en `float32` con los mismos valores, en [-1, 1], y la separación
de validación (un 10 %, con semilla) y los lotes barajados por época que también recibe
Keras.''',
    "show": "Algunas imágenes de entrenamiento con su clase:",
    "model": '''\
## Modelo con varias capas `RNN`

Cada `nn.RNN` devuelve la secuencia completa, `(lote, 28, 8)`, y el estado final; basta con
pasar la secuencia a la capa siguiente. Tras la tercera capa nos quedamos con el último paso,
`x[:, -1, :]`, y lo clasificamos. Como los datos ya llegan como `(lote, 28, 28)`, no hace
falta `squeeze`. Son 682 parámetros: cada capa recurrente tiene dos vectores de sesgo
(`bias_ih` y `bias_hh`), de ahí los 24 de más frente a Keras.

En Keras es al revés: una capa recurrente devuelve solo el último paso salvo que se indique
`return_sequences=True`.''',
    "fit": '''\
## Entrenamiento del modelo

`train` recorre las épocas: modo entrenamiento, paso de Adam por lote y, al final de cada
época, validación en modo evaluación y sin gradientes. La precisión que registra es la
proporción de aciertos (*micro*), como la `"accuracy"` de Keras; la `MulticlassAccuracy` de
torchmetrics del original promediaba por clase (*macro*).''',
    "history": "Evolución de la pérdida y la precisión (escala logarítmica):",
    "evaluate": "Resultado sobre el conjunto de prueba:",
    "predict": '''\
## Clasificación de nuevas muestras

Para predecir, el modelo pasa a modo evaluación (`model.eval()`) y se desactiva el cálculo
de gradientes (`torch.no_grad()`); la clase predicha es el índice del mayor *logit*.''',
    "grid": "Las 25 primeras imágenes de prueba: en verde los aciertos, en rojo los errores.",
    "end": '''\
## Conclusiones

Tres capas recurrentes apiladas aprenden a clasificar Fashion-MNIST leyendo cada imagen fila
a fila, pero lo hacen despacio: cada capa recorre 28 pasos en secuencia. La versión de Keras
del mismo modelo está en [`keras_rnn_apiladas_es.ipynb`](keras_rnn_apiladas_es.ipynb) y las
diferencias entre ambas bibliotecas en la [guía](../es/README.md).''',
}

TORCH_ORDER = ["title", "intro", "setup", "=root", "imports", "=imports", "style", "=style", "constants",
               "=constants", "data", "=data", "show", "=show", "model", "=model", "fit", "=fit",
               "history", "=history", "evaluate", "=evaluate", "predict", "=predict", "grid", "=grid", "end"]

NOTEBOOKS = {
    "keras_rnn_apiladas_es.ipynb": (KERAS_ORDER, KERAS_TEXT["es"], KERAS_CODE, "es"),
    "keras_stacked_rnn_en.ipynb": (KERAS_ORDER, KERAS_TEXT["en"], KERAS_CODE, "en"),
    "torch_rnn_apiladas_es.ipynb": (TORCH_ORDER, TORCH_TEXT, TORCH_CODE, "es"),
}


def notebook(name: str) -> nbformat.NotebookNode:
    """One notebook, with deterministic cell ids and no outputs."""
    order, text, code, language = NOTEBOOKS[name]
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "guide": {"language": language, "generated_by": "python -m guide.notebooks.build"},
    }
    stem = Path(name).stem
    for i, key in enumerate(order):
        cell = (nbformat.v4.new_code_cell(code[key[1:]]) if key.startswith("=")
                else nbformat.v4.new_markdown_cell(text[key]))
        cell["id"] = f"{stem}-{i:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(name: str) -> str:
    return nbformat.writes(notebook(name)) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m guide.notebooks.build", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if a file differs")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        path, text = HERE / name, render(name)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(path)
    for name in stale:
        print(f"{name} differs from what build.py writes: run python -m guide.notebooks.build", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
