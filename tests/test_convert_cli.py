"""``python -m parity convert``, round two: no forward is guessed, no file is lost, nothing runs from a file.

* A state dict converts only when the flags settle the forward; the two models the attack
  round wrote with exit 0 (a GRU read through ``out.mean(1)``, an LSTM read through
  max-pooling) are refused, and their ``.pt2`` files convert exactly.
* A ``.pt2`` is read without running code from it: a pickle with a ``__reduce__`` that would
  write a marker file is refused, in every place ``torch.export.load`` would unpickle it.
* DST: two conversions racing for one DST, a file appearing at DST during a conversion, a
  dangling symbolic link, a folder that is a file, a symbolic-link loop, a full disk.
* SRC's tensors: the size guard sums over tensors; every sparse layout is refused.
* The public API: ``convert_keras_model`` checks example_x's width and its final logits;
  ``timesteps`` is validated; a float64 module gets one line.
"""
from __future__ import annotations

import errno
import io
import json
import os
import re
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from common.errors import CheckpointError, ConversionError, OutputError, UserError
from tests.cli_support import one_error_line, run_many

backend = pytest.mark.backend


def cli(args, capsys, monkeypatch):
    """``python -m parity ARGS`` in this process (what a subprocess would print, without its start-up):
    ``(exit code, stdout, stderr)``."""
    import sys
    import warnings
    from common.cli import run_cli
    from parity.__main__ import PROG, main
    monkeypatch.setattr(sys, "argv", [PROG, *map(str, args)])
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "torch"))  # convert sets it
    with warnings.catch_warnings():
        code = run_cli(main, PROG)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_in_process(args, capsys, monkeypatch, pattern: str) -> str:
    code, stdout, stderr = cli(args, capsys, monkeypatch)
    assert code == 2 and stdout == "" and len(stderr.splitlines()) == 1, (code, stdout, stderr)
    assert re.search(pattern, stderr), stderr
    return stderr


class GruMean(nn.Module):
    """The attack round's first model: a GRU read through the mean over time."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(28, 8, batch_first=True)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out.mean(1))


class LstmMax(nn.Module):
    """The second: an LSTM read through max-pooling over time."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 8, batch_first=True)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(nn.functional.max_pool1d(out.transpose(1, 2), out.shape[1]).squeeze(-1))


class Evil:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def example(seed: int = 0, batch: int = 16) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).uniform(-1, 1, (batch, 28, 28)).astype(np.float32))


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    """Each model's state dict and .pt2, trained by nobody (seeded): ``{name: (module, folder)}``."""
    folder = tmp_path_factory.mktemp("users")
    models = {}
    for seed, cls in enumerate((GruMean, LstmMax)):
        torch.manual_seed(seed)
        model = cls().eval()
        name = cls.__name__
        torch.save(model.state_dict(), folder / f"{name}.pt")
        with torch.no_grad():
            program = torch.export.export(model, (example(seed),))
        torch.export.save(program, folder / f"{name}.pt2")
        models[name] = model
    return models, folder


ROUTES = (r"a forward that pools over time \(mean, max\) or does anything else is another model: convert the forward "
          r"itself: save it with torch\.export\.save\(torch\.export\.export\(model, \(x,\)\), 'model\.pt2'\) and "
          r"convert the \.pt2, or call parity\.convert_module\(model, x\)$")


def test_a_state_dict_whose_forward_is_not_settled_is_refused(users, capsys, monkeypatch):
    """Without --readout, both state dicts are refused in one line naming both routes; nothing is written.
    The old command wrote them with exit 0, differing from the user's forward by 0.83 and 0.61.  One runs
    as a real command (a process of its own: no warning or log line either), the other in this process."""
    models, folder = users
    pattern = (r"holds weights only, which cannot show what your forward computes: pass --readout last-output if your "
               r"forward hands the Linear the last step, out\[:, -1\] \(for one direction the same as h_n\[-1\]: "
               r"--readout h_n says the same\), and nothing else; " + ROUTES)
    result = run_many({"gru": ("parity", ["convert", folder / "GruMean.pt", folder / "GruMean-guess.keras",
                                          "--backend", "torch"], None, None)})["gru"]
    one_error_line(result, "parity", r"error: \S+/GruMean\.pt " + pattern)
    assert result.stdout == ""
    one_line_in_process(["convert", folder / "LstmMax.pt", folder / "LstmMax-guess.keras"], capsys, monkeypatch,
                        r"^python -m parity: error: \S+/LstmMax\.pt " + pattern)
    assert not list(folder.glob("*guess*"))
    # What the guess would have been: StackedRNN reads the last step, the user's forward pools.
    from parity.state_dict import infer_from_state_dict
    from torch_version.model import StackedRNN
    for name, model in models.items():
        arch, renamed, _, _ = infer_from_state_dict(model.state_dict(), readout="last-output")
        guess = StackedRNN(**arch.kwargs())
        guess.load_state_dict(renamed)
        with torch.no_grad():
            assert (guess(example()) - model(example())).abs().max() > 0.05, name


def test_a_state_dict_of_nn_rnn_needs_both_flags():
    from parity.state_dict import infer_from_state_dict
    state = {**{f"rnn.{k}": v for k, v in nn.RNN(28, 8).state_dict().items()},
             **{f"fc.{k}": v for k, v in nn.Linear(8, 10).state_dict().items()}}
    with pytest.raises(ConversionError) as info:
        infer_from_state_dict(state, where="rnn.pt")
    assert str(info.value).startswith("rnn.pt holds weights only, which cannot show what your forward computes: pass "
                                      "--readout last-output if") and " and --nonlinearity tanh or --nonlinearity relu, " \
                                      "as your nn.RNN was built (the weights are the same for both); " in str(info.value)
    with pytest.raises(ConversionError, match=r"pass --nonlinearity tanh or --nonlinearity relu, as your nn\.RNN was "
                                              r"built \(the weights are the same for both\); a forward that pools"):
        infer_from_state_dict(state, readout="last-output")
    arch = infer_from_state_dict(state, readout="last-output", nonlinearity="relu")[0]
    assert (arch.nonlinearity, arch.readout) == ("relu", "h_n")  # one direction: both readouts are h_n[-1]
    # A .pt the previous convert wrote recorded readout='h_n' for one direction without being told: not settled.
    older = {"readout": "h_n", "nonlinearity": "tanh", "bidirectional": False, "assumed": ["readout"]}
    with pytest.raises(ConversionError, match=r"\(it records readout='h_n' only as an older convert's assumption\)"):
        infer_from_state_dict(state, recorded=older)


@backend
@pytest.mark.parametrize("name", ["GruMean", "LstmMax"])
def test_the_pt2_of_each_converts_exactly(tmp_path, users, name, keras_backend):
    """The .pt2 carries the forward: the Keras model computes what the user's module computes, mean and
    max-pooling included, on inputs the program was not exported with, within the float32 allowance."""
    import keras
    from parity.check import within
    from parity.convert_command import convert_file
    models, folder = users
    result = convert_file(folder / f"{name}.pt2", tmp_path / f"{name}.keras", out=lambda line: None)
    stdout = "\n".join(result.lines)
    assert "an exported PyTorch program (torch.export)" in stdout and "example input of shape (16, 28, 28)" in stdout
    assert re.search(rf"self-check \(Keras on {keras_backend}\) on the program's example inputs, shape \(16, 28, 28\): "
                     r"largest \|Δ logits\| = \S+ \(allowed: the float32 allowance 1e-05 \+ 1e-05 × ", stdout), stdout
    assert result.max_abs_diff <= result.allowance < 1e-4
    loaded = keras.models.load_model(tmp_path / f"{name}.keras", safe_mode=True)
    x = example(seed=7)  # another batch of the same shape
    with torch.no_grad():
        expected = models[name](x).numpy()
    got = np.asarray(keras.ops.convert_to_numpy(loaded.predict(x.numpy(), verbose=0)))
    assert within(float(np.abs(got - expected).max()), expected)
    with pytest.raises(ConversionError, match=r"--readout last-output: \S+ is an exported program, which carries its "
                                              r"forward; leave the flag out$"):
        convert_file(folder / f"{name}.pt2", tmp_path / "again.keras", readout="last-output", out=lambda line: None)
    with pytest.raises(ConversionError, match=r"is an exported PyTorch program already; convert it to a \.keras file$"):
        convert_file(folder / f"{name}.pt2", tmp_path / "again.pt", out=lambda line: None)


class WithSpare(GruMean):
    """A module owning a parameter its forward never reads (left over from an experiment)."""

    def __init__(self):
        super().__init__()
        self.spare = nn.Linear(8, 3)


def test_a_parameter_the_forward_never_reads_is_named_not_refused(tmp_path):
    from parity.convert_command import convert_file
    torch.manual_seed(5)
    torch.export.save(torch.export.export(WithSpare().eval(), (example(),)), tmp_path / "spare.pt2")
    result = convert_file(tmp_path / "spare.pt2", tmp_path / "spare.keras", out=lambda line: None)
    notes = [line for line in result.lines if line.startswith("note: ")]
    assert len(notes) == 1 and "spare.weight" in notes[0] and "spare.bias" in notes[0], result.lines
    assert result.max_abs_diff <= result.allowance


class TimeMajorIdsGruNorm(nn.Module):
    """Time-major token ids, cast with ``.long()``, a GRU, and a BatchNorm1d (whose int64
    ``num_batches_tracked`` buffer travels in the .pt2): the CLI's self-check must move the batch axis."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(30, 6)
        self.gru = nn.GRU(6, 8)
        self.norm = nn.BatchNorm1d(8)
        self.fc = nn.Linear(8, 3)

    def forward(self, ids):                    # (time, batch) token ids
        out, _ = self.gru(self.embedding(ids.long()))
        return self.fc(self.norm(out[-1]))


def test_a_time_major_pt2_with_integer_buffers_converts(tmp_path):
    """The example inputs are (time, batch): the self-check feeds them batch-first; an int64 buffer is
    no precision problem."""
    from parity.convert_command import convert_file
    torch.manual_seed(3)
    model = TimeMajorIdsGruNorm().eval()
    with torch.no_grad():
        model.norm.running_mean.uniform_(-1, 1)
    ids = torch.from_numpy(np.random.default_rng(3).integers(0, 30, (9, 5)))  # 9 steps, 5 sequences
    torch.export.save(torch.export.export(model, (ids,)), tmp_path / "tm.pt2")
    result = convert_file(tmp_path / "tm.pt2", tmp_path / "tm.keras", out=lambda line: None)
    assert any("shape (9, 5), batch axis 1 moved to the front" in line for line in result.lines), result.lines
    assert result.max_abs_diff <= result.allowance < 1e-4


# --- A .pt2 runs no code from the file ----------------------------------------------------------------

def rewritten(src, dst, replace: dict):
    """A copy of the zip ``src`` with the entries whose name ends in a key of ``replace`` given new bytes."""
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for info in a.infolist():
            new = next((data for end, data in replace.items() if info.filename.endswith(end)), None)
            b.writestr(info, a.read(info.filename) if new is None else new)
    return dst


def pickled(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def edited_json(src, entry: str, edit) -> bytes:
    with zipfile.ZipFile(src) as a:
        name = next(n for n in a.namelist() if n.endswith(entry))
        document = json.loads(a.read(name))
    edit(document)
    return json.dumps(document).encode()


def malicious(users, tmp_path) -> dict:
    """``{name: (file, pattern of the one line)}``: a .pt2 that would run ``touch marker`` if loaded naively."""
    _, folder = users
    good, marker = folder / "GruMean.pt2", tmp_path / "pwned"

    def pickled_weight(doc):
        doc["config"]["gru.weight_ih_l0"]["use_pickle"] = True

    def evil_size(doc):
        doc["graph_module"]["graph"]["tensor_values"]["x"]["sizes"][0] = {
            "as_expr": {"expr_str": f"Symbol(__import__('os').system('touch {marker}'))", "hint": None}}

    def guard(doc):
        doc["guards_code"] = [f"__import__('os').system('touch {marker}')"]

    def target(doc):
        doc["graph_module"]["graph"]["nodes"][0]["target"] = "os.system"
    refused = "the file is refused unopened, since convert never runs code from a file"
    return {
        "example inputs": (rewritten(good, tmp_path / "inputs.pt2", {"sample_inputs/model.pt": pickled((Evil(marker),))}),
                           r"its example inputs are not plain tensors \(UnpicklingError\), and torch\.export\.load "
                           rf"would unpickle them without weights_only; {refused}"),
        "a pickled weight": (rewritten(good, tmp_path / "weight.pt2", {
            "weight_0": pickled(Evil(marker)),
            "model_weights_config.json": edited_json(good, "model_weights_config.json", pickled_weight)}),
            rf"'gru\.weight_ih_l0' is stored as a pickled object, not as raw tensor bytes; {refused}"),
        "an opaque object": (rewritten(good, tmp_path / "opaque.pt2", {}), None),  # filled below
        "a symbolic size": (rewritten(good, tmp_path / "size.pt2", {
            "models/model.json": edited_json(good, "models/model.json", evil_size)}),
            rf"the symbolic size .* is not a plain sympy expression \(torch would eval it\); {refused}"),
        "guard code": (rewritten(good, tmp_path / "guard.pt2", {
            "models/model.json": edited_json(good, "models/model.json", guard)}),
            rf"carries guard code \(Python source that loading would compile and run\); {refused}"),
        "a node target": (rewritten(good, tmp_path / "target.pt2", {
            "models/model.json": edited_json(good, "models/model.json", target)}),
            rf"node target 'os\.system' is not a torch operator; {refused}"),
    }


def test_a_malicious_pt2_runs_nothing(users, tmp_path, capsys, monkeypatch):
    """Each would run ``touch pwned`` (the first one does, through plain torch.export.load); convert refuses
    each in one line and the marker never appears.  The second guard (torch.load held to weights_only while
    torch.export.load runs) stops the first on its own too."""
    from parity.exported_files import _tensors_only, load_exported
    cases = malicious(users, tmp_path)
    with zipfile.ZipFile(cases["an opaque object"][0], "a") as archive:  # a constant unpickled with pickle.loads
        root = archive.namelist()[0].split("/")[0]
        archive.writestr(f"{root}/data/constants/opaque_obj_0", pickle_bytes(Evil(tmp_path / "pwned")))
    cases["an opaque object"] = (cases["an opaque object"][0],
                                 r"entry 'data/constants/opaque_obj_0' is a pickled object that a plain exported "
                                 r"program does not hold; the file is refused unopened")
    marker = tmp_path / "pwned"
    for name, (path, pattern) in cases.items():
        with pytest.raises(CheckpointError) as info:
            load_exported(path)
        assert "\n" not in str(info.value) and re.search(pattern, str(info.value)), (name, str(info.value))
        assert not marker.exists(), name
    with _tensors_only(), pytest.raises(Exception):
        torch.export.load(cases["example inputs"][0])  # past the archive check: still no unpickling
    assert not marker.exists()
    import logging
    logging.getLogger("torch").setLevel(logging.CRITICAL)  # torch logs its fallback with a broken format string
    torch.export.load(cases["example inputs"][0])  # what convert does not do: the payload runs
    assert marker.exists()
    marker.unlink()
    one_line_in_process(["convert", cases["a pickled weight"][0], tmp_path / "out.keras"], capsys, monkeypatch,
                        r"^python -m parity: error: \S+weight\.pt2: " + cases["a pickled weight"][1])
    assert not marker.exists() and not (tmp_path / "out.keras").exists()


def pickle_bytes(obj) -> bytes:
    import pickle
    return pickle.dumps(obj)


def test_a_pt2_with_float64_weights_or_beyond_the_size_limit_is_refused(tmp_path, monkeypatch):
    from parity import model_files
    from parity.exported_files import load_exported
    model = GruMean().double().eval()
    torch.export.save(torch.export.export(model, (example().double(),)), tmp_path / "double.pt2")
    with pytest.raises(ConversionError, match=r"tensor 'gru\.weight_ih_l0' in \S+double\.pt2 is float64; convert "
                                              r"works in float32 \(both sides compute in float32\): cast with "
                                              r"model\.float\(\) before saving$"):
        load_exported(tmp_path / "double.pt2")
    torch.export.save(torch.export.export(GruMean().eval(), (example(),)), tmp_path / "small.pt2")
    monkeypatch.setattr(model_files, "MAX_MODEL_BYTES", 1000)
    with pytest.raises(ConversionError, match=r"which brings the file's tensors to [\d,]+ bytes, more than the 1,000 "):
        load_exported(tmp_path / "small.pt2")


# --- DST: never lost ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def notebook_state(tmp_path_factory):
    from tests.notebook_support import RNNModel
    folder = tmp_path_factory.mktemp("notebook")
    torch.manual_seed(3)
    torch.save(RNNModel().state_dict(), folder / "model.pt")
    return folder / "model.pt"


NOTEBOOK_FLAGS = dict(nonlinearity="tanh", readout="last-output")


def test_a_file_that_appears_at_dst_during_the_conversion_is_kept(tmp_path, notebook_state, monkeypatch):
    from parity import destination
    from parity.convert_command import convert_file
    dst = tmp_path / "out.pt"

    def someone_writes(path):
        path.write_text("written by someone else meanwhile\n")
    monkeypatch.setattr(destination, "about_to_install", someone_writes)
    with pytest.raises(ConversionError, match=r"^DST \S+out\.pt appeared while converting \(another conversion or "
                                              r"program wrote it\); it was kept as it is: pass --overwrite to replace "
                                              r"it, or choose another DST$"):
        convert_file(notebook_state, dst, out=lambda line: None, **NOTEBOOK_FLAGS)
    assert dst.read_text() == "written by someone else meanwhile\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.pt"]  # no temporary file left
    convert_file(notebook_state, dst, out=lambda line: None, overwrite=True, **NOTEBOOK_FLAGS)  # told to: replaced
    assert set(torch.load(dst, weights_only=True)) == {"model", "architecture", "assumed"}


def test_two_conversions_racing_for_one_dst(tmp_path, notebook_state):
    """Exactly one writes DST; the other says so in one line (whichever check it met first)."""
    dst = tmp_path / "raced.pt"
    args = ["convert", notebook_state, dst, "--backend", "torch", "--nonlinearity", "tanh", "--readout", "last-output"]
    results = run_many({i: ("parity", args, None, None) for i in range(2)}, workers=2)
    codes = sorted(r.returncode for r in results.values())
    assert codes == [0, 2], [(r.returncode, r.stderr[-500:]) for r in results.values()]
    loser = next(r for r in results.values() if r.returncode == 2)
    one_error_line(loser, "parity", r"error: DST \S+raced\.pt (already exists|appeared while converting)")
    assert torch.load(dst, weights_only=True)["architecture"]["readout"] == "h_n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raced.pt"]


def test_dst_refusals_are_one_line(tmp_path, notebook_state, capsys, monkeypatch):
    from parity.destination import check_destination
    (tmp_path / "dangling.keras").symlink_to(tmp_path / "nowhere.keras")
    (tmp_path / "loop.keras").symlink_to(tmp_path / "loop.keras")
    (tmp_path / "a-file").write_text("not a folder\n")
    cases = {
        "dangling.keras": r"^DST \S+dangling\.keras already exists \(a symbolic link to \S+nowhere\.keras, which does "
                          r"not exist\); pass --overwrite to replace the link, or choose another DST$",
        "loop.keras": r"^DST \S+loop\.keras is a symbolic link that leads back to itself \(a loop\); remove it or "
                      r"choose another DST$",
        "a-file/out.keras": r"^the folder of DST, \S+a-file, is a file; choose another DST$",
        "a-file/deeper/out.keras": r"^the folder of DST, \S+a-file/deeper, cannot be created: \S+a-file is a file; "
                                   r"choose another DST$",
    }
    for name, pattern in cases.items():
        with pytest.raises(UserError) as info:
            check_destination(notebook_state, tmp_path / name)
        assert re.search(pattern, str(info.value)), (name, str(info.value))
    assert not (tmp_path / "nowhere.keras").exists()
    for name, pattern in cases.items():
        one_line_in_process(["convert", notebook_state, tmp_path / name], capsys, monkeypatch,
                            "^python -m parity: error: " + pattern.lstrip("^"))


def test_a_symlink_loop_as_src_is_one_line(tmp_path, capsys, monkeypatch):
    from parity.model_files import sniff
    (tmp_path / "loop.pt").symlink_to(tmp_path / "loop.pt")
    with pytest.raises(CheckpointError, match=r"^\S+loop\.pt is a symbolic link that leads back to itself \(a loop\); "
                                              r"point it at the model file$"):
        sniff(tmp_path / "loop.pt")
    one_line_in_process(["convert", tmp_path / "loop.pt", tmp_path / "out.keras"], capsys, monkeypatch,
                        r"^python -m parity: error: \S+loop\.pt is a symbolic link that leads back to itself")


def test_a_full_disk_names_dst_and_no_out_flag(tmp_path, notebook_state, monkeypatch):
    from parity.convert_command import convert_file
    real_write_bytes = type(tmp_path).write_bytes

    def full(self, data):
        if ".tmp" in self.name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write_bytes(self, data)
    monkeypatch.setattr(type(tmp_path), "write_bytes", full)
    with pytest.raises(OutputError, match=r"^no space left on the device to write \S+out\.pt \(No space left on "
                                          r"device\); free some space or choose another DST$"):
        convert_file(notebook_state, tmp_path / "out.pt", out=lambda line: None, **NOTEBOOK_FLAGS)
    assert list(tmp_path.iterdir()) == []


# --- SRC's tensors ---------------------------------------------------------------------------------------

def test_the_size_guard_sums_over_the_tensors(monkeypatch):
    """Three tensors of 400 bytes each under a limit of 1000 (the real one, 1 GiB, works the same: a
    unit test need not describe gigabytes): none is over alone, the three are together."""
    from parity import model_files
    monkeypatch.setattr(model_files, "MAX_MODEL_BYTES", 1000)
    part = torch.zeros(1).expand(10, 10)  # 400 bytes described (stride 0: 4 stored)
    model_files.check_tensors({"a": part, "b": part}, "two.pt")  # 800 bytes: accepted
    with pytest.raises(ConversionError, match=r"^tensor 'c' in three\.pt describes \(10, 10\) values, which brings "
                                              r"the file's tensors to 1,200 bytes, more than the 1,000 convert accepts"):
        model_files.check_tensors({"a": part, "b": part, "c": part}, "three.pt")


@pytest.mark.parametrize("layout", ["coo", "csr", "csc", "bsr", "bsc"])
def test_every_sparse_layout_is_refused(tmp_path, layout):
    from parity.model_files import load_torch, state_dict_of
    state = {**{f"rnn.{k}": v for k, v in nn.RNN(28, 8).state_dict().items()}, "fc.weight": torch.eye(10, 8),
             "fc.bias": torch.zeros(10)}
    dense = state["fc.weight"]
    state["fc.weight"] = {"coo": dense.to_sparse, "csr": dense.to_sparse_csr, "csc": dense.to_sparse_csc,
                          "bsr": lambda: dense.to_sparse_bsr((2, 2)), "bsc": lambda: dense.to_sparse_bsc((2, 2))}[layout]()
    torch.save(state, tmp_path / "sparse.pt")
    with pytest.raises(ConversionError, match=r"^tensor 'fc\.weight' in \S+sparse\.pt is sparse; convert maps the "
                                              r"dense float32 weights"):
        state_dict_of(tmp_path / "sparse.pt", load_torch(tmp_path / "sparse.pt"))


# --- The public API ------------------------------------------------------------------------------------------

def keras_classifier():
    import keras
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((28, 28)), keras.layers.GRU(8), keras.layers.Dense(10)])


def test_convert_keras_model_checks_the_width_of_example_x():
    import parity
    model = keras_classifier()
    with pytest.raises(ConversionError) as info:
        parity.convert_keras_model(model, example()[:, :, :13].numpy())
    # the width itself is named, before anything runs (not a failure of the Keras model on the wrong input)
    assert "\n" not in str(info.value) and re.search(r"^example_x has 13 features per step but .* takes 28 ",
                                                      str(info.value)), str(info.value)


def test_convert_keras_model_checks_its_final_logits(monkeypatch):
    """A conversion whose built module is off (one weight moved after the build) is refused, not returned."""
    import parity
    import parity.from_keras as from_keras
    build = from_keras.build_torch_module

    def off(*args, **kwargs):
        module, builder = build(*args, **kwargs)
        with torch.no_grad():
            next(p for n, p in module.named_parameters() if n.endswith("bias")).add_(0.1)
        return module, builder
    model, x = keras_classifier(), example().numpy()
    assert parity.convert_keras_model(model, x) is not None  # as built: accepted
    monkeypatch.setattr(from_keras, "build_torch_module", off)
    with pytest.raises(ConversionError) as info:
        parity.convert_keras_model(model, x)
    assert "\n" not in str(info.value) and "allowance" in str(info.value)


@pytest.mark.parametrize("timesteps, pattern", [
    (0, r"timesteps must be a positive whole number of steps or None, got 0"),
    (-5, r"got -5"), (True, r"got True"), ("28", r"got '28'"),
    (27, r"timesteps=27 but example_x has 28 steps")])
def test_timesteps_is_validated(timesteps, pattern):
    import parity
    torch.manual_seed(0)
    with pytest.raises(ConversionError, match=pattern):
        parity.convert_module(GruMean().eval(), example(), timesteps=timesteps)
    with pytest.raises(ConversionError, match=pattern):
        parity.convert_keras_model(keras_classifier(), example().numpy(), timesteps=timesteps)


def test_a_float64_module_gets_one_line():
    import parity
    with pytest.raises(ConversionError) as info:
        parity.convert_module(GruMean().double().eval(), example().double())
    message = str(info.value)
    assert "\n" not in message and "float64" in message and "float32" in message and "model.float()" in message
    assert "input.to" not in message  # torch's own advice, about the input, is not relayed
