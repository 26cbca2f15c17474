"""The model: stacked recurrent layers, the last time step, then a linear classifier.

The defaults build the notebook's network exactly: three ``nn.RNN`` layers of
8 units (682 parameters), the output at the last time step, ``Linear(8, 10)``.
``nonlinearity`` and ``bias`` are ``nn.RNN``'s own arguments, and ``readout`` says what a
bidirectional stack hands the classifier (``"h_n"`` or ``"last-output"``, ``out[:, -1]``),
for models converted from other files (``python -m parity convert``).
"""
from __future__ import annotations

import torch
from torch import nn

from common.config import CELLS, READOUTS, check_choice, check_nonlinearity
from common.errors import check_sequence_shape

RECURRENT = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class StackedRNN(nn.Module):
    def __init__(self, input_size: int = 28, hidden_size: int = 8, num_layers: int = 3,
                 num_classes: int = 10, cell: str = "rnn", bidirectional: bool = False,
                 nonlinearity: str = "tanh", bias: bool = True, readout: str = "h_n"):
        super().__init__()
        check_choice("cell", cell, CELLS)
        check_nonlinearity(cell, nonlinearity)
        check_choice("readout", readout, READOUTS)
        options = {"nonlinearity": nonlinearity} if cell == "rnn" else {}  # GRU and LSTM take no such argument
        self.input_size, self.hidden_size, self.bidirectional = input_size, hidden_size, bidirectional
        self.readout = readout
        directions = 2 if bidirectional else 1
        # One module per layer, as in the notebook; nn.RNN(num_layers=3) is the same network.
        self.rnns = nn.ModuleList(
            RECURRENT[cell](input_size if i == 0 else hidden_size * directions, hidden_size,
                            bias=bias, batch_first=True, bidirectional=bidirectional, **options)
            for i in range(num_layers)
        )
        self.fc = nn.Linear(hidden_size * directions, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence_shape(x.shape, self.input_size)  # (batch, time, features)
        for rnn in self.rnns:
            x, _ = rnn(x)  # torch returns the whole sequence: (batch, time, hidden * directions)
        if self.bidirectional and self.readout == "h_n":
            # Forward direction ends at the last step, backward at the first: this is what
            # Keras's Bidirectional(return_sequences=False) returns, and what h_n holds.
            h = self.hidden_size
            last = torch.cat([x[:, -1, :h], x[:, 0, h:]], dim=-1)  # (batch, 2 * hidden)
        else:
            last = x[:, -1, :]  # (batch, hidden * directions); "last-output" when bidirectional
        return self.fc(last)  # (batch, classes): logits


def build_model(input_size: int = 28, hidden_size: int = 8, num_layers: int = 3,
                num_classes: int = 10, cell: str = "rnn", bidirectional: bool = False,
                nonlinearity: str = "tanh", bias: bool = True, readout: str = "h_n") -> StackedRNN:
    """Same signature as ``keras_version.model.build_model``."""
    return StackedRNN(input_size, hidden_size, num_layers, num_classes, cell, bidirectional, nonlinearity, bias,
                      readout)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def summary(model: StackedRNN, batch_size: int = 1, seq_len: int = 28) -> str:
    """A torchsummary-style table (layer, output shape, parameters), via torchinfo."""
    import torchinfo
    stats = torchinfo.summary(model, input_size=(batch_size, seq_len, model.input_size),
                              col_names=("output_size", "num_params"), row_settings=("var_names",),
                              depth=2, verbose=0)
    return str(stats)
