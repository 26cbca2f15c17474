"""MorvanZhou's PyTorch tutorial 402, "RNN classifier": one LSTM(64) over the 28 rows of an MNIST image.

Source: https://github.com/MorvanZhou/PyTorch-Tutorial/blob/master/tutorial-contents/402_RNN_classifier.py
Author: Morvan Zhou.  Licence: MIT.
Kept as written: ``self.rnn(x, None)`` (None: zero initial state), the last output step.
Sizes: the author's (INPUT_SIZE 28, hidden 64, 10 classes).
"""
import torch
from torch import nn

from tests.zoo._weights import floats, perturb_torch

FRAMEWORK = "torch"
SOURCE = "https://github.com/MorvanZhou/PyTorch-Tutorial/blob/master/tutorial-contents/402_RNN_classifier.py"
AUTHOR = "Morvan Zhou, PyTorch-Tutorial"
LICENCE = "MIT"
EXPECT = "convert"
WHY = None

INPUT_SIZE = 28         # rnn input size / image width


class RNN(nn.Module):
    def __init__(self):
        super(RNN, self).__init__()

        self.rnn = nn.LSTM(         # if use nn.RNN(), it hardly learns
            input_size=INPUT_SIZE,
            hidden_size=64,         # rnn hidden unit
            num_layers=1,           # number of rnn layer
            batch_first=True,       # input & output will has batch size as 1s dimension. e.g. (batch, time_step, input_size)
        )

        self.out = nn.Linear(64, 10)

    def forward(self, x):
        # x shape (batch, time_step, input_size)
        # r_out shape (batch, time_step, output_size)
        # h_n shape (n_layers, batch, hidden_size)
        # h_c shape (n_layers, batch, hidden_size)
        r_out, (h_n, h_c) = self.rnn(x, None)   # None represents zero initial hidden state

        # choose r_out at the last time step
        out = self.out(r_out[:, -1, :])
        return out


def make(seed: int = 0):
    torch.manual_seed(0)
    model = perturb_torch(RNN())
    return model, floats(seed, 8, 28, INPUT_SIZE)
