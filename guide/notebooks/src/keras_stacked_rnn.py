# Source of keras_stacked_rnn_en.ipynb and keras_rnn_apiladas_es.ipynb (python -m guide.notebooks.build).
# Prose strings tagged en / es go into one language's notebook. The code is shared: only its
# comments and the text of its strings are chosen by language (see build.py's docstring).
"""en
# Stacking recurrent networks, in Keras 3

This is the Keras 3 translation of the course notebook *Apilando redes recurrentes*, which
trains a stacked recurrent network on Fashion-MNIST in PyTorch. The data, the network and
the training recipe are the same; only the library changes. The notebook needs nothing but
pip packages, so it runs on Colab, on a laptop or offline, and on any of Keras's three
backends: JAX, TensorFlow or PyTorch.

The guide's pages: [start](../en/index.md) · [the notebook, step by step](../en/walkthrough/index.md) · [reference table](../en/topics/index.md) · [why the numbers differ](../en/differ.md).

The guide's walkthrough puts every cell of this notebook next to its PyTorch original.

## Introduction

A stacked recurrent network is several recurrent layers placed one on top of the other:
the sequence that one layer outputs is the sequence the next layer reads. The lowest layer
works on the raw input and each layer above it on what the layers below found, one level of
abstraction higher each time.

Here the sequences are images: each 28 × 28 Fashion-MNIST image is read row by row, as 28
time steps of 28 features.

## Objectives

- Build the notebook's network in Keras: three recurrent layers of 8 units and a dense
  classifier.
- See the one thing that changes when stacking recurrent layers in Keras:
  `return_sequences`.
- Train it with the notebook's recipe and look at its predictions.
"""
"""es
# Apilando redes recurrentes, en Keras 3

Este cuaderno es la traducción a Keras 3 del cuaderno del curso *Apilando redes
recurrentes*, que entrena en PyTorch una red recurrente apilada sobre Fashion-MNIST. Los
datos, la red y la receta de entrenamiento son los mismos; solo cambia la biblioteca. No
necesita más que paquetes de pip, así que funciona en Colab, en un portátil o sin conexión,
y con cualquiera de los tres *backends* de Keras: JAX, TensorFlow o PyTorch.

Páginas de la guía: [inicio](../es/index.md) · [el cuaderno, paso a paso](../es/walkthrough/index.md) · [tabla de referencia](../es/topics/index.md) · [por qué difieren los números](../es/differ.md).

El recorrido paso a paso de la guía pone cada celda de este cuaderno junto a su original de
PyTorch.

## Introducción

Una red recurrente apilada consiste en varias capas recurrentes colocadas unas sobre otras: la
secuencia que produce una capa es la secuencia que lee la siguiente. La capa de abajo
trabaja sobre la entrada original y cada una de las de arriba sobre lo que han encontrado
las de debajo, con un nivel de abstracción más alto cada vez.

Aquí las secuencias son imágenes: cada imagen de 28 × 28 de Fashion-MNIST se lee fila a
fila, como 28 pasos de tiempo de 28 características.

## Objetivos

- Construir en Keras la red del cuaderno: tres capas recurrentes de 8 unidades y un
  clasificador denso.
- Ver lo único que cambia al apilar capas recurrentes en Keras: `return_sequences`.
- Entrenarla con la receta del cuaderno y revisar sus predicciones.
"""
# install: keras>=3.15 jax matplotlib
"""en
## Libraries and setup

Keras 3 runs on top of JAX, TensorFlow or PyTorch, and reads the environment variable
`KERAS_BACKEND` once, when it is first imported: it must be set **before** `import keras`.
`setdefault` keeps a choice made outside the notebook (for example
`KERAS_BACKEND=torch jupyter lab`); otherwise we use JAX.

Where TensorFlow is installed (Colab has it), Keras imports it even on JAX or PyTorch:
`keras.utils.set_random_seed`, which we call before building the model, seeds TensorFlow's
generator too. TensorFlow then prints a few start-up lines (`oneDNN custom operations are
on…`, `This TensorFlow binary is optimized…`). They are harmless, and the next two
`setdefault` lines keep them out: `TF_CPP_MIN_LOG_LEVEL="1"` hides TensorFlow's information
lines, and `TF_ENABLE_ONEDNN_OPTS="0"` the oneDNN notice, which ignores the log level. Both
act only if they are set before TensorFlow is imported. On JAX or PyTorch, TensorFlow
computes nothing here; on the TensorFlow backend, the second line also switches off oneDNN's
CPU kernels, so the last digits of the results may change, as that notice says.
"""
"""es
## Bibliotecas y configuración

Keras 3 funciona sobre JAX, TensorFlow o PyTorch, y lee la variable de entorno
`KERAS_BACKEND` solo al importarse por primera vez: hay que fijarla **antes** de
`import keras`. `setdefault` respeta una elección hecha fuera del cuaderno (por ejemplo,
`KERAS_BACKEND=torch jupyter lab`); si no la hay, usas JAX.

Si TensorFlow está instalado (en Colab lo está), Keras lo importa aunque trabaje con JAX o
con PyTorch: `keras.utils.set_random_seed`, que llamas antes de construir el modelo, fija
también la semilla de TensorFlow. Al cargarse, TensorFlow escribe unas líneas de registro
(`oneDNN custom operations are on…`, `This TensorFlow binary is optimized…`). No indican
ningún problema, y las dos líneas `setdefault` siguientes las silencian:
`TF_CPP_MIN_LOG_LEVEL="1"` oculta los mensajes informativos de TensorFlow y
`TF_ENABLE_ONEDNN_OPTS="0"`, el aviso de oneDNN, que no respeta ese nivel.
Las dos solo surten efecto si se fijan antes de que se importe TensorFlow. Con JAX o con
PyTorch, TensorFlow no calcula nada en este cuaderno; con el *backend* de TensorFlow, la
segunda desactiva además los núcleos de oneDNN para CPU, así que las últimas cifras de los
resultados pueden variar, como advierte el propio aviso.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # en: "jax", "tensorflow" or "torch"  # es: "jax", "tensorflow" o "torch"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")   # en: no INFO lines from TensorFlow  # es: sin los mensajes INFO de TensorFlow
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # en: nor its oneDNN notice  # es: ni su aviso sobre oneDNN

import keras
import matplotlib.pyplot as plt
import numpy as np

print(f"Keras {keras.__version__} «on the {keras.config.backend()} backend|con el backend {keras.config.backend()}»")
"""en
The plots' look:
"""
"""es
Ajustamos además el aspecto de las gráficas.
"""
plt.style.use("ggplot")
plt.rcParams.update({"figure.figsize": (20, 6), "figure.dpi": 64})
"""en
And the constants. Their defaults are the notebook's recipe: batches of 8192 images,
64 epochs, the whole training set. Three environment variables select a quick run without
editing the notebook: `GUIDE_BATCH_SIZE`, `GUIDE_EPOCHS` and `GUIDE_SUBSET` (how many of the
60,000 training images to use). The guide's quick recipe, which its tests use too, is
`GUIDE_EPOCHS=2 GUIDE_BATCH_SIZE=64 GUIDE_SUBSET=2560`: 2 epochs of 64-image batches on the
first 2,560 images. A quick run reaches about 20-25 % test accuracy (15-28 % over five seeds,
on JAX and on PyTorch); the full recipe, about 52-58 %.
"""
"""es
Y las constantes. Sus valores por defecto son la receta del cuaderno: lotes de 8192
imágenes, 64 épocas y el conjunto de entrenamiento completo. Tres variables de entorno
permiten una ejecución rápida sin tocar el cuaderno: `GUIDE_BATCH_SIZE`, `GUIDE_EPOCHS` y
`GUIDE_SUBSET` (cuántas de las 60 000 imágenes de entrenamiento usar). La receta rápida de
la guía, la misma que usan sus pruebas, es `GUIDE_EPOCHS=2 GUIDE_BATCH_SIZE=64
GUIDE_SUBSET=2560`: 2 épocas con lotes de 64 imágenes sobre las 2560 primeras. Una
ejecución rápida llega a una exactitud de prueba de alrededor de un 20-25 % (entre el 15 y
el 28 % con cinco semillas, con JAX y con PyTorch); la receta completa, a un 52-58 %.
"""
BATCH_SIZE = int(os.environ.get("GUIDE_BATCH_SIZE", 8192))
TRAIN_EPOCHS = int(os.environ.get("GUIDE_EPOCHS", 64))
SUBSET = int(os.environ.get("GUIDE_SUBSET", 60000))  # en: the first SUBSET training images  # es: las SUBSET primeras imágenes de entrenamiento
SEED = 0
print(f"«batch size|lotes de» {BATCH_SIZE}, {TRAIN_EPOCHS} «epochs|épocas», {SUBSET} «training images|imágenes de entrenamiento»")
"""en
***

## Data download and preprocessing

The data set is Fashion-MNIST. `keras.datasets.fashion_mnist.load_data()` downloads it the first
time, keeps the four files in `~/.keras/datasets/fashion-mnist/` (or under `$KERAS_HOME`),
and reads them from there afterwards, so it also works offline once they are there. It
returns NumPy arrays: images as `uint8` of shape `(60000, 28, 28)` and labels from 0 to 9.

The PyTorch notebook transforms each image with `ToTensor()`, which turns the bytes into
`float32` in [0, 1] and adds a channel axis, then `Normalize((0.5,), (0.5,))`, which
computes `(x - 0.5) / 0.5` and so gives values in [-1, 1]. `preprocess` applies the same
`float32` operations to the whole array, so the network sees exactly the same numbers. There
is no channel axis to remove: each image already is a sequence of 28 rows (time steps) of 28
pixels (features).
"""
"""es
***

## Descarga y preproceso de los datos

Los datos vuelven a ser Fashion-MNIST. `keras.datasets.fashion_mnist.load_data()` lo descarga
la primera vez, guarda los cuatro archivos en `~/.keras/datasets/fashion-mnist/` (o dentro de
`$KERAS_HOME`) y a partir de entonces los lee de ahí, así que también funciona sin conexión
una vez que están. Devuelve arrays de NumPy: las imágenes como `uint8` de forma
`(60000, 28, 28)` y las etiquetas, de 0 a 9.

El cuaderno de PyTorch transforma cada imagen con `ToTensor()`, que convierte los bytes en
`float32` en [0, 1] y añade un eje de canal, y después con `Normalize((0.5,), (0.5,))`, que
calcula `(x - 0.5) / 0.5` y deja los valores en [-1, 1]. `preprocess` aplica las mismas
operaciones en `float32` al array entero, de modo que la red ve exactamente los mismos
números. No hay eje de canal que quitar: cada imagen ya es una secuencia de 28 filas (pasos
de tiempo) de 28 píxeles (características).
"""
CLASS_NAMES = ["«T-shirt/top|Camiseta/top»", "«Trouser|Pantalón»", "«Pullover|Jersey»", "«Dress|Vestido»", "«Coat|Abrigo»",
               "«Sandal|Sandalia»", "«Shirt|Camisa»", "«Sneaker|Zapatilla»", "«Bag|Bolso»", "«Ankle boot|Botín»"]

(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
x_train, y_train = x_train[:SUBSET], y_train[:SUBSET]


def preprocess(images):
    """«uint8 (N, 28, 28) -> float32 in [-1, 1]: what ToTensor() + Normalize((0.5,), (0.5,)) compute.|uint8 (N, 28, 28) -> float32 en [-1, 1]: lo mismo que calculan ToTensor() + Normalize((0.5,), (0.5,)).»"""
    return (images.astype("float32") / 255 - 0.5) / 0.5


x_train, x_test = preprocess(x_train), preprocess(x_test)
print("«train:|entrenamiento:»", x_train.shape, x_train.dtype, y_train.shape, "  «test:|prueba:»", x_test.shape, y_test.shape)
print("«pixel values from|valores de los píxeles de»", x_train.min(), "«to|a»", x_train.max())
"""en
A few training images, with their class:
"""
"""es
Mira algunas imágenes de entrenamiento, con su clase:
"""
fig, axes = plt.subplots(1, 10, figsize=(20, 3))
for ax, image, label in zip(axes, x_train, y_train):
    ax.imshow(image, cmap="gray_r")
    ax.set_title(CLASS_NAMES[label])
    ax.axis("off")
plt.show()
"""en
## A model with several `RNN` layers

When recurrent layers are stacked, each one reads a sequence, and every one but the last
must hand a whole sequence on to the next.

PyTorch's `nn.RNN` always returns the whole sequence, a tensor of shape
`(batch_size, sequence_len, num_features)`, and the notebook keeps the last step with
`out[:, -1, :]` after the third layer. A Keras recurrent layer does the opposite: it returns
only the output of the **last** step, unless it is given `return_sequences=True`. So the
first two `SimpleRNN` layers carry that option and the third does not: its output already
is what `out[:, -1, :]` selects.

`SimpleRNN` is the same cell as `nn.RNN` (a `tanh` of the input term plus the recurrent
term) and `Dense` is `Linear`. The network ends without a softmax, in both libraries: it
outputs *logits*. The layers are named like the attributes of the PyTorch model.
"""
"""es
## Modelo con varias capas `RNN`

Al apilar capas recurrentes, cada una lee una secuencia y todas menos la última tienen que
entregar una secuencia completa a la siguiente.

La `nn.RNN` de PyTorch devuelve siempre la secuencia completa, un tensor de forma
`(batch_size, sequence_len, num_features)`, y el cuaderno se queda con el último paso con
`out[:, -1, :]` tras la tercera capa. Una capa recurrente de Keras hace lo contrario:
devuelve solo la salida del **último** paso, salvo que le pases `return_sequences=True`.
Por eso las dos primeras capas `SimpleRNN` llevan esa opción y la tercera no: su salida ya
es lo que selecciona `out[:, -1, :]`.

`SimpleRNN` es la misma celda que `nn.RNN` (una `tanh` del término de la entrada más el
término recurrente) y `Dense` es `Linear`. La red termina sin softmax en las dos bibliotecas:
devuelve *logits*. Las capas se llaman como los atributos del modelo de PyTorch.
"""
keras.utils.set_random_seed(SEED)  # en: the same initial weights on every run  # es: los mismos pesos iniciales en cada ejecución
rnn_model = keras.Sequential(
    [
        keras.Input(shape=(28, 28)),                                    # en: (batch, 28 time steps, 28 features)  # es: (lote, 28 pasos de tiempo, 28 rasgos)
        keras.layers.SimpleRNN(8, return_sequences=True, name="rnn1"),  # en: (batch, 28, 8)  # es: (lote, 28, 8)
        keras.layers.SimpleRNN(8, return_sequences=True, name="rnn2"),  # en: (batch, 28, 8)  # es: (lote, 28, 8)
        keras.layers.SimpleRNN(8, name="rnn3"),                         # en: (batch, 8): the last step only  # es: (lote, 8): solo el último paso
        keras.layers.Dense(10, name="fc"),                              # en: (batch, 10): logits  # es: (lote, 10): logits
    ],
    name="rnn_model",
)
"""en
Keras's own summary replaces `torchsummary`:
"""
"""es
El resumen propio de Keras sustituye a `torchsummary`:
"""
rnn_model.summary()
"""en
658 parameters, where PyTorch counts 682. Each `nn.RNN` layer keeps two bias vectors,
`bias_ih` and `bias_hh`, and a `SimpleRNN` keeps one: 3 layers × 8 units = 24. As the two
biases are always added together, both networks compute the same functions.

### Training the model

Time to train. A small slip in the original: its text announces $10$ epochs, while its code
runs `TRAIN_EPOCHS = 64`. We follow the code. With three layers, every training step walks
3 × 28 time steps one after the other, so some patience is needed.

In PyTorch, the loss and the optimizer are objects that the training loop uses at every
step. In Keras we declare them once, with `compile`:

- `SparseCategoricalCrossentropy(from_logits=True)` is `CrossEntropyLoss`: integer labels
  against logits. Without `from_logits=True` Keras would take the outputs for
  probabilities and compute a wrong loss, without any error.
- `Adam(learning_rate=1e-3)` is `torch.optim.Adam` with its default rate. Keras's Adam adds
  a larger epsilon (1e-7 against 1e-8), which only matters with tiny gradients.
- `"accuracy"` is the fraction of right answers (*micro* accuracy). The original measured
  torchmetrics' `MulticlassAccuracy`, which by default averages the accuracy of each class
  (*macro*). On Fashion-MNIST's test set, with 1,000 images per class, the two are equal;
  on a batch or an unbalanced subset they are not.
"""
"""es
Keras cuenta 658 parámetros donde PyTorch cuenta 682. Cada capa `nn.RNN` guarda dos vectores
de sesgo, `bias_ih` y `bias_hh`, y una `SimpleRNN` guarda uno: 3 capas × 8 unidades = 24.
Como los dos sesgos siempre se suman, las dos redes calculan las mismas funciones.

### Entrenamiento del modelo

Llega el momento de entrenar. Un pequeño despiste del original: su texto anuncia $10$
épocas, mientras que su código ejecuta `TRAIN_EPOCHS = 64`. Seguimos lo que hace el código.
Con tres capas, cada paso de entrenamiento recorre 3 × 28 pasos de tiempo uno tras otro, así
que habrá que tener paciencia.

En PyTorch, la pérdida y el optimizador son objetos que el bucle de entrenamiento usa en
cada paso. En Keras los declaras una sola vez, con `compile`:

- `SparseCategoricalCrossentropy(from_logits=True)` es `CrossEntropyLoss`: etiquetas enteras
  frente a *logits*. Sin `from_logits=True`, Keras tomaría las salidas por probabilidades y
  calcularía una pérdida equivocada sin dar ningún aviso.
- `Adam(learning_rate=1e-3)` es `torch.optim.Adam` con su tasa por defecto. El Adam de Keras
  suma un épsilon mayor (1e-7 frente a 1e-8), que solo se nota con gradientes diminutos.
- `"accuracy"` es la exactitud (*accuracy*) *micro*: la proporción de aciertos. El original
  medía la `MulticlassAccuracy` de torchmetrics, que por defecto promedia la exactitud de
  cada clase (*macro*). En el conjunto de prueba de Fashion-MNIST, con 1000 imágenes por
  clase, las dos coinciden; en un lote o en un subconjunto desequilibrado, no.
"""
rnn_model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
"""en
`fit` is the whole training loop. The original holds out 10 % of the training set for
validation (`validation_split=0.1`), and so do we, with the argument of the same name. Keras
takes **the last 10 % of the arrays**, before shuffling the rest at every epoch. That is
right here because the training file is not sorted by class, as the count below shows. On
data sorted by class it would hold out one or two classes only: then split at random
yourself and pass `validation_data=(x_val, y_val)`. The PyTorch notebook holds out a random
10 %: other images, from the same distribution.
"""
"""es
`fit` es el bucle de entrenamiento completo. El original aparta un 10 % del conjunto de
entrenamiento para validación (`validation_split=0.1`), y nosotros también, con el argumento
del mismo nombre. Keras toma **el último 10 % de los arrays**, antes de barajar el resto en
cada época. Aquí es correcto porque el archivo de entrenamiento no está ordenado por clase,
como muestra el recuento siguiente. Con datos ordenados por clase apartaría solo una o dos
clases: en ese caso conviene separar al azar y pasar `validation_data=(x_val, y_val)`. El
cuaderno de PyTorch aparta un 10 % al azar: otras imágenes, de la misma distribución.
"""
held_out = y_train[len(y_train) - len(y_train) // 10:]  # en: what validation_split=0.1 sets aside  # es: lo que aparta validation_split=0.1
print("«images per class in the last 10 %:|imágenes por clase en el último 10 %:»", np.bincount(held_out, minlength=10))
"""en
Let's train:
"""
"""es
Entrenemos:
"""
training = rnn_model.fit(
    x_train,
    y_train,
    batch_size=BATCH_SIZE,
    epochs=TRAIN_EPOCHS,
    validation_split=0.1,  # en: the last 10 % of x_train and y_train  # es: el último 10 % de x_train e y_train
    verbose=2,             # en: one line per epoch  # es: una línea por época
)
"""en
The history, epoch by epoch, on a log scale:
"""
"""es
Mira la evolución del entrenamiento, en escala logarítmica:
"""
LABELS = {"loss": "«training loss|pérdida de entrenamiento»", "accuracy": "«training accuracy|exactitud de entrenamiento»",
          "val_loss": "«validation loss|pérdida de validación»", "val_accuracy": "«validation accuracy|exactitud de validación»"}
for name, values in training.history.items():
    plt.plot(range(1, len(values) + 1), values, label=LABELS[name])
plt.yscale("log")
plt.xlabel("«Epoch|Época»")
plt.legend()
plt.show()
"""en
And on the test set, which training never saw:
"""
"""es
Y sobre el conjunto de prueba, que el entrenamiento no ha visto:
"""
# en: all 10,000 images in one batch: it fits easily, as evaluate (like predict) never keeps gradients
# es: las 10 000 imágenes en un solo lote: caben de sobra, porque evaluate (como predict) nunca guarda gradientes
test_loss, test_accuracy = rnn_model.evaluate(x_test, y_test, batch_size=len(x_test), verbose=0)
print(f"«test loss|pérdida en prueba» {test_loss:.4f}, «test accuracy|exactitud en prueba» {test_accuracy:.4f}")
"""en
A quick run ends at about 20-25 %, far from done; the full recipe reaches about 52-58 %. To
classify images, though, a convolutional network remains a better choice than this one.

Do not expect the PyTorch notebook's exact numbers: the two libraries start from different
initial weights, and with one seed that alone moves the final accuracy by several points.
The guide's page ["Why the numbers differ"](../en/differ.md) measures it.

### Classifying new samples

The first 25 test images, each with its true class and the model's answer: green when
right, red when wrong. `predict` always runs in inference mode, without gradients and in
batches, and returns a NumPy array: it needs nothing like `model.eval()` or
`torch.no_grad()`.
"""
"""es
Una ejecución rápida se queda en torno al 20-25 %, lejos del final; la receta completa llega a
un 52-58 %. Para clasificar imágenes, de todos modos, una red convolucional sigue siendo
mejor elección que esta.

No cabe esperar los números exactos del cuaderno de PyTorch: las dos bibliotecas parten de pesos
iniciales distintos y, con una sola semilla, eso basta para mover la exactitud final varios
puntos. La página [«Por qué difieren los números»](../es/differ.md) de la guía lo mide.

### Clasificación de nuevas muestras

Las 25 primeras imágenes de prueba, cada una con su clase real y la respuesta del modelo:
en verde los aciertos y en rojo los fallos. `predict` trabaja siempre en modo de inferencia,
sin gradientes y por lotes, y devuelve un array de NumPy: no necesita nada parecido a
`model.eval()` ni a `torch.no_grad()`.
"""
ROWS, COLS = 5, 5
IMAGES = ROWS * COLS

logits = rnn_model.predict(x_test[:IMAGES], verbose=0)  # (25, 10)
predicted = logits.argmax(axis=1)

fig = plt.figure(figsize=(15, 15))
for i, (image, true_label, pred_label) in enumerate(zip(x_test, y_test, predicted), 1):
    ax = fig.add_subplot(ROWS, COLS, i)
    ax.imshow(image, cmap="Greens" if true_label == pred_label else "Reds")
    ax.set_title(f"«True|Real»: {CLASS_NAMES[true_label]}\n«Predicted|Predicha»: {CLASS_NAMES[pred_label]}")
    ax.axis("off")
plt.tight_layout()
plt.show()
print("«right:|aciertos:»", int((predicted == y_test[:IMAGES]).sum()), "«of|de»", IMAGES)
"""en
## Conclusions

We have built a stacked recurrent network in Keras 3: three `SimpleRNN` layers of $8$
units, where the first two return their whole sequence, and a `Dense` classifier. (The
original's conclusion speaks of a two-layer model, but its code, like this one, stacks
three.) Fashion-MNIST has better and much faster options. A stack of recurrent layers earns
its cost on truly sequential data (text, audio, time series), where each layer can learn
patterns over a longer stretch of time than the one below it.

The guide puts each cell next to the PyTorch original, explains why the two libraries'
numbers differ, and lists every other difference with an example that runs: start from its
[reference table](../en/topics/index.md).
"""
"""es
## Conclusiones

Has construido en Keras 3 una red recurrente apilada: tres capas `SimpleRNN` de $8$
unidades, de las que las dos primeras devuelven su secuencia completa, y un clasificador
`Dense`. (La conclusión del original habla de un modelo de dos capas, pero su código, como
este, apila tres). Para Fashion-MNIST hay opciones mejores y mucho más rápidas de entrenar.
Una pila de capas recurrentes compensa su coste con datos que son secuencias por naturaleza
(texto, audio, series temporales), en los que cada capa puede aprender patrones en un tramo
de tiempo más largo que la de debajo.

La guía pone cada celda junto al original de PyTorch, explica por qué difieren los números
de las dos bibliotecas y recoge las demás diferencias, cada una con un ejemplo que se
ejecuta: empieza por su [tabla de referencia](../es/topics/index.md).
"""
