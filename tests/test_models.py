"""Both models: the notebook's architecture, its parameter counts, and the shape at every layer."""
import numpy as np
import pytest
import torch

from common.errors import ConfigError, ShapeError
from torch_version.model import StackedRNN, count_params as torch_params


def torch_layer_shapes(model, x):
    shapes = []
    for rnn in model.rnns:
        x, _ = rnn(x)
        shapes.append(tuple(x.shape))
    shapes.append(tuple(model(torch.zeros(x.shape[0], x.shape[1], model.input_size)).shape))
    return shapes


def test_torch_notebook_model():
    model = StackedRNN()
    assert [type(m).__name__ for m in model.rnns] == ["RNN", "RNN", "RNN"]
    assert all(m.batch_first and m.hidden_size == 8 and m.num_layers == 1 for m in model.rnns)
    assert (model.fc.in_features, model.fc.out_features) == (8, 10)
    assert torch_params(model) == 682
    assert torch_layer_shapes(model, torch.zeros(4, 28, 28)) == [(4, 28, 8)] * 3 + [(4, 10)]


@pytest.mark.parametrize("cell, params", [("rnn", 682), ("gru", 1866), ("lstm", 2458)])
def test_torch_cells(cell, params):
    assert torch_params(StackedRNN(cell=cell)) == params


def test_torch_rejects_bad_shapes_and_cells():
    model = StackedRNN()
    with pytest.raises(ShapeError, match=r"expects input of shape \(batch, time, features\) with 28 features"):
        model(torch.zeros(4, 1, 28, 28))  # ToTensor's (N, 1, 28, 28) must be squeezed first
    with pytest.raises(ConfigError, match="unknown cell 'transformer'"):
        StackedRNN(cell="transformer")


@pytest.mark.backend
@pytest.mark.parametrize("cell, bidirectional, params", [
    ("rnn", False, 658), ("gru", False, 1866), ("lstm", False, 2362), ("rnn", True, 1562)])
def test_keras_model_and_layer_shapes(cell, bidirectional, params):
    import keras
    from keras_version.model import build_model, count_params
    model = build_model(cell=cell, bidirectional=bidirectional)
    assert count_params(model) == params
    recurrent = [layer for layer in model.layers if layer.weights][:-1]
    d = 2 if bidirectional else 1
    assert [tuple(layer.output.shape) for layer in recurrent] == [(None, 28, 8 * d)] * 2 + [(None, 8 * d)]
    assert tuple(model.output.shape) == (None, 10)
    out = model(np.zeros((4, 28, 28), np.float32))
    assert tuple(keras.ops.shape(out)) == (4, 10)


@pytest.mark.backend
def test_keras_and_torch_agree_on_every_layer_shape():
    """torch keeps the sequence in every layer; Keras drops it in the last recurrent layer,
    and torch's model takes the last step by hand: from there the shapes agree."""
    from keras_version.model import build_model
    keras_model = build_model()
    keras_shapes = [tuple(layer.output.shape)[1:] for layer in keras_model.layers if layer.weights]
    torch_shapes = [s[1:] for s in torch_layer_shapes(StackedRNN(), torch.zeros(2, 28, 28))]
    assert keras_shapes[:2] == torch_shapes[:2] == [(28, 8), (28, 8)]
    assert keras_shapes[2] == torch_shapes[2][1:] == (8,)
    assert keras_shapes[3] == torch_shapes[3] == (10,)
