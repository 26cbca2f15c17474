"""The README's pytest example for ``parity.testing.assert_equivalent`` runs as written, on the files it names."""
from __future__ import annotations

import inspect
import re
import sys

import torch

from tests.conftest import ROOT
from tests.notebook_support import RNNModel, trained_notebook_model

MARKER = "(`tests/test_parity_readme.py` runs this very block"


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text[text.index(MARKER):]
    return re.search(r"```python\n(.*?)\n```", after, re.S).group(1)


def test_the_readme_pytest_example_passes_and_fails_where_it_should(tmp_path, monkeypatch, small_data):
    from parity.files import convert_file
    code = readme_example()
    assert "assert_equivalent(torch_model, keras_model, x, atol=1e-5" in code
    (tmp_path / "notebook_model.py").write_text("import torch\n\n\n" + inspect.getsource(RNNModel))
    torch.save(trained_notebook_model(small_data).state_dict(), tmp_path / "rnn_notebook.pt")
    convert_file(tmp_path / "rnn_notebook.pt", tmp_path / "rnn_notebook.keras", "tanh", readout="last-output",
                 out=lambda line: None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "notebook_model", raising=False)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 1
    tests[0]()

    # The same test fails once the saved PyTorch weights no longer match the Keras file.
    state = torch.load(tmp_path / "rnn_notebook.pt", weights_only=True)
    state["rnn3.weight_ih_l0"][0, 0] += 0.1
    torch.save(state, tmp_path / "rnn_notebook.pt")
    try:
        tests[0]()
    except AssertionError as error:
        assert str(error).startswith("layer 2 (torch 'rnn3', keras 'rnn_3'): the output sequence differs by up to ")
    else:
        raise AssertionError("the README's test passed on weights that differ")
