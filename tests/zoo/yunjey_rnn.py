"""yunjey's "Recurrent Neural Network" tutorial: a 2-layer LSTM(128) over the 28 rows of an MNIST image.

Source: https://github.com/yunjey/pytorch-tutorial/blob/master/tutorials/02-intermediate/recurrent_neural_network/main.py
Author: Yunjey Choi (pytorch-tutorial).  Licence: MIT.
Kept as written: explicit zero initial states built from ``device``, last output step.
Sizes: the author's (input 28, hidden 128, 2 layers, 10 classes).
"""
import torch
import torch.nn as nn

from tests.zoo._weights import floats, perturb_torch

FRAMEWORK = "torch"
SOURCE = "https://github.com/yunjey/pytorch-tutorial/blob/master/tutorials/02-intermediate/recurrent_neural_network/main.py"
AUTHOR = "Yunjey Choi, pytorch-tutorial"
LICENCE = "MIT"
EXPECT = "convert"
WHY = None

device = torch.device('cpu')  # the tutorial: 'cuda' if available, else 'cpu'


# Recurrent neural network (many-to-one)
class RNN(nn.Module):
    def __init__(self, input_size, hidden_size, num_layers, num_classes):
        super(RNN, self).__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        # Set initial hidden and cell states
        h0 = torch.zeros(self.num_layers, x.size(0), self.hidden_size).to(device)
        c0 = torch.zeros(self.num_layers, x.size(0), self.hidden_size).to(device)

        # Forward propagate LSTM
        out, _ = self.lstm(x, (h0, c0))  # out: tensor of shape (batch_size, seq_length, hidden_size)

        # Decode the hidden state of the last time step
        out = self.fc(out[:, -1, :])
        return out


def make(seed: int = 0):
    torch.manual_seed(0)
    model = perturb_torch(RNN(28, 128, 2, 10))
    return model, floats(seed, 8, 28, 28)  # (batch, 28 rows, 28 pixels)
