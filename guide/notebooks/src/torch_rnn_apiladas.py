# Source of torch_rnn_apiladas_es.ipynb (python -m guide.notebooks.build): the PyTorch notebook,
# self-contained. torchvision and the course's utils.train are replaced by a few plain cells.
# The prose is Spanish only; the code's comments and strings are in both languages (see build.py),
# so the English guide shows the same cells in English.
"""es
# Apilando redes recurrentes, en PyTorch

El cuaderno del curso, reconstruido para que funcione en cualquier sitio con solo paquetes de
pip (`torch`, `torchinfo`, `matplotlib`): en Colab, en un portátil o sin conexión. La red
(`RNNModel`) y la receta (Adam, entropía cruzada, lotes de 8192, 64 épocas) son las del
original. Cambian dos cosas, porque el original dependía de ellas:

- **`torchvision`**, que no siempre está instalado: unas pocas líneas leen los cuatro
  archivos de Fashion-MNIST y aplican lo mismo que `ToTensor()` + `Normalize((0.5,), (0.5,))`;
- **`utils.train`**, el bucle de entrenamiento del curso, que no viene con el cuaderno:
  aquí está escrito completo.

Páginas de la guía: [inicio](../es/index.md) · [el cuaderno, paso a paso](../es/walkthrough/index.md) · [tabla de referencia](../es/topics/index.md) · [por qué difieren los números](../es/differ.md).

Su traducción a Keras 3 es el cuaderno `keras_rnn_apiladas_es.ipynb`, y el recorrido paso a
paso de la guía pone cada celda junto a su traducción.

## Introducción

Una red recurrente apilada consiste en varias capas recurrentes colocadas unas sobre otras: la
secuencia que produce una capa es la secuencia que lee la siguiente. La capa de abajo
trabaja sobre la entrada original y cada una de las de arriba sobre lo que han encontrado
las de debajo, con un nivel de abstracción más alto cada vez.

Aquí las secuencias son imágenes: cada imagen de 28 × 28 de Fashion-MNIST se lee fila a
fila, como 28 pasos de tiempo de 28 características.

## Objetivos

- Definir en PyTorch un modelo con tres capas recurrentes, una encima de otra.
- Entrenarlo con un bucle escrito a mano y revisar sus predicciones.
"""
# install: torch torchinfo matplotlib
"""es
## Bibliotecas y configuración

Importa lo que usarás a lo largo del cuaderno. `torchinfo` sustituye a `torchsummary`,
que ya no se mantiene. `gzip` y `urllib` sustituyen a `torchvision` para leer y descargar
los datos.
"""
import gzip
import os
import urllib.request

import matplotlib.pyplot as plt
import numpy as np
import torch
import torchinfo

print("PyTorch", torch.__version__)
"""es
Ajustamos además el aspecto de las gráficas.
"""
plt.style.use("ggplot")
plt.rcParams.update({"figure.figsize": (20, 6), "figure.dpi": 64})
"""es
Y las constantes. Sus valores por defecto son la receta del cuaderno: lotes de 8192
imágenes, 64 épocas y el conjunto de entrenamiento completo. Tres variables de entorno
permiten una ejecución rápida sin tocar el cuaderno: `GUIDE_BATCH_SIZE`, `GUIDE_EPOCHS` y
`GUIDE_SUBSET` (cuántas de las 60 000 imágenes de entrenamiento usar). La receta rápida de
la guía, la misma que usan sus pruebas, es `GUIDE_EPOCHS=2 GUIDE_BATCH_SIZE=64
GUIDE_SUBSET=2560`: 2 épocas con lotes de 64 imágenes sobre las 2560 primeras. Una
ejecución rápida llega a una exactitud de prueba de alrededor de un 20 % (entre el 17 y el
25 % con cinco semillas); la receta completa, a un 52-58 %.
"""
BATCH_SIZE = int(os.environ.get("GUIDE_BATCH_SIZE", 8192))
TRAIN_EPOCHS = int(os.environ.get("GUIDE_EPOCHS", 64))
SUBSET = int(os.environ.get("GUIDE_SUBSET", 60000))  # en: the first SUBSET training images  # es: las SUBSET primeras imágenes de entrenamiento
SEED = 0
print(f"«batch size|lotes de» {BATCH_SIZE}, {TRAIN_EPOCHS} «epochs|épocas», {SUBSET} «training images|imágenes de entrenamiento»")
"""es
***

## Descarga y preproceso de los datos

Los datos vuelven a ser Fashion-MNIST. El original lo cargaba con torchvision, en esta celda (aquí
solo se muestra, no se ejecuta):

```python
transform = torchvision.transforms.Compose([
    torchvision.transforms.ToTensor(),
    torchvision.transforms.Normalize(mean=(0.5,), std=(0.5,))
])

train_set = torchvision.datasets.FashionMNIST(
    root=DATASETS_DIR,
    train=True,
    download=True,
    transform=transform,
)
test_set = torchvision.datasets.FashionMNIST(
    root=DATASETS_DIR,
    train=False,
    download=True,
    transform=transform,
)

train_loader = torch.utils.data.DataLoader(
    dataset=train_set, batch_size=BATCH_SIZE, shuffle=True,
)
test_loader = torch.utils.data.DataLoader(
    test_set, batch_size=BATCH_SIZE, shuffle=False,
)
```

Sin torchvision, haces lo mismo a mano, en tres partes:

1. `read_idx` lee uno de los cuatro archivos IDX comprimidos del conjunto. Los busca en la
   misma carpeta en la que los guarda Keras (`~/.keras/datasets/fashion-mnist/`, o dentro de
   `$KERAS_HOME`), y si faltan los descarga de la misma dirección que usa Keras. Así, los
   cuadernos de PyTorch y de Keras comparten una sola copia, y basta con tenerla para
   trabajar sin conexión. Un archivo IDX es una cabecera (un número mágico cuyo último byte
   es el número de dimensiones, y un tamaño de 4 bytes por dimensión) seguida de los datos.
2. `FashionMNIST` es un `Dataset` que devuelve lo mismo que el de torchvision con
   `ToTensor()` + `Normalize((0.5,), (0.5,))`: cada imagen como un tensor `float32` de forma
   `(1, 28, 28)` (con el eje de canal) y valores `(x / 255 - 0.5) / 0.5`, en [-1, 1], y su
   etiqueta como entero. Hacemos la cuenta una sola vez, para todo el conjunto, en lugar de
   imagen a imagen.
3. Los `DataLoader`, como en el original. `utils.train` apartaba un 10 % para validación
   (`validation_split=0.1`); aquí lo haces a la vista, con `random_split` y una semilla.
"""
CLASS_NAMES = ["«T-shirt/top|Camiseta/top»", "«Trouser|Pantalón»", "«Pullover|Jersey»", "«Dress|Vestido»", "«Coat|Abrigo»",
               "«Sandal|Sandalia»", "«Shirt|Camisa»", "«Sneaker|Zapatilla»", "«Bag|Bolso»", "«Ankle boot|Botín»"]

DATASETS_DIR = os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "datasets", "fashion-mnist")
URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"  # en: where keras.datasets downloads it from  # es: de donde lo descarga keras.datasets


def read_idx(name):
    """«One of the four IDX files as a flat uint8 array; downloaded into DATASETS_DIR the first time.|Uno de los cuatro archivos IDX como array plano de uint8; la primera vez, lo descarga en DATASETS_DIR.»"""
    path = os.path.join(DATASETS_DIR, name)
    if not os.path.exists(path):
        os.makedirs(DATASETS_DIR, exist_ok=True)
        urllib.request.urlretrieve(URL + name, path + ".part")
        os.replace(path + ".part", path)  # en: only a complete download gets the real name  # es: solo una descarga completa recibe el nombre definitivo
    with gzip.open(path, "rb") as f:
        data = f.read()
    return np.frombuffer(data, np.uint8, offset=4 + 4 * data[3]).copy()  # en: skip the header; a writable copy  # es: sin la cabecera; una copia modificable


class FashionMNIST(torch.utils.data.Dataset):
    """«Fashion-MNIST as torchvision gives it with ToTensor() + Normalize((0.5,), (0.5,)).|Fashion-MNIST tal como lo da torchvision con ToTensor() + Normalize((0.5,), (0.5,)).»"""

    def __init__(self, train=True):
        prefix = "train" if train else "t10k"
        images = read_idx(f"{prefix}-images-idx3-ubyte.gz").reshape(-1, 1, 28, 28)  # en: (N, channel, rows, columns)  # es: (N, canal, filas, columnas)
        self.labels = read_idx(f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
        self.images = (torch.from_numpy(images).float() / 255 - 0.5) / 0.5  # en: ToTensor, then Normalize  # es: ToTensor y después Normalize

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])
"""es
Cargas los dos conjuntos, te quedas con las `SUBSET` primeras imágenes de
entrenamiento, apartas el 10 % al azar para validación y preparas los lotes:
"""
train_set = torch.utils.data.Subset(FashionMNIST(train=True), range(SUBSET))
test_set = FashionMNIST(train=False)

generator = torch.Generator().manual_seed(SEED)
train_part, val_part = torch.utils.data.random_split(train_set, [0.9, 0.1], generator=generator)

train_loader = torch.utils.data.DataLoader(dataset=train_part, batch_size=BATCH_SIZE, shuffle=True, generator=generator)
val_loader = torch.utils.data.DataLoader(val_part, batch_size=BATCH_SIZE, shuffle=False)
test_loader = torch.utils.data.DataLoader(test_set, batch_size=BATCH_SIZE, shuffle=False)

image, label = test_set[0]
print("«train:|entrenamiento:»", len(train_part), " «validation:|validación:»", len(val_part), " «test:|prueba:»", len(test_set))
print("«one image:|una imagen:»", tuple(image.shape), image.dtype, " «values from|valores de»", image.min().item(), "«to|a»", image.max().item())
print("«batches per epoch:|lotes por época:»", len(train_loader))
"""es
Mira algunas imágenes de entrenamiento, con su clase:
"""
fig, axes = plt.subplots(1, 10, figsize=(20, 3))
for ax, (image, label) in zip(axes, train_set):
    ax.imshow(image.squeeze(0), cmap="gray_r")
    ax.set_title(CLASS_NAMES[label])
    ax.axis("off")
plt.show()
"""es
## Modelo con varias capas `RNN`

Al apilar capas recurrentes, cada una lee una secuencia y todas menos la última tienen que
entregar una secuencia completa a la siguiente. En PyTorch no hay que hacer nada especial:
una `nn.RNN` devuelve siempre la secuencia completa, de forma
`(batch_size, sequence_len, num_features)`, junto con el estado final, así que la salida de
una capa sirve tal cual como entrada de la siguiente. Tras la tercera capa te quedas con
el último paso, `out[:, -1, :]`, y lo clasificas con una capa lineal. La red termina sin
softmax: devuelve *logits*, que es lo que espera `CrossEntropyLoss`.

`x.squeeze(1)` quita el eje de canal que añade `ToTensor()`: `(lote, 1, 28, 28)` pasa a ser
`(lote, 28, 28)`, es decir, 28 pasos de tiempo (las filas) de 28 características (las
columnas).
"""
class RNNModel(torch.nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rnn1 = torch.nn.RNN(input_size=28, hidden_size=8, batch_first=True)
        self.rnn2 = torch.nn.RNN(input_size=8, hidden_size=8, batch_first=True)
        self.rnn3 = torch.nn.RNN(input_size=8, hidden_size=8, batch_first=True)
        self.fc = torch.nn.Linear(in_features=8, out_features=10)

    def forward(self, x):
        x = x.squeeze(1)          # en: (batch, 1, 28, 28) -> (batch, 28, 28)  # es: (lote, 1, 28, 28) -> (lote, 28, 28)
        out, _ = self.rnn1(x)     # en: (batch, 28, 8)  # es: (lote, 28, 8)
        out, _ = self.rnn2(out)   # en: (batch, 28, 8)  # es: (lote, 28, 8)
        out, _ = self.rnn3(out)   # en: (batch, 28, 8)  # es: (lote, 28, 8)
        out = out[:, -1, :]       # en: (batch, 8): the last time step  # es: (lote, 8): el último paso de tiempo
        out = self.fc(out)        # en: (batch, 10): logits  # es: (lote, 10): logits
        return out


torch.manual_seed(SEED)  # en: the same initial weights on every run  # es: los mismos pesos iniciales en cada ejecución
model = RNNModel()
"""es
`torchinfo.summary` sustituye a `torchsummary.summary`. Le das la forma de un lote de una
imagen, tal como la entrega el `DataLoader`:
"""
print(torchinfo.summary(model, input_size=(1, 1, 28, 28), verbose=0))
"""es
682 parámetros: cada `nn.RNN` guarda dos vectores de sesgo, `bias_ih` y `bias_hh`. Keras
guarda uno por capa y cuenta 658, 24 menos; como los dos sesgos siempre se suman, las dos
redes calculan las mismas funciones.

Ojo al traducir a Keras: allí una capa recurrente devuelve solo el último paso, y para
apilarla hay que pedirle la secuencia completa con `return_sequences=True`.

### Entrenamiento del modelo

Llega el momento de entrenar. Un pequeño despiste del original: su texto anuncia $10$
épocas, mientras que su código ejecuta `TRAIN_EPOCHS = 64`. Seguimos lo que hace el código.
Con tres capas, cada paso de entrenamiento recorre 3 × 28 pasos de tiempo uno tras otro, así
que habrá que tener paciencia.

Primero, la pérdida y el optimizador: `CrossEntropyLoss` compara los *logits* con las
etiquetas enteras, y Adam usa su tasa de aprendizaje por defecto, 1e-3, como el original.
"""
criterion = torch.nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
"""es
Después, el bucle que hacía `utils.train`. En cada época recorres los lotes de
entrenamiento en modo de entrenamiento (`model.train()`): pones a cero los gradientes,
calculas la salida y la pérdida, propagas hacia atrás y das un paso del optimizador.
Al final de cada época mides la pérdida y la exactitud (*accuracy*) sobre la validación, en
modo de evaluación (`model.eval()`) y sin gradientes (`torch.no_grad()`). El historial guarda
una lista por medida, con las mismas claves que usa Keras.

La exactitud que mides es la *micro*: aciertos entre total, como la `"accuracy"` de Keras.
El original usaba la `MulticlassAccuracy` de torchmetrics, que por defecto es *macro*: la
media de la exactitud de cada clase. Sobre el conjunto de prueba de Fashion-MNIST, con 1000
imágenes por clase, las dos coinciden; en un lote o en un subconjunto desequilibrado, no.
"""
def evaluate(model, loader, criterion):
    """«Mean loss and micro accuracy over a loader, in eval mode and without gradients.|Pérdida media y exactitud micro sobre un DataLoader, en modo de evaluación y sin gradientes.»"""
    model.eval()
    total_loss, right, seen = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            logits = model(images)
            total_loss += criterion(logits, labels).item() * len(labels)
            right += (logits.argmax(dim=1) == labels).sum().item()
            seen += len(labels)
    return total_loss / seen, right / seen


def train(model, train_loader, val_loader, n_epochs, criterion, optimizer):
    """«The course's utils.train: one pass over train_loader per epoch, then validation.|El utils.train del curso: una pasada por train_loader en cada época y después la validación.»"""
    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    for epoch in range(n_epochs):
        model.train()
        total_loss, right, seen = 0.0, 0, 0
        for images, labels in train_loader:
            optimizer.zero_grad()
            logits = model(images)
            loss = criterion(logits, labels)  # en: torch losses take (prediction, target)  # es: las pérdidas de torch reciben (predicción, objetivo)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(labels)
            right += (logits.argmax(dim=1) == labels).sum().item()
            seen += len(labels)
        val_loss, val_accuracy = evaluate(model, val_loader, criterion)
        for key, value in zip(history, (total_loss / seen, right / seen, val_loss, val_accuracy)):
            history[key].append(value)
        print(f"«epoch|época» {epoch + 1}/{n_epochs} - loss: {history['loss'][-1]:.4f} - accuracy: {history['accuracy'][-1]:.4f}"
              f" - val_loss: {val_loss:.4f} - val_accuracy: {val_accuracy:.4f}")
    return history
"""es
Entrenemos:
"""
history = train(model, train_loader, val_loader, TRAIN_EPOCHS, criterion, optimizer)
"""es
Mira la evolución del entrenamiento, en escala logarítmica:
"""
LABELS = {"loss": "«training loss|pérdida de entrenamiento»", "accuracy": "«training accuracy|exactitud de entrenamiento»",
          "val_loss": "«validation loss|pérdida de validación»", "val_accuracy": "«validation accuracy|exactitud de validación»"}
for name, values in history.items():
    plt.plot(range(1, len(values) + 1), values, label=LABELS[name])
plt.yscale("log")
plt.xlabel("«Epoch|Época»")
plt.legend()
plt.show()
"""es
Y sobre el conjunto de prueba, que el entrenamiento no ha visto:
"""
test_loss, test_accuracy = evaluate(model, test_loader, criterion)
print(f"«test loss|pérdida en prueba» {test_loss:.4f}, «test accuracy|exactitud en prueba» {test_accuracy:.4f}")
"""es
Una ejecución rápida se queda en torno al 20 %, lejos del final; la receta completa llega a
un 52-58 %. Para clasificar imágenes, de todos modos, una red convolucional sigue siendo
mejor elección que esta.

No cabe esperar los números exactos del cuaderno de Keras: las dos bibliotecas parten de pesos
iniciales distintos y, con una sola semilla, eso basta para mover la exactitud final varios
puntos. La página [«Por qué difieren los números»](../es/differ.md) de la guía lo mide.

### Clasificación de nuevas muestras

Las 25 primeras imágenes de prueba, cada una con su clase real y la respuesta del modelo: en
verde los aciertos y en rojo los fallos. Para predecir, pasas el modelo a modo de
evaluación (`model.eval()`), desactivas los gradientes (`torch.no_grad()`) y te quedas
con el índice del mayor *logit*. Las etiquetas llevan el nombre de la clase en lugar de su
número.
"""
ROWS, COLS = 5, 5
IMAGES = ROWS * COLS

images, labels = [], []
for i in range(IMAGES):
    img, label = test_set[i]
    images.append(img)
    labels.append(label)

images_tensor = torch.stack(images)  # (25, 1, 28, 28)

model.eval()
with torch.no_grad():
    outputs = model(images_tensor)
    preds = torch.argmax(outputs, dim=1).numpy()

fig = plt.figure(figsize=(15, 15))
for i, (img, true_label, pred_label) in enumerate(zip(images_tensor, labels, preds), 1):
    ax = fig.add_subplot(ROWS, COLS, i)
    img_np = img.squeeze(0).numpy()
    ax.imshow(img_np, cmap="Greens" if true_label == pred_label else "Reds")
    ax.set_title(f"«True|Real»: {CLASS_NAMES[true_label]}\n«Predicted|Predicha»: {CLASS_NAMES[pred_label]}")
    ax.axis("off")
plt.tight_layout()
plt.show()
print("«right:|aciertos:»", int((preds == np.array(labels)).sum()), "«of|de»", IMAGES)
"""es
## Conclusiones

Has definido y entrenado en PyTorch una red recurrente apilada: tres capas `nn.RNN` de $8$
unidades y un clasificador lineal sobre el último paso. (La conclusión del original habla de
un modelo de dos capas, pero su código, como este, apila tres). Para Fashion-MNIST hay
opciones mejores y mucho más rápidas de entrenar. Una pila de capas recurrentes compensa su
coste con datos que son secuencias por naturaleza (texto, audio, series temporales), en los
que cada capa puede aprender patrones en un tramo de tiempo más largo que la de debajo.

La misma red en Keras 3 está en `keras_rnn_apiladas_es.ipynb`, y el recorrido paso a paso de
la guía pone las dos, celda a celda, una junto a otra.
"""
