"""``python -m parity convert SRC DST``: users' trained files, both ways, checked by the numbers.

* Architecture inference from state dicts with any module names, and a refusal,
  naming the tensor, for everything that is not a stack of one recurrent cell
  followed by one Linear (pure torch: no Keras, run once).
* Bad files on the command line: exit 2, one stderr line, no traceback (run once).
* Conversions, on every Keras backend, through ``parity.convert_command.convert_file`` (what the
  command calls; each command costs a process that imports TensorFlow, so the command
  itself runs in the guide's section, both ways, on every backend): the notebook's own
  ``RNNModel`` trained a few steps -> ``.keras``; every cell, uni- and bidirectional,
  both ways.  And once: ``.keras`` files trained by ``python -m keras_version train`` (rnn,
  bidirectional gru, bidirectional lstm) -> ``.pt``.
"""
from __future__ import annotations

import os
import re
import warnings
import zipfile

import keras
import numpy as np
import pytest
import torch
from torch import nn

from common.errors import CheckpointError, ConversionError
from parity.convert_command import self_check_inputs
from parity.state_dict import Architecture, infer_from_state_dict
from tests.cli_support import one_error_line, run, run_many
from tests.notebook_support import RNNModel, trained_notebook_model
from torch_version.model import StackedRNN

backend = pytest.mark.backend


class OneModule(nn.Module):
    """One multi-layer recurrent module and a Linear, reading h_n as StackedRNN reads the last step."""

    def __init__(self, rnn: nn.Module, classes: int = 10):
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(rnn.hidden_size * (2 if rnn.bidirectional else 1), classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        if self.rnn.bidirectional:
            h = self.rnn.hidden_size
            return self.head(torch.cat([out[:, -1, :h], out[:, 0, h:]], dim=-1))
        return self.head(out[:, -1, :])


def torch_logits(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).numpy()


def keras_logits(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(model.predict(x, batch_size=len(x), verbose=0)))


def printed_architecture(stdout: str) -> dict:
    """The StackedRNN arguments the command printed, read back from its output."""
    line = next(line for line in stdout.splitlines() if line.startswith("architecture: StackedRNN("))
    pairs = re.findall(r"(\w+)=('?[\w-]+'?)", line)
    return {k: (v.strip("'") if v.startswith("'") else v == "True" if v in ("True", "False") else int(v))
            for k, v in pairs}


# --- 1. Inference from a state dict (torch only) ---------------------------------------------------

def test_the_notebook_state_dict_is_read_as_stacked_rnn():
    torch.manual_seed(0)
    model = RNNModel()
    with pytest.raises(ConversionError, match=r"holds weights only, which cannot show what your forward computes: pass "
                                              r"--readout last-output .* and --nonlinearity tanh or --nonlinearity "
                                              r"relu, .* parity\.convert_module\(model, x\)$"):
        infer_from_state_dict(model.state_dict())  # weights cannot tell: no guess
    arch, renamed, lines, assumptions = infer_from_state_dict(model.state_dict(), nonlinearity="tanh",
                                                              readout="last-output")
    assert arch == Architecture(28, 8, 3, 10, "rnn", False, "tanh", True)
    assert lines == ["rnn1: nn.RNN(28, 8) -> rnns.0", "rnn2: nn.RNN(8, 8) -> rnns.1", "rnn3: nn.RNN(8, 8) -> rnns.2",
                     "fc: nn.Linear(8, 10) -> fc"]
    assert not any("nonlinearity=" in a for a in assumptions)
    stacked = StackedRNN(**arch.kwargs())
    stacked.load_state_dict(renamed)  # strict: every name and shape
    x = np.random.default_rng(0).uniform(-1, 1, (5, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(torch_logits(stacked, x), torch_logits(model, x))


@pytest.mark.parametrize("cell, layers, bidirectional, bias", [
    ("rnn", 3, False, True), ("gru", 2, True, True), ("lstm", 3, True, False), ("gru", 1, False, False)])
def test_one_multi_layer_module_is_read_layer_by_layer(cell, layers, bidirectional, bias):
    torch.manual_seed(1)
    rnn = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell](
        13, 6, num_layers=layers, bias=bias, batch_first=True, bidirectional=bidirectional)
    model = OneModule(rnn, classes=4)
    arch, renamed, lines, _ = infer_from_state_dict(model.state_dict(), nonlinearity="tanh", readout="h_n")
    assert arch == Architecture(13, 6, layers, 4, cell, bidirectional, "tanh", bias, "h_n")
    assert lines[0].endswith("-> " + ", ".join(f"rnns.{i}" for i in range(layers)))
    stacked = StackedRNN(**arch.kwargs())
    stacked.load_state_dict(renamed)
    x = np.random.default_rng(1).uniform(-1, 1, (4, 9, 13)).astype(np.float32)
    np.testing.assert_allclose(torch_logits(stacked, x), torch_logits(model, x), atol=1e-6, rtol=0)


def test_a_project_checkpoint_and_a_bias_free_linear():
    """This project's checkpoints hold weights (and the optimizer) but no architecture, so they need the
    flags like any state dict: nothing in the file says how the StackedRNN that wrote it was built."""
    torch.manual_seed(2)
    project = StackedRNN(cell="gru", num_layers=2)
    state = {"model": project.state_dict(), "optimizer": {"state": {}, "param_groups": []}}
    from parity.model_files import state_dict_of
    sd, recorded, description = state_dict_of("model.pt", state)
    assert recorded is None
    assert "optimizer: not converted" in description
    assert "10 tensors" in description  # 2 layers x 4, fc x 2
    with pytest.raises(ConversionError, match=r"pass --readout last-output"):
        infer_from_state_dict(sd)
    arch, renamed, _, _ = infer_from_state_dict(sd, readout="h_n")
    assert arch == Architecture(28, 8, 2, 10, "gru", False)
    assert all(torch.equal(renamed[k], v) for k, v in project.state_dict().items())

    head_without_bias = OneModule(nn.RNN(28, 8, batch_first=True))
    head_without_bias.head = nn.Linear(8, 10, bias=False)
    arch, renamed, lines, _ = infer_from_state_dict(head_without_bias.state_dict(), nonlinearity="tanh",
                                                    readout="last-output")
    assert "bias=False: a zero bias" in lines[-1] and not renamed["fc.bias"].any()


def test_relu_comes_from_the_flag_or_the_file_never_from_the_weights():
    torch.manual_seed(3)
    model = OneModule(nn.RNN(28, 8, nonlinearity="relu", batch_first=True))
    with pytest.raises(ConversionError, match=r"pass --nonlinearity tanh or --nonlinearity relu, as your nn\.RNN"):
        infer_from_state_dict(model.state_dict(), readout="last-output")
    arch, renamed, _, assumptions = infer_from_state_dict(model.state_dict(), nonlinearity="relu",
                                                          readout="last-output")
    assert arch.nonlinearity == "relu" and not any("nonlinearity" in a for a in assumptions)
    x = np.random.default_rng(3).uniform(-1, 1, (4, 28, 28)).astype(np.float32)
    stacked = StackedRNN(**arch.kwargs())
    stacked.load_state_dict(renamed)
    np.testing.assert_array_equal(torch_logits(stacked, x), torch_logits(model, x))
    # A .pt written by convert records it; a contradicting flag is refused.
    written = {"nonlinearity": "relu", "readout": "h_n", "assumed": []}  # what convert records now
    arch, _, _, assumptions = infer_from_state_dict(renamed, recorded=written)
    assert arch.nonlinearity == "relu" and not any("nonlinearity" in a for a in assumptions)
    with pytest.raises(ConversionError, match=r"--nonlinearity tanh contradicts .* nonlinearity='relu'"):
        infer_from_state_dict(renamed, nonlinearity="tanh", recorded=written)
    with pytest.raises(ConversionError, match=r"records hidden_size=9 but its weights say hidden_size=8"):
        infer_from_state_dict(renamed, recorded={**written, "hidden_size": 9})
    # What an older convert recorded from its own assumption settles nothing, and a flag replaces it.
    older = {"nonlinearity": "tanh", "assumed": ["nonlinearity", "readout"]}
    with pytest.raises(ConversionError, match=r"\(it records readout='h_n' and nonlinearity='tanh' only as an older "
                                              r"convert's assumption\): pass --readout last-output"):
        infer_from_state_dict(renamed, recorded={**older, "readout": "h_n"})
    assert infer_from_state_dict(renamed, nonlinearity="relu", readout="h_n",
                                 recorded=older)[0].nonlinearity == "relu"


def test_the_models_take_nn_rnn_nonlinearity_and_bias():
    from common.errors import ConfigError
    from keras_version.model import build_model
    model = StackedRNN(num_layers=2, nonlinearity="relu", bias=False)
    assert [(m.nonlinearity, m.bias) for m in model.rnns] == [("relu", False)] * 2
    assert sum(p.numel() for p in model.parameters()) == 8 * 28 + 8 * 8 + 2 * 8 * 8 + 8 * 10 + 10
    keras_model = build_model(num_layers=2, nonlinearity="relu", bias=False)
    assert keras_model.count_params() == sum(p.numel() for p in model.parameters())
    for cell in ("gru", "lstm"):
        with pytest.raises(ConfigError, match=f"nonlinearity='relu' applies to the rnn cell only; {cell} cells use tanh"):
            StackedRNN(cell=cell, nonlinearity="relu")
        with pytest.raises(ConfigError, match="applies to the rnn cell only"):
            build_model(cell=cell, nonlinearity="relu")
    with pytest.raises(ConfigError, match="unknown nonlinearity 'sigmoid'; choose one of: tanh, relu"):
        StackedRNN(nonlinearity="sigmoid")


class Two(nn.Module):
    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            self.add_module(f"m{i}", m)


def without(state: dict, key: str) -> dict:
    return {k: v for k, v in state.items() if k != key}


UNMAPPABLE = {  # name: (state dict, pattern the one-line message must match)
    "cnn": (lambda: Two(nn.Conv2d(1, 8, 3), nn.Linear(8, 10)).state_dict(),
            r"^tensor 'm0\.weight' \(8, 1, 3, 3\) belongs to neither a recurrent layer .* nor a Linear"),
    "batch norm": (lambda: Two(nn.RNN(28, 8, batch_first=True), nn.BatchNorm1d(8), nn.Linear(8, 10)).state_dict(),
                   r"^tensor 'm1\.running_mean' \(8,\) belongs to neither"),
    "gap in the layers": (lambda: {k.replace("_l1", "_l2"): v for k, v in
                                   Two(nn.GRU(28, 8, num_layers=2), nn.Linear(8, 10)).state_dict().items()},
                          r"^tensor 'm0\.weight_ih_l2' \(24, 8\): 'm0' has layer 2 but no layer 1 \(a gap"),
    "shapes do not chain": (lambda: Two(nn.RNN(28, 8), nn.RNN(16, 8), nn.Linear(8, 10)).state_dict(),
                            r"^tensor 'm1\.weight_ih_l0' \(8, 16\): 'm1' takes 16 features but the layer before it "
                            r"gives 8: the shapes do not chain"),
    "linear does not chain": (lambda: Two(nn.RNN(28, 8), nn.Linear(16, 10)).state_dict(),
                              r"^tensor 'm1\.weight' \(10, 16\): the Linear takes 16 features but .* gives 8"),
    "two cells": (lambda: Two(nn.RNN(28, 8), nn.GRU(8, 8), nn.Linear(8, 10)).state_dict(),
                  r"^tensor 'm1\.weight_ih_l0' \(24, 8\): 'm1' has cell gru where 'm0' has rnn"),
    "two hidden sizes": (lambda: Two(nn.LSTM(28, 8), nn.LSTM(8, 4), nn.Linear(4, 10)).state_dict(),
                         r"^tensor 'm1\.weight_ih_l0' \(16, 8\): 'm1' has hidden size 4 where 'm0' has 8"),
    "two linears": (lambda: Two(nn.RNN(28, 8), nn.Linear(8, 8), nn.Linear(8, 10)).state_dict(),
                    r"^tensor 'm2\.weight' \(10, 8\): a second Linear after 'm1'"),
    "linear first": (lambda: Two(nn.Linear(28, 28), nn.RNN(28, 8), nn.Linear(8, 10)).state_dict(),
                     r"^tensor 'm0\.weight' \(28, 28\): a 2-d weight \(a Linear\? an Embedding\?\) before any "
                     r"recurrent layer"),
    "no linear": (lambda: Two(nn.RNN(28, 8)).state_dict(), r"has recurrent layers but no Linear after them"),
    "no recurrent layer": (lambda: Two(nn.Linear(28, 10)).state_dict(),
                           r"^tensor 'm0\.weight' \(10, 28\): a 2-d weight \(a Linear\? an Embedding\?\) before"),
    "proj_size": (lambda: Two(nn.LSTM(28, 8, proj_size=4), nn.Linear(4, 10)).state_dict(),
                  r"^tensor 'm0\.weight_hr_l0' \(4, 8\): an LSTM with proj_size=4 .* has no Keras equivalent"),
    "a missing tensor": (lambda: without(Two(nn.RNN(28, 8, num_layers=2), nn.Linear(8, 10)).state_dict(),
                                         "m0.bias_hh_l1"),
                         r"^tensor 'm0\.weight_ih_l1' \(8, 8\): 'm0' lacks 'm0\.bias_hh_l1'"),
    "a missing direction": (lambda: {k: v for k, v in Two(nn.GRU(28, 8, num_layers=2, bidirectional=True),
                                                            nn.Linear(16, 10)).state_dict().items()
                                     if not k.endswith("_l1_reverse")},
                            r"^tensor 'm0\.weight_ih_l1' \(24, 16\): 'm0' lacks 'm0\.weight_ih_l1_reverse'"),
    "not a gate multiple": (lambda: {"r.weight_ih_l0": torch.zeros(10, 28), "r.weight_hh_l0": torch.zeros(10, 5),
                                     "fc.weight": torch.zeros(10, 5)},
                            r"^tensor 'r\.weight_hh_l0' \(10, 5\): 10 rows is not 1, 3 or 4 times the hidden size 5"),
}


@pytest.mark.parametrize("name", list(UNMAPPABLE))
def test_what_cannot_be_mapped_is_named_in_one_line(name):
    make, pattern = UNMAPPABLE[name]
    with pytest.raises(ConversionError) as info:
        infer_from_state_dict(make())
    assert "\n" not in str(info.value)
    assert re.search(pattern, str(info.value)), str(info.value)


def test_what_is_not_a_float32_state_dict_is_refused():
    from parity.model_files import state_dict_of
    with pytest.raises(CheckpointError, match=r"holds a list, not a state dict; save one with torch\.save"):
        state_dict_of("x.pt", [1, 2])
    with pytest.raises(CheckpointError, match=r"entry 'epoch' is not a tensor \(int\)"):
        state_dict_of("x.pt", {"epoch": 3, "weights": torch.zeros(2)})
    with pytest.raises(ConversionError, match=r"^tensor 'weight_ih_l0' in x\.pt is float64; convert works in float32 "
                                              r"\(both sides compute in float32\): cast with model\.float\(\) before "
                                              r"saving$"):
        state_dict_of("x.pt", nn.RNN(28, 8).double().state_dict() | {})


def test_self_check_inputs_are_the_test_images_or_seeded_noise(fashion, monkeypatch):
    from common.data import preprocess
    x, what = self_check_inputs(28)
    np.testing.assert_array_equal(x, preprocess(fashion[1][0][:1000]))
    assert x.shape == (1000, 28, 28) and what.startswith("the first 1000 Fashion-MNIST test images")
    x, what = self_check_inputs(13)
    assert x.shape == (1000, 28, 13) and "13 features per step" in what
    np.testing.assert_array_equal(x, self_check_inputs(13)[0])  # seeded
    assert -1 <= x.min() < -0.99 and 0.99 < x.max() <= 1
    monkeypatch.setattr("common.data.find_local_dir", lambda: None)
    x, what = self_check_inputs(28)
    assert x.shape == (1000, 28, 28) and "Fashion-MNIST is not on this machine" in what


def keras_chain(*layers, batch_size=None):
    return keras.Sequential([keras.Input((28, 28), batch_size=batch_size), *layers])


def keras_unmappable():
    L = keras.layers
    return {  # name: (keras model, pattern of the one-line message)
        "another layer": (keras_chain(L.SimpleRNN(8), L.LayerNormalization(name="norm"), L.Dense(10)),
                          r"^keras layer 'norm' \(LayerNormalization\) has no counterpart in StackedRNN"),
        "an activation layer": (keras_chain(L.SimpleRNN(8), L.Dense(10), L.Activation("softmax", name="soft")),
                                r"^keras layer 'soft' \(Activation\) has no counterpart"),
        "two dense": (keras_chain(L.SimpleRNN(8), L.Dense(8, name="d1"), L.Dense(10, name="d2")),
                      r"^keras layer 'd2' is a second Dense after 'd1'"),
        "dense first": (keras_chain(L.Dense(28, name="d0"), L.SimpleRNN(8), L.Dense(10)),
                        r"^keras layer 'd0' is a Dense before any recurrent layer"),
        "layers differ": (keras_chain(L.GRU(8, return_sequences=True, name="g1"), L.GRU(4, name="g2"), L.Dense(10)),
                          r"^keras layer 'g2' \(GRU\(4, activation='tanh'\)\) differs from 'g1' \(GRU\(8, "
                          r"activation='tanh', return_sequences=True\)\); convert maps stacks of equal layers"),
        "sigmoid rnn": (keras_chain(L.SimpleRNN(8, activation="sigmoid", name="s"), L.Dense(10)),
                        r"^keras layer 's' uses activation='sigmoid'; torch's nn.RNN offers tanh and relu only"),
        "dense without bias": (keras_chain(L.SimpleRNN(8), L.Dense(10, use_bias=False, name="fc")),
                               r"^keras layer 'fc' has use_bias=False; StackedRNN's Linear has a bias"),
        "fixed batch size": (keras_chain(L.SimpleRNN(8), L.Dense(10), batch_size=32),
                             r"declares a fixed batch size of 32 \(batch_shape\)"),
        "no dense": (keras_chain(L.SimpleRNN(8)), r"has recurrent layers but no Dense after them"),
    }


def test_what_a_keras_model_cannot_map_is_named_in_one_line():
    from parity.keras_stack import infer_from_keras
    for name, (model, pattern) in keras_unmappable().items():
        with pytest.raises(ConversionError) as info:
            infer_from_keras(model)
        assert "\n" not in str(info.value) and re.search(pattern, str(info.value)), (name, str(info.value))
    with pytest.raises(ConversionError, match=r"--nonlinearity relu contradicts the Keras model, whose layers use "
                                              r"activation='tanh'"):
        infer_from_keras(keras_chain(keras.layers.SimpleRNN(8), keras.layers.Dense(10)), nonlinearity="relu")


def test_an_unwritable_dst_is_one_line(tmp_path):
    from parity.convert_command import convert_file
    src = tmp_path / "model.pt"
    torch.save(RNNModel().state_dict(), src)
    (tmp_path / "taken.pt").mkdir()
    with pytest.raises(CheckpointError, match=r"^cannot write .*taken\.pt \(Is a directory\); choose another DST$"):
        convert_file(src, tmp_path / "taken.pt", out=lambda line: None)


# --- 2. Bad files on the command line --------------------------------------------------------------

@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, small_data):
    """One file per kind of bad SRC, and a good one for the bad DST."""
    folder = tmp_path_factory.mktemp("bad")
    good = folder / "notebook.pt"
    torch.save(trained_notebook_model(small_data, steps=1).state_dict(), good)
    (folder / "notes.pt").write_text("my notes on stacked RNNs\n")
    torch.save(Two(nn.Conv2d(1, 8, 3), nn.Linear(8, 10)).state_dict(), folder / "cnn.pt")
    data = good.read_bytes()
    (folder / "truncated.pt").write_bytes(data[: len(data) // 2])
    keras.Sequential([keras.Input((28, 28)), keras.layers.Lambda(lambda v: v * 2), keras.layers.SimpleRNN(8),
                      keras.layers.Dense(10)]).save(folder / "lambda.keras")
    os.mkfifo(folder / "fifo.pt")  # reading it would block forever
    with zipfile.ZipFile(folder / "bomb.pt", "w", zipfile.ZIP_DEFLATED) as bomb:  # 64 MiB of zeros in ~64 kB
        bomb.writestr("bomb/data.pkl", bytes(64 << 20))
    state = torch.load(good, weights_only=True)
    odd = {"sparse.pt": ("fc.weight", state["fc.weight"].to_sparse()),
           "meta.pt": ("fc.bias", torch.empty(10, device="meta")),
           "inf-bias.pt": ("rnn1.bias_hh_l0", torch.tensor([float("inf")] + [0.0] * 7)),
           "nan-weight.pt": ("rnn2.weight_hh_l0", torch.full((8, 8), float("nan")).fill_diagonal_(0.5))}
    with warnings.catch_warnings():  # torch deprecates making quantized tensors, not reading them
        warnings.simplefilter("ignore")
        odd["quantized.pt"] = ("fc.weight", torch.quantize_per_tensor(state["fc.weight"], 0.01, 0, torch.qint8))
    for name, (key, value) in odd.items():
        torch.save({**state, key: value}, folder / name)
    # 3 kB on disk, 3.6 GB described: stride 0 stores one float for the whole (30000, 30000) matrix
    torch.save({"rnn1.weight_ih_l0": torch.zeros(1).expand(30000, 30000), "fc.bias": torch.zeros(10)},
               folder / "stride-bomb.pt")
    keras.Sequential([keras.Input((28, 28)), keras.layers.SimpleRNN(8), keras.layers.Dense(10)]).save(
        folder / "traversal.keras")
    with zipfile.ZipFile(folder / "traversal.keras", "a") as archive:
        archive.writestr("../../outside.txt", "written beside the archive's folder when extracted")
    return folder


BAD_FILES = {  # name: (SRC, DST, pattern of the one stderr line)
    "not a checkpoint": ("notes.pt", "out.keras",
                         r"notes\.pt is not a readable PyTorch file \(\w+\); give a state dict saved with "
                         r"torch\.save\(model\.state_dict\(\), path\), this project's model\.pt, a \.pt2 saved with "
                         r"torch\.export\.save, or a \.keras file$"),
    "a CNN's state dict": ("cnn.pt", "out.keras",
                           r"error: tensor 'm0\.weight' \(8, 1, 3, 3\) belongs to neither a recurrent layer \(nn\.RNN, "
                           r"nn\.GRU, nn\.LSTM\) nor a Linear; convert reads stacked recurrent layers followed by one "
                           r"Linear classifier$"),
    "a Lambda layer": ("lambda.keras", "out.pt",
                       r"lambda\.keras holds Python code \(e\.g\. a Lambda layer\); it is refused because loading "
                       r"never runs code from a file \(Keras safe_mode\)$"),
    "a truncated file": ("truncated.pt", "out.keras",
                         r"truncated\.pt is a zip archive cut short \(it has no central directory\): the file is "
                         r"truncated; copy or save it again$"),
    "a FIFO": ("fifo.pt", "out.keras",
               r"fifo\.pt is not a regular file; give a state dict saved with torch\.save"),
    "a zip bomb": ("bomb.pt", "out.keras",
                   r"bomb\.pt: entry 'bomb/data\.pkl' would inflate [\d,]+ stored bytes to 67,108,864 \(more than "
                   r"100 times\); the file is refused unopened$"),
    "a sparse tensor": ("sparse.pt", "out.keras",
                        r"error: tensor 'fc\.weight' in \S+sparse\.pt is sparse; convert maps the dense float32 "
                        r"weights of a trained model: .*\.to_dense\(\) for a sparse tensor\)$"),
    "a quantized tensor": ("quantized.pt", "out.keras", r"error: tensor 'fc\.weight' in \S+quantized\.pt is quantized; "),
    "a meta tensor": ("meta.pt", "out.keras",
                      r"error: tensor 'fc\.bias' in \S+meta\.pt is a meta tensor \(a shape without values\); "),
    "an inf bias": ("inf-bias.pt", "out.keras",
                    r"error: tensor 'rnn1\.bias_hh_l0' in \S+inf-bias\.pt holds 1 non-finite value \(\+inf\); a "
                    r"model with such weights computes no usable logits, so it is refused: convert the last "
                    r"checkpoint whose weights were finite$"),
    "a nan weight": ("nan-weight.pt", "out.pt",
                     r"error: tensor 'rnn2\.weight_hh_l0' in \S+nan-weight\.pt holds 56 non-finite values \(nan\)"),
    "a zip entry outside the archive": ("traversal.keras", "out.pt",
                                        r"error: \S+traversal\.keras: entry '\.\./\.\./outside\.txt' names a path "
                                        r"outside the archive, which neither Keras nor torch\.save writes; the file "
                                        r"is refused unopened$"),
    "an unknown DST suffix": ("notebook.pt", "out.h5",
                              r"error: DST \S+out\.h5 has suffix '\.h5'; name it \*\.keras \(a Keras model\) or "
                              r"\*\.pt \(a PyTorch state dict\)$"),
}


def test_a_stride_0_bomb_is_refused_in_little_memory(bad_files):
    """3 kB describing a (30000, 30000) float32 matrix: refused by what it describes, before any copy (the
    process, torch imported, stays under 300 MB; converting it took 7.8 GB)."""
    src = bad_files / "stride-bomb.pt"
    assert src.stat().st_size < 3 << 10
    result, peak = measured_convert(src, bad_files / "out.keras")
    one_error_line(result, "parity", r"error: tensor 'rnn1\.weight_ih_l0' in \S+stride-bomb\.pt describes \(30000, "
                                     r"30000\) values, which brings the file's tensors to 3,600,\d{3},\d{3} bytes, "
                                     r"more than the 1,073,741,824 convert accepts; a stacked RNN of this project's "
                                     r"kind is far smaller: is this the right file\?$")
    assert "--hidden-size" not in result.stderr  # a flag convert does not have
    print(f"\npeak RSS: stride-0 bomb {peak / 2**20:.0f} MiB")
    assert peak < 300e6


def measured_convert(src, dst):
    import sys
    from tests.cli_support import run_measured
    return run_measured([sys.executable, "-m", "parity", "convert", src, dst, "--backend", "torch"])


def test_bad_files_get_one_line_each(bad_files, keras_backend):
    results = run_many({name: ("parity", ["convert", bad_files / src, bad_files / dst, "--backend", keras_backend],
                               None, None) for name, (src, dst, _) in BAD_FILES.items()})
    for name, (_, dst, pattern) in BAD_FILES.items():
        line = one_error_line(results[name], "parity", pattern)
        assert line.startswith("python -m parity: error: "), line
        assert not (bad_files / dst).exists(), name  # nothing written
        assert not list(bad_files.glob(".*tmp*")), name  # no half-written file either


@pytest.mark.parametrize("offset, passes", [(2e-6, True), (1e-3, False)])
def test_the_self_check_holds_the_converted_model_to_the_allowance(tmp_path, monkeypatch, offset, passes):
    """parity.check's allowance in place (1e-5 + 1e-5 x the logits' largest magnitude, about 1.5e-5 here): a
    converted model whose logits are off by 1e-3 is refused with DST left as it was, one off by 2e-6 is
    written; both print the allowance they were held to."""
    import parity.convert_command as command
    import torch_version.train
    from parity.check import ATOL, RTOL
    assert (ATOL, RTOL) == (1e-5, 1e-5)
    torch.manual_seed(4)
    src, dst = tmp_path / "model.pt", tmp_path / "converted.pt"
    torch.save(RNNModel().state_dict(), src)
    dst.write_bytes(b"an older file, kept as it is")
    load = torch_version.train.load_model

    def off_by(path, model):  # what was written, read back with every logit moved by `offset`
        loaded = load(path, model)
        with torch.no_grad():
            loaded.fc.bias += offset
        return loaded
    monkeypatch.setattr(torch_version.train, "load_model", off_by)
    lines = []
    flags = dict(nonlinearity="tanh", readout="last-output", out=lines.append, overwrite=True)
    if passes:
        command.convert_file(src, dst, **flags)
        assert torch.load(dst, weights_only=True)["architecture"]["nonlinearity"] == "tanh"
    else:
        with pytest.raises(ConversionError, match=r"^self-check failed: the logits of .*model\.pt and of the "
                                                  r"converted model differ by up to 1\.00e-03, beyond the float32 "
                                                  r"allowance 1e-05 \+ 1e-05 × \S+ \(the logits' largest magnitude\) "
                                                  r"= 1\.\d\de-05; .*converted\.pt was not written$"):
            command.convert_file(src, dst, **flags)
        assert dst.read_bytes() == b"an older file, kept as it is"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["converted.pt", "model.pt"]
    assert abs(printed_difference("\n".join(lines)) - offset) < 1e-6


# --- 3. Conversions, on every backend ---------------------------------------------------------------

@pytest.fixture(scope="module")
def test_images(fashion):
    from common.data import preprocess
    return preprocess(fashion[1][0][:1000]), fashion[1][1][:1000].astype(np.int64)


def checked_run(result) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stdout


def printed_difference(stdout: str) -> float:
    return float(re.search(r"largest \|Δ logits\| = (\S+) \(allowed: the float32 allowance ", stdout).group(1))


@backend
def test_the_notebook_model_converts_to_keras(tmp_path, small_data, test_images, keras_backend):
    """In-process, through what the command calls; the guide's section runs the command itself on every backend."""
    from parity.convert_command import convert_file
    from parity.testing import assert_equivalent
    model = trained_notebook_model(small_data)
    src, dst = tmp_path / "rnn_notebook.pt", tmp_path / "rnn_notebook.keras"
    torch.save(model.state_dict(), src)
    stdout = "\n".join(convert_file(src, dst, "tanh", readout="last-output", out=lambda line: None).lines)
    assert printed_architecture(stdout) == dict(input_size=28, hidden_size=8, num_layers=3, num_classes=10,
                                                cell="rnn", bidirectional=False, nonlinearity="tanh", bias=True)
    for line in ("  rnn1: nn.RNN(28, 8) -> rnns.0", "  rnn3: nn.RNN(8, 8) -> rnns.2", "  fc: nn.Linear(8, 10) -> fc"):
        assert line in stdout.splitlines()
    assert f"self-check (Keras on {keras_backend}) on the first 1000 Fashion-MNIST test images" in stdout
    assert printed_difference(stdout) <= 1e-5

    x, _ = test_images
    loaded = keras.models.load_model(dst, safe_mode=True)
    report = assert_equivalent(model, loaded, x)  # every layer, and the logits, on the 1000 test images
    assert report.logits <= 1e-5 and np.abs(torch_logits(model, x)).max() > 1  # trained logits, not near-zero ones
    assert [d.torch_name for d in report.layers] == ["rnn1", "rnn2", "rnn3", "fc"]
    assert [d.keras_name for d in report.layers] == ["rnn_1", "rnn_2", "rnn_3", "fc"]

    with torch.no_grad():
        model.rnn2.weight_hh_l0[3, 5] += 0.05  # one weight of the second layer
    with pytest.raises(AssertionError) as info:
        assert_equivalent(model, loaded, x[:64])
    first = str(info.value).splitlines()[0]
    assert re.fullmatch(r"layer 1 \(torch 'rnn2', keras 'rnn_2'\): the output sequence differs by up to "
                        r"(\S+) \(atol 1e-05\)", first), first
    assert float(re.search(r"up to (\S+) ", first).group(1)) > 1e-3


TRAINED_IN_KERAS = [("rnn", False), ("gru", True), ("lstm", True)]


@pytest.fixture(scope="module")
def keras_runs(tmp_path_factory):
    """Three tiny runs of ``python -m keras_version train``, side by side: every cell, both directions.
    Run once (a .keras file is the same on every backend; every backend converts every cell both ways
    below), on the torch backend, the quickest to start (no compilation)."""
    folder = tmp_path_factory.mktemp("keras-runs")
    jobs = {(cell, bidirectional): ("keras_version", ["--subset", 2048, "--batch-size", 1024, "--epochs", 1,
                                                      "--cell", cell, "--out", folder / f"{cell}-{bidirectional}"]
                                    + (["--bidirectional"] if bidirectional else []), "torch", None)
            for cell, bidirectional in TRAINED_IN_KERAS}
    for result in run_many(jobs).values():
        checked_run(result)
    return {key: folder / f"{key[0]}-{key[1]}" / "model.keras" for key in jobs}


@pytest.mark.parametrize("cell, bidirectional", TRAINED_IN_KERAS)
def test_a_keras_training_run_converts_back_to_pytorch(tmp_path, test_images, keras_runs, cell, bidirectional):
    from parity.convert_command import convert_file
    from parity.testing import assert_equivalent
    from torch_version.train import load_model
    src, dst = keras_runs[(cell, bidirectional)], tmp_path / "from_keras.pt"
    stdout = "\n".join(convert_file(src, dst, out=lambda line: None).lines)
    args = {"readout": "h_n", **printed_architecture(stdout)}  # printed for bidirectional stacks only
    assert args == dict(input_size=28, hidden_size=8, num_layers=3, num_classes=10, cell=cell,
                        bidirectional=bidirectional, nonlinearity="tanh", bias=True, readout="h_n")
    assert "optimizer state: not converted" in stdout and printed_difference(stdout) <= 1e-5

    model = StackedRNN(**args)
    saved = torch.load(dst, weights_only=True)
    assert set(saved) == {"model", "architecture", "assumed"} and saved["architecture"] == {"readout": "h_n", **args}
    assert saved["assumed"] == []  # a .keras file shows its readout: nothing assumed
    model.load_state_dict(saved["model"])
    again = load_model(dst, StackedRNN(**args))  # the project's loader reads it too
    x, y = test_images
    keras_model = keras.models.load_model(src, safe_mode=True)
    report = assert_equivalent(model, keras_model, x)  # every layer and the logits, on the 1000 test images
    assert report.logits <= 1e-5 and np.abs(torch_logits(model, x)).max() > 0.1  # not all near zero
    directions = 2 if bidirectional else 1
    report = assert_equivalent(model, keras_model, x[:64], y=y[:64], gradients=True)
    assert len(report.gradients) == 3 * directions * 3 + 2
    np.testing.assert_array_equal(torch_logits(again, x), torch_logits(model, x))


ROUND_TRIPS = [  # cell, bidirectional, extra build_model arguments; one layer each (stacks: the tests above)
    ("rnn", False, {}), ("rnn", True, {"nonlinearity": "relu", "bias": False}),
    ("gru", False, {}), ("gru", True, {}),
    ("lstm", False, {"bias": False}), ("lstm", True, {}),
]


@backend
@pytest.mark.parametrize("cell, bidirectional, extra", ROUND_TRIPS)
def test_keras_to_pt_and_back_for_every_cell(tmp_path, test_images, cell, bidirectional, extra):
    """.keras -> .pt -> .keras: both self-checks pass (each compares the file it wrote with its source on
    the 1000 test images), the .pt holds what StackedRNN loads, and the weights come back bit for bit."""
    from keras_version.model import build_model
    from parity.convert_command import convert_file
    keras.utils.set_random_seed(5)
    original = build_model(hidden_size=5, num_layers=1, cell=cell, bidirectional=bidirectional, **extra)
    rng = np.random.default_rng(5)
    original.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in original.get_weights()])
    src, pt, back = tmp_path / "original.keras", tmp_path / "model.pt", tmp_path / "back.keras"
    original.save(src)

    to_torch = convert_file(src, pt, out=lambda line: None)
    arch = to_torch.architecture
    assert arch == Architecture(28, 5, 1, 10, cell, bidirectional, extra.get("nonlinearity", "tanh"),
                                extra.get("bias", True))
    to_keras = convert_file(pt, back, out=lambda line: None)
    assert to_keras.architecture == arch
    assert to_torch.max_abs_diff <= 1e-5 and to_keras.max_abs_diff <= 1e-5
    assert to_torch.check_input.startswith("the first 1000 Fashion-MNIST test images")

    returned = keras.models.load_model(back, safe_mode=True)
    for a, b in zip(original.get_weights(), returned.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    torch_model = StackedRNN(**arch.kwargs())
    torch_model.load_state_dict(torch.load(pt, weights_only=True)["model"])
    assert torch_model.rnns[0].bias == extra.get("bias", True)


# --- 4. What a file cannot say: refused on the command line, found by convert_module -------------------

class ReadersBidirectional(nn.Module):
    """The most common bidirectional classifier: the Linear reads out[:, -1], not h_n."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 16, 2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])


def relu_model() -> OneModule:
    """nn.RNN(nonlinearity='relu') in one two-layer module without biases: weights that look like tanh's."""
    torch.manual_seed(6)
    return OneModule(nn.RNN(28, 8, num_layers=2, nonlinearity="relu", bias=False, batch_first=True))


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user")
    torch.manual_seed(7)
    torch.save(ReadersBidirectional().state_dict(), folder / "bidirectional.pt")
    torch.save(relu_model().state_dict(), folder / "relu.pt")
    return folder


ROUTES = (r"a forward that pools over time \(mean, max\) or does anything else is another model: convert the forward "
          r"itself: save it with torch\.export\.save\(torch\.export\.export\(model, \(x,\)\), 'model\.pt2'\) and "
          r"convert the \.pt2, or call parity\.convert_module\(model, x\)$")
REFUSED = {  # name: (SRC, DST, extra flags, pattern of the one stderr line); the torch backend: nothing reaches Keras
    "bidirectional without --readout": (
        "bidirectional.pt", "out.keras", [],
        r"bidirectional\.pt holds weights only, which cannot show what your forward computes: pass --readout h_n \(each "
        r"direction's final state\) or --readout last-output \(out\[:, -1\]\), as your forward hands the Linear; "
        + ROUTES),
    "relu without --nonlinearity": (
        "relu.pt", "out.keras", ["--readout", "last-output"],
        r"relu\.pt holds weights only, which cannot show what your forward computes: pass --nonlinearity tanh or "
        r"--nonlinearity relu, as your nn\.RNN was built \(the weights are the same for both\); " + ROUTES),
    "DST is SRC": ("relu.pt", "relu.pt", ["--nonlinearity", "relu", "--overwrite"],
                   r"error: DST \S+relu\.pt is SRC \S+relu\.pt itself; converting a file onto itself would "
                   r"replace your model: choose another DST$"),
    "DST is SRC by another path": ("relu.pt", "../{folder}/./relu.pt", ["--nonlinearity", "relu"],
                                   r"error: DST \S+relu\.pt is SRC \S+relu\.pt itself"),
    "DST is a hard link to SRC": ("relu.pt", "link.pt", ["--nonlinearity", "relu", "--overwrite"],
                                  r"error: DST \S+link\.pt is SRC \S+relu\.pt itself"),
    "DST exists": ("relu.pt", "bidirectional.pt", ["--nonlinearity", "relu"],
                   r"error: DST \S+bidirectional\.pt already exists; pass --overwrite to replace it, or choose "
                   r"another DST$"),
    "DST in a missing folder": ("relu.pt", "new/folder/out.keras", ["--nonlinearity", "relu"],
                                r"error: the folder of DST, \S+/new/folder, does not exist; create it with "
                                r"`mkdir -p \S+/new/folder`, or choose another DST$"),
}


def test_what_a_file_cannot_say_is_refused_and_no_file_is_lost(user_files):
    (user_files / "link.pt").unlink(missing_ok=True)
    os.link(user_files / "relu.pt", user_files / "link.pt")
    before = {p.name: p.read_bytes() for p in user_files.iterdir()}
    results = run_many({name: ("parity", ["convert", user_files / src,
                                          user_files / dst.format(folder=user_files.name), *flags,
                                          "--backend", "torch"], None, None)
                        for name, (src, dst, flags, _) in REFUSED.items()})
    for name, (_, _, _, pattern) in REFUSED.items():
        one_error_line(results[name], "parity", pattern)
        assert results[name].stdout == "", name  # refused before anything is read or printed
    assert {p.name: p.read_bytes() for p in user_files.iterdir()} == before  # SRC, DST: byte for byte
    assert not (user_files / "new").exists()


@backend
@pytest.mark.extended  # a 28-step bidirectional LSTM compiled under JAX: torch in make test
def test_the_readers_bidirectional_model_with_readout_matches_the_module(tmp_path, user_files, test_images):
    """--readout last-output: the Keras logits equal the user's own module's, out[:, -1] and all; h_n would
    not (the reason the flag is required).  convert_module reads the forward itself, and
    convert_keras_model brings it back."""
    import parity
    from parity.check import within
    x = test_images[0][:64]  # one batch size throughout: one compilation on jax
    user = ReadersBidirectional()
    user.load_state_dict(torch.load(user_files / "bidirectional.pt", weights_only=True))
    expected = torch_logits(user, x)
    dst = tmp_path / "bidirectional.keras"
    result = run("parity", ["convert", user_files / "bidirectional.pt", dst, "--readout", "last-output",
                            "--backend", keras.config.backend()])
    stdout = checked_run(result)
    assert printed_architecture(stdout)["readout"] == "last-output" and result.stderr == ""
    loaded = keras.models.load_model(dst, safe_mode=True)
    assert within(float(np.abs(keras_logits(loaded, x) - expected).max()), expected)

    converted = parity.convert_module(user, x)
    assert within(float(np.abs(keras_logits(converted, x) - expected).max()), expected)
    back = parity.convert_keras_model(converted, x)
    assert within(float(np.abs(torch_logits(back, x) - expected).max()), expected)
    h_n = StackedRNN(28, 16, 2, 10, "lstm", True, readout="h_n")
    h_n.load_state_dict(infer_from_state_dict(user.state_dict(), readout="h_n")[1])
    assert np.abs(torch_logits(h_n, x) - expected).max() > 1e-2  # what the old guess gave


@backend
def test_a_relu_state_dict_converts_only_as_relu(tmp_path, user_files, test_images):
    """Without --nonlinearity the command refused (above); with it, the logits are the user's module's.
    convert_module reads the module's own nonlinearity from its forward."""
    import parity
    from parity.check import within
    user, x = relu_model(), test_images[0][:64]
    expected = torch_logits(user, x)
    result = convert_file(user_files / "relu.pt", tmp_path / "relu.keras", "relu", readout="last-output",
                          out=lambda line: None)
    assert result.architecture == Architecture(28, 8, 2, 10, "rnn", False, "relu", False)
    loaded = keras.models.load_model(tmp_path / "relu.keras", safe_mode=True)
    assert [layer.activation.__name__ for layer in loaded.layers[1:3]] == ["relu", "relu"]
    assert within(float(np.abs(keras_logits(loaded, x) - expected).max()), expected)

    converted = parity.convert_module(user, x)
    assert within(float(np.abs(keras_logits(converted, x) - expected).max()), expected)
    with pytest.raises(ConversionError):  # told tanh, against the module's own relu: one line, not a guess
        parity.convert_module(user, x, nonlinearity="tanh")


def convert_file(*args, **kwargs):
    from parity.convert_command import convert_file as convert
    return convert(*args, **kwargs)
