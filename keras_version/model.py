"""The model: stacked recurrent layers, the last time step, then a dense classifier.

The defaults build the notebook's network: three ``SimpleRNN`` layers of 8 units
(658 parameters; torch has 24 more, one extra bias vector per layer), the last
time step, ``Dense(10)``.  Keras recurrent layers return only the last step
unless ``return_sequences=True``, so every layer but the last sets it.
``nonlinearity`` and ``bias`` mirror ``nn.RNN``'s arguments (``activation``, ``use_bias``);
``readout="last-output"`` makes a bidirectional stack hand the classifier the last step of its
whole output sequence (torch's ``out[:, -1]``) instead of each direction's final state (``h_n``).
"""
from __future__ import annotations

import keras

from common.config import CELLS, READOUTS, check_choice, check_nonlinearity

RECURRENT = {"rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": keras.layers.LSTM}


def build_model(input_size: int = 28, hidden_size: int = 8, num_layers: int = 3,
                num_classes: int = 10, cell: str = "rnn", bidirectional: bool = False,
                nonlinearity: str = "tanh", bias: bool = True, readout: str = "h_n",
                timesteps: int | None = 28, unroll: bool = False) -> keras.Model:
    """Same signature as ``torch_version.model.build_model``, plus the declared input length and
    ``unroll``, a speed setting that leaves the network as it is (``common/speed.py`` chooses it
    per backend; unrolling needs a declared length)."""
    check_choice("cell", cell, CELLS)
    check_nonlinearity(cell, nonlinearity)
    check_choice("readout", readout, READOUTS)
    whole = bidirectional and readout == "last-output"  # the last layer returns its sequence too
    inputs = keras.Input(shape=(timesteps, input_size), name="sequence")  # (batch, time, features)
    x = inputs
    for i in range(num_layers):
        last = i == num_layers - 1
        layer = RECURRENT[cell](hidden_size, activation=nonlinearity, use_bias=bias, return_sequences=whole or not last,
                                unroll=unroll, name=f"{cell}_{i + 1}")
        if bidirectional:
            layer = keras.layers.Bidirectional(layer, merge_mode="concat", name=f"bi_{cell}_{i + 1}")
        x = layer(x)  # (batch, time, hidden * directions), or (batch, hidden * directions) when last
    if whole:
        x = x[:, -1]  # (batch, 2 * hidden): both directions at the last step, torch's out[:, -1]
    outputs = keras.layers.Dense(num_classes, name="fc")(x)  # (batch, classes): logits
    return keras.Model(inputs, outputs, name="stacked_rnn")


def count_params(model: keras.Model) -> int:
    return int(model.count_params())


def summary(model: keras.Model) -> str:
    """Keras's own summary table (layer, output shape, parameters)."""
    lines: list[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line), line_length=80)
    return "\n".join(lines)
