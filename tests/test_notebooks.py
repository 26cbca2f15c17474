"""The notebooks (guide/notebooks) and section 2 of the guides, which is made of their cells.

* The .ipynb files are what ``python -m guide.notebooks.build`` writes from ``src/``.
  One source gives each language's cells: the same code, in the same cells, with that
  language's comments and string text; at most 1 in 10 prose comments of a Spanish
  notebook is left as in English (``guide.i18n``).
* They are self-contained: only pip packages, no search for the repository.  Each runs
  in quick mode with nbclient, alone in a temporary folder outside the repository,
  with PYTHONPATH unset and a KERAS_HOME that holds only the four data files; the
  Keras ones on every backend in ``make test-extended``, which CI runs after ``make test``
  (marked ``extended_only``; their cells also run in section 2 of the guide, in
  ``make test``), the PyTorch one in ``make test``.
* The plain code is the project's network (issue 9, part 3), tested on the cells the
  notebooks run, executed here: the Keras model has ``build_model()``'s layers,
  output shapes and parameter count, and ``RNNModel``'s weights, copied by
  ``parity.torch_to_keras``, give the same logits in it.
* The walkthrough pages' PyTorch | Keras tabs are the notebooks' cells, and hold them all.
"""
from __future__ import annotations

import ast
import inspect
import os
import re
import shutil
import types
from pathlib import Path

import numpy as np
import pytest

from guide.notebooks import build
from guide.site import QUICK  # the guide's one quick recipe, as the site runs the notebooks
from tests.conftest import ROOT

pytestmark = pytest.mark.guide

GUIDE = ROOT / "guide"
KERAS_NOTEBOOKS = {"en": "keras_stacked_rnn_en.ipynb", "es": "keras_rnn_apiladas_es.ipynb"}
TORCH_NOTEBOOK = "torch_rnn_apiladas_es.ipynb"
PIP_MODULES = {"os", "gzip", "urllib", "matplotlib", "numpy", "torch", "torchinfo", "keras",
               "importlib", "re", "subprocess", "sys"}  # the last four: the install cell (standard library)
PROJECT_MODULES = {"common", "torch_version", "keras_version", "parity", "guide", "benchmarks", "tests"}
# What the notebooks print, in each language: the labels the runs below look for.
SAYS = {
    "en": {"recipe": "batch size 64, 2 epochs, 2560 training images",
           "keras": r"^Keras 3\.\S+ on the {backend} backend$",
           "keras data": "train: (2560, 28, 28) float32 (2560,)   test: (10000, 28, 28) (10000,)\n"
                         "pixel values from -1.0 to 1.0",
           "per class": r"images per class in the last 10 %: \[([\d\s]+)\]",
           "test": r"^test loss ([\d.]+), test accuracy ([\d.]+)$",
           "torch data": "train: 2304  validation: 256  test: 10000\n"
                         "one image: (1, 28, 28) torch.float32  values from -1.0 to 1.0\nbatches per epoch: 36",
           "epoch": r"^epoch (\d)/2 - loss: ([\d.]+) - accuracy: ([\d.]+) - val_loss: ([\d.]+)"},
    "es": {"recipe": "lotes de 64, 2 épocas, 2560 imágenes de entrenamiento",
           "keras": r"^Keras 3\.\S+ con el backend {backend}$",
           "keras data": "entrenamiento: (2560, 28, 28) float32 (2560,)   prueba: (10000, 28, 28) (10000,)\n"
                         "valores de los píxeles de -1.0 a 1.0",
           "per class": r"imágenes por clase en el último 10 %: \[([\d\s]+)\]",
           "test": r"^pérdida en prueba ([\d.]+), exactitud en prueba ([\d.]+)$", "right": r"^aciertos: (\d+) de 25$",
           "torch data": "entrenamiento: 2304  validación: 256  prueba: 10000\n"
                         "una imagen: (1, 28, 28) torch.float32  valores de -1.0 a 1.0\nlotes por época: 36",
           "epoch": r"^época (\d)/2 - loss: ([\d.]+) - accuracy: ([\d.]+) - val_loss: ([\d.]+)"},
}
# In a walkthrough tab, the lines after this marker are the guide's own check, not a notebook cell.
CHECK_MARKER = {"en": "# --- the guide's check, not in the notebook ---",
                "es": "# --- comprobación de la guía, no está en el cuaderno ---"}


def cell(name: str, marker: str) -> str:
    """The one code cell of a notebook that contains ``marker``."""
    found = [text for text in build.code_cells(name) if marker in text]
    assert len(found) == 1, f"{name}: {len(found)} cells contain {marker!r}"
    return found[0]


def run_cells(name: str, *markers: str) -> dict:
    """Execute, in one namespace, the notebook's cells that contain each marker, in order."""
    namespace = {"__name__": "__notebook__"}
    for marker in markers:
        exec(compile(cell(name, marker), f"{name}:{marker}", "exec"), namespace)
    return namespace


def definitions(name: str, marker: str, namespace: dict) -> dict:
    """Execute only the imports, UPPER_CASE constants, functions and classes of one cell."""
    tree = ast.parse(cell(name, marker))
    tree.body = [node for node in tree.body
                 if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))
                 or (isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets))]
    exec(compile(tree, f"{name}:{marker}", "exec"), namespace)
    return namespace


def imported_modules(code: str) -> set[str]:
    """Top-level names of every module a piece of code imports (IPython magics skipped)."""
    source = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


def only_comments(code: str) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in code.splitlines())


# --- Built from the sources, stored empty ------------------------------------------------------

@pytest.mark.parametrize("name", list(build.NOTEBOOKS))
def test_notebook_is_what_the_build_writes(name):
    path = GUIDE / "notebooks" / name
    assert path.is_file(), f"{name} is missing: run python -m guide.notebooks.build"
    assert path.read_text(encoding="utf-8") == build.render(name), \
        f"{name} differs from its source: run python -m guide.notebooks.build"


def test_build_check_finds_a_stale_notebook_and_the_build_fixes_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(build, "HERE", tmp_path)
    for name in build.NOTEBOOKS:
        shutil.copyfile(GUIDE / "notebooks" / name, tmp_path / name)
    (tmp_path / TORCH_NOTEBOOK).write_text("{}", encoding="utf-8")
    assert build.main(["--check"]) == 1
    assert TORCH_NOTEBOOK in capsys.readouterr().err
    assert build.main([]) == 0 and build.main(["--check"]) == 0
    assert (tmp_path / TORCH_NOTEBOOK).read_text(encoding="utf-8") == build.render(TORCH_NOTEBOOK)


def test_source_format(tmp_path):
    source = tmp_path / "demo.py"
    source.write_text('# header, not a cell\n"""\n# Title\n"""\n"""en\nEnglish only.\n"""\n"""es\nSolo en español.\n"""\n'
                      'x = 1\n\nprint(x)\n"""\nBetween.\n"""\n\ny = 2\n', encoding="utf-8")
    assert build.parse(source, "en") == [("markdown", "# Title"), ("markdown", "English only."),
                                         ("code", "x = 1\n\nprint(x)"), ("markdown", "Between."), ("code", "y = 2")]
    assert [text for _, text in build.parse(source, "es")][1] == "Solo en español."
    source.write_text('"""\nnever closed\n', encoding="utf-8")
    with pytest.raises(ValueError, match="never closed"):
        build.parse(source, "en")


def test_source_gives_each_language_its_comments_and_string_text(tmp_path):
    source = tmp_path / "demo.py"
    source.write_text('"""\nProse.\n"""\n'
                      'def f(x):\n'
                      '    # en: why, in English\n'
                      '    # en: on two lines\n'
                      '    # es: por qué, en español\n'
                      '    return x  # (batch, 8)\n'
                      'y = f(2)  # en: the answer  # es: la respuesta\n'
                      'print(f"«value|valor» {y}", "«done|hecho»")\n', encoding="utf-8")
    assert build.parse(source, "en")[1] == ("code", 'def f(x):\n    # why, in English\n    # on two lines\n'
                                                    '    return x  # (batch, 8)\ny = f(2)  # the answer\n'
                                                    'print(f"value {y}", "done")')
    assert build.parse(source, "es")[1] == ("code", 'def f(x):\n    # por qué, en español\n'
                                                    '    return x  # (batch, 8)\ny = f(2)  # la respuesta\n'
                                                    'print(f"valor {y}", "hecho")')
    source.write_text('"""\nProse.\n"""\nx = 1\n# en: English only\ny = 2\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"demo.py:5: this comment is in en only"):
        build.parse(source, "es")
    source.write_text('"""\nProse.\n"""\nx = 1\ny = "«half"  # en: no Spanish\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"demo.py:5: a language marker the build cannot read"):
        build.parse(source, "en")


def test_notebooks_store_no_outputs_and_both_keras_notebooks_run_the_same_code():
    import nbformat

    from guide.runner import code_signature
    cells = {}
    for name in build.NOTEBOOKS:
        nb = nbformat.read(GUIDE / "notebooks" / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), name
        assert len(code) >= 14 and len(nb.cells) - len(code) >= 14, name
        cells[name] = nb.cells
    en, es = (cells[KERAS_NOTEBOOKS[lang]] for lang in ("en", "es"))
    assert [c.cell_type for c in en] == [c.cell_type for c in es]
    assert en[0].source.startswith("# Stacking recurrent networks") and es[0].source.startswith("# Apilando redes")
    pairs = [(a.source, b.source) for a, b in zip(en, es) if a.cell_type == "code"]
    assert [code_signature(a) for a, b in pairs] == [code_signature(b) for a, b in pairs]
    assert sum(a != b for a, b in pairs) >= 10, "the Spanish cells have their own comments and labels"
    # The PyTorch notebook is Spanish only; its English cells are the English guide's.
    torch_en, torch_es = build.code_cells(TORCH_NOTEBOOK, "en"), build.code_cells(TORCH_NOTEBOOK)
    assert len(torch_en) == len(torch_es) >= 14
    assert [code_signature(c) for c in torch_en] == [code_signature(c) for c in torch_es]
    assert sum(a != b for a, b in zip(torch_en, torch_es)) >= 9


@pytest.mark.parametrize("name", [KERAS_NOTEBOOKS["es"], TORCH_NOTEBOOK])
def test_spanish_notebooks_comment_and_label_in_spanish(name):
    from guide.i18n import identical_share, prose_comment_lines
    english, spanish = ("\n\n".join(build.code_cells(name, lang)) for lang in ("en", "es"))
    assert len(prose_comment_lines(spanish)) >= 8
    assert identical_share(english, spanish) <= 0.1
    for label in ("Real: {CLASS_NAMES[true_label]}\\nPredicha: {CLASS_NAMES[pred_label]}", 'plt.xlabel("Época")',
                  '"val_loss": "pérdida de validación"', '"Botín"'):
        assert label in spanish, label
    assert "Expected" not in spanish and "Predicted" not in spanish and "Ankle boot" not in spanish


@pytest.mark.parametrize("name", list(build.NOTEBOOKS))
def test_notebook_needs_only_pip_packages(name):
    code = build.code_cells(name)
    imported = set().union(*map(imported_modules, code))
    assert imported <= PIP_MODULES, f"{name} imports {sorted(imported - PIP_MODULES)}"
    assert not imported & PROJECT_MODULES
    for text in code:
        assert "sys.path" not in text and "__file__" not in text and "find_project_root" not in text
    first = code[0]
    assert build.is_install_cell(first), "the first cell installs what the machine lacks"


@pytest.mark.parametrize("name", list(build.NOTEBOOKS))
def test_notebook_keeps_the_original_sections_and_points_out_its_slips(name):
    prose = [text for kind, text in build.parse(build.SOURCES / build.NOTEBOOKS[name][0], build.NOTEBOOKS[name][1])
             if kind == "markdown"]
    headings = [line for text in prose for line in text.splitlines() if line.startswith(("## ", "### "))]
    if name.endswith("_es.ipynb"):
        expected = ["## Introducción", "## Objetivos", "## Bibliotecas y configuración",
                    "## Descarga y preproceso de los datos", "## Modelo con varias capas `RNN`",
                    "### Entrenamiento del modelo", "### Clasificación de nuevas muestras", "## Conclusiones"]
        slips = ["$10$", "`TRAIN_EPOCHS = 64`", "dos capas"]
    else:
        expected = ["## Introduction", "## Objectives", "## Libraries and setup", "## Data download and preprocessing",
                    "## A model with several `RNN` layers", "### Training the model", "### Classifying new samples",
                    "## Conclusions"]
        slips = ["$10$", "`TRAIN_EPOCHS = 64`", "two-layer"]
    assert headings == expected  # the course notebook's sections, in its order
    text = "\n".join(prose)
    assert all(slip in text for slip in slips), name


# --- Executed alone, in quick mode -------------------------------------------------------------

PROBE = """\
import os, sys
print("PROBE cwd:", os.getcwd())
print("PROBE PYTHONPATH:", os.environ.get("PYTHONPATH"))
print("PROBE project modules:", sorted({name.split(".")[0] for name in sys.modules} & set(%r)))""" % sorted(PROJECT_MODULES)


def execute_alone(name: str, folder: Path, keras_home: Path, monkeypatch, backend: str):
    """Run one notebook with nbclient from a folder that holds only it; return (text, pictures)."""
    import nbformat
    from nbclient import NotebookClient
    folder.mkdir()
    assert not folder.resolve().is_relative_to(ROOT)
    shutil.copyfile(GUIDE / "notebooks" / name, folder / name)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    for key, value in {**QUICK, "KERAS_HOME": str(keras_home), "KERAS_BACKEND": backend}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))  # see tests/test_guide.py
    for key in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS"):  # the Keras notebooks set them, as a reader's run would
        monkeypatch.delenv(key, raising=False)
    nb = nbformat.read(folder / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    text = "".join(o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "") + "\n"
                   for o in outputs)
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # rich's colours in Keras's summary
    pictures = sum("image/png" in o.get("data", {}) for o in outputs)
    assert f"PROBE cwd: {folder}" in text and "PROBE PYTHONPATH: None" in text
    assert "PROBE project modules: []" in text, "the notebook imported the project's code"
    assert sorted(os.listdir(folder)) == [name], "the notebook wrote into its folder"
    return text, pictures


def number(pattern: str, text: str) -> float:
    found = re.findall(pattern, text, re.M)
    assert len(found) == 1, f"{pattern!r} found {len(found)} times in:\n{text}"
    return float(found[0])


def check_test_results(text: str, lang: str):
    """Two epochs of 64-image batches on 2560 images: better than chance, far from done."""
    (results,) = re.findall(SAYS[lang]["test"], text, re.M)
    loss, accuracy = map(float, results)
    assert loss < np.log(10), "the test loss is worse than a uniform guess"
    assert 0.14 <= accuracy <= 0.6, accuracy
    if lang == "es":  # the count of right answers under its English label, for the line below
        text = re.sub(SAYS["es"]["right"], r"right: \1 of 25", text, flags=re.M)
    # the grid's 25 test images: about 25 x accuracy right (binomial, sd <= 2.5; 10 is 4 sd)
    assert abs(number(r"right: (\d+) of 25", text) - 25 * accuracy) <= 10


@pytest.mark.slow
@pytest.mark.parametrize("lang", [
    pytest.param("en", marks=[pytest.mark.backend, pytest.mark.extended_only]),  # on every backend
    pytest.param("es", marks=[pytest.mark.backend, pytest.mark.extended_only]),
])
def test_keras_notebook_runs_alone_in_quick_mode(lang, keras_backend, keras_home, tmp_path, monkeypatch):
    text, pictures = execute_alone(KERAS_NOTEBOOKS[lang], tmp_path / "alone", keras_home, monkeypatch, keras_backend)
    says = SAYS[lang]
    assert re.search(says["keras"].format(backend=keras_backend), text, re.M)
    assert "oneDNN" not in text and "absl" not in text, "TensorFlow's start-up lines reached the notebook"
    assert says["recipe"] in text
    assert says["keras data"] in text
    assert "Total params: 658" in text
    (counts,) = re.findall(says["per class"], text)
    counts = [int(c) for c in counts.split()]
    assert len(counts) == 10 and sum(counts) == 2560 // 10 and min(counts) > 0
    epochs = re.findall(r"^(\d+)/(\d+) - .* val_accuracy: ([\d.]+) - val_loss: ([\d.]+)$", text, re.M)
    assert [(int(a), int(b)) for a, b, _, _ in epochs] == [(36, 36)] * 2  # 2304 / 64 steps, 2 epochs
    assert float(epochs[1][3]) < float(epochs[0][3]), "the validation loss went down"
    check_test_results(text, lang)
    assert pictures == 3  # training images, history, predictions


@pytest.mark.slow
def test_torch_notebook_runs_alone_in_quick_mode(keras_home, tmp_path, monkeypatch, keras_backend):
    text, pictures = execute_alone(TORCH_NOTEBOOK, tmp_path / "alone", keras_home, monkeypatch, keras_backend)
    says = SAYS["es"]
    assert re.search(r"^PyTorch 2\.13\.0\S*$", text, re.M)
    assert says["recipe"] in text
    assert says["torch data"] in text
    assert "Total params: 682" in text
    epochs = re.findall(says["epoch"], text, re.M)
    assert [e[0] for e in epochs] == ["1", "2"] and float(epochs[1][3]) < float(epochs[0][3])
    check_test_results(text, "es")
    assert pictures == 3


# --- The plain code is the project's network (part 3), on every backend -----------------------

def layer_rows(model) -> list[tuple]:
    rows = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        config = layer.get_config()
        rows.append((type(layer).__name__, tuple(layer.output.shape), layer.count_params(), config.get("units"),
                     config.get("activation"), config.get("use_bias"), config.get("return_sequences")))
    return rows


@pytest.mark.backend
def test_keras_notebook_model_is_build_model():
    from keras_version.model import build_model
    notebook_model = run_cells(KERAS_NOTEBOOKS["en"], "import keras", "TRAIN_EPOCHS =", "keras.Sequential(")["rnn_model"]
    project_model = build_model()
    assert layer_rows(notebook_model) == layer_rows(project_model) == [
        ("SimpleRNN", (None, 28, 8), 296, 8, "tanh", True, True),
        ("SimpleRNN", (None, 28, 8), 136, 8, "tanh", True, True),
        ("SimpleRNN", (None, 8), 136, 8, "tanh", True, False),
        ("Dense", (None, 10), 90, 10, "linear", True, None)]
    assert notebook_model.input_shape == project_model.input_shape == (None, 28, 28)
    assert notebook_model.count_params() == project_model.count_params() == 658


@pytest.mark.backend
def test_rnnmodel_weights_give_the_same_logits_in_the_keras_notebook_model(fashion):
    import keras
    import torch

    import parity
    model = run_cells(TORCH_NOTEBOOK, "import torchinfo", "TRAIN_EPOCHS =", "class RNNModel")["model"]
    keras_namespace = run_cells(KERAS_NOTEBOOKS["en"], "import keras", "TRAIN_EPOCHS =", "keras.Sequential(")
    definitions(KERAS_NOTEBOOKS["en"], "def preprocess", keras_namespace)
    rnn_model, preprocess = keras_namespace["rnn_model"], keras_namespace["preprocess"]
    assert sum(p.numel() for p in model.parameters()) == 682

    x = preprocess(fashion[1][0][:512])  # (512, 28, 28) float32, the Keras notebook's test images
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(x).unsqueeze(1)).numpy()  # (512, 1, 28, 28), as its DataLoader gives them
    before = keras.ops.convert_to_numpy(rnn_model(x))
    assert np.abs(torch_logits - before).max() > 0.05, "the two models must start apart for this test to mean anything"
    parity.torch_to_keras(model, rnn_model)
    keras_logits = keras.ops.convert_to_numpy(rnn_model(x))
    assert torch_logits.shape == keras_logits.shape == (512, 10)
    assert np.abs(torch_logits - keras_logits).max() < 1e-5


# --- The data cells -----------------------------------------------------------------------------

def torch_data_namespace(folder: Path) -> dict:
    namespace = run_cells(TORCH_NOTEBOOK, "import torchinfo")
    definitions(TORCH_NOTEBOOK, "class FashionMNIST", namespace)
    namespace["DATASETS_DIR"] = str(folder)
    return namespace


def test_both_notebooks_compute_what_totensor_and_normalize_compute(fashion, keras_home):
    import torch

    from common.data import preprocess
    (_, _), (x_test, y_test) = fashion
    namespace = torch_data_namespace(keras_home / "datasets" / "fashion-mnist")
    test_set = namespace["FashionMNIST"](train=False)
    image, label = test_set[0]
    assert len(test_set) == 10000 and tuple(image.shape) == (1, 28, 28) and image.dtype == torch.float32
    assert type(label) is int and label == y_test[0]
    # ToTensor: bytes / 255 in float32; Normalize((0.5,), (0.5,)): (x - 0.5) / 0.5; common.data does it bit for bit
    assert torch.equal(test_set.images.squeeze(1), torch.from_numpy(preprocess(x_test)))
    assert np.array_equal(test_set.labels, y_test)

    keras_preprocess = definitions(KERAS_NOTEBOOKS["en"], "def preprocess", {})["preprocess"]
    every_byte = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    assert keras_preprocess(every_byte).dtype == np.float32
    assert np.array_equal(keras_preprocess(every_byte), preprocess(every_byte))
    assert float(keras_preprocess(every_byte).min()) == -1.0 and float(keras_preprocess(every_byte).max()) == 1.0


def test_torch_notebook_downloads_what_keras_downloads_into_the_same_folder(tmp_path, keras_home):
    import keras.src.datasets.fashion_mnist as keras_fashion
    (keras_url,) = re.findall(r'base = "(https://[^"]+)"', inspect.getsource(keras_fashion.load_data))
    source = keras_home / "datasets" / "fashion-mnist"
    target = tmp_path / "datasets" / "fashion-mnist"
    namespace = torch_data_namespace(target)
    assert namespace["URL"] == keras_url
    fetched = []

    def urlretrieve(url, path, broken=False):
        fetched.append((url, path))
        Path(path).write_bytes(b"half a file")
        if broken:
            raise OSError("connection reset")
        shutil.copyfile(source / url.rsplit("/", 1)[1], path)

    namespace["urllib"] = types.SimpleNamespace(request=types.SimpleNamespace(urlretrieve=urlretrieve))
    labels = namespace["read_idx"]("t10k-labels-idx1-ubyte.gz")
    assert fetched == [(keras_url + "t10k-labels-idx1-ubyte.gz", str(target / "t10k-labels-idx1-ubyte.gz.part"))]
    assert labels.shape == (10000,) and labels.dtype == np.uint8 and labels.flags.writeable
    assert sorted(os.listdir(target)) == ["t10k-labels-idx1-ubyte.gz"]
    namespace["read_idx"]("t10k-labels-idx1-ubyte.gz")
    assert len(fetched) == 1, "a file already there is not downloaded again"

    namespace["urllib"].request.urlretrieve = lambda url, path: urlretrieve(url, path, broken=True)
    with pytest.raises(OSError, match="connection reset"):
        namespace["read_idx"]("train-labels-idx1-ubyte.gz")
    assert not (target / "train-labels-idx1-ubyte.gz").exists(), "a broken download never gets the real name"


# --- The walkthrough pages are the notebooks' code ---------------------------------------------

def consecutive_cells(code: str, cells: list[str]) -> list[int] | None:
    """Indices of the consecutive cells that, joined by blank lines, are exactly ``code``.

    The cells are the page's own language's (``build.code_cells(name, lang)``), so a tab holds
    the very text of the notebook: its comments and printed labels included."""
    for start in range(len(cells)):
        if build.is_install_cell(cells[start]):
            continue  # the install cell: not shown in the walkthrough
        for end in range(start, len(cells)):
            if "\n\n".join(cells[start:end + 1]) == code:
                return list(range(start, end + 1))
    return None


def other(lang: str) -> str:
    return "es" if lang == "en" else "en"


WALKTHROUGH = ["setup", "data", "model", "summary", "training", "history", "predictions"]


@pytest.mark.parametrize("lang", ["en", "es"])
def test_walkthrough_holds_every_cell_of_both_notebooks_in_order(lang):
    from guide.runner import parse
    cells = {"Keras": build.code_cells(KERAS_NOTEBOOKS[lang]), "PyTorch": build.code_cells(TORCH_NOTEBOOK, lang)}
    seen = {kind: [] for kind in cells}
    for page in WALKTHROUGH:
        for block in parse(GUIDE / lang / "walkthrough" / f"{page}.md"):
            where = f"{lang}/walkthrough/{page}.md:{block.line}"
            assert not imported_modules(block.code) & PROJECT_MODULES, f"{where} imports the project"
            if block.tab is None:
                continue
            notebook_part = block.code.rstrip("\n").split("\n" + CHECK_MARKER[lang] + "\n")[0]
            assert CHECK_MARKER[other(lang)] not in block.code, f"{where}: the check marker of the other language"
            indices = consecutive_cells(notebook_part, cells[block.tab])
            assert indices, f"{where}: the {block.tab} tab is not a run of that notebook's cells"
            seen[block.tab] += indices
    for kind, texts in cells.items():
        wanted = [i for i, text in enumerate(texts) if not build.is_install_cell(text)]  # all but the install cell
        assert seen[kind] == wanted, f"{lang}: the {kind} notebook's cells {wanted}, in order, were {seen[kind]}"


# --- `make data` puts the local files where the notebooks look --------------------------------

def test_make_data_copies_the_local_files_into_an_empty_keras_cache(tmp_path):
    import subprocess

    from common.data import FILES, find_local_dir
    source = find_local_dir()
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras"), "FASHION_MNIST_DIR": str(source)}
    cache = tmp_path / "keras" / "datasets" / "fashion-mnist"
    names = sorted(name for pair in FILES.values() for name in pair)

    def make_data():
        proc = subprocess.run(["make", "--no-print-directory", "-s", "data"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert f"copied 4 file(s) into Keras's cache {cache}" in make_data()
    assert sorted(os.listdir(cache)) == names
    assert all((cache / name).read_bytes() == (source / name).read_bytes() for name in names)
    (cache / names[0]).unlink()
    assert "copied 1 file(s)" in make_data()
    assert "copied" not in make_data(), "a full cache is left as it is"
