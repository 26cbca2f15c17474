"""yunjey's "Bidirectional Recurrent Neural Network" tutorial: a 2-layer bidirectional LSTM over MNIST rows.

Source: https://github.com/yunjey/pytorch-tutorial/blob/master/tutorials/02-intermediate/bidirectional_recurrent_neural_network/main.py
Author: Yunjey Choi (pytorch-tutorial).  Licence: MIT.
Kept as written: zero initial states for both directions, ``out[:, -1, :]`` (the forward
direction's last step next to the backward direction's first) into Linear(2 * hidden).
Sizes: the author's hidden 128 shrunk to 32.
"""
import torch
import torch.nn as nn

from tests.zoo._weights import floats, perturb_torch

FRAMEWORK = "torch"
SOURCE = "https://github.com/yunjey/pytorch-tutorial/blob/master/tutorials/02-intermediate/bidirectional_recurrent_neural_network/main.py"
AUTHOR = "Yunjey Choi, pytorch-tutorial"
LICENCE = "MIT"
EXPECT = "convert"
WHY = None

device = torch.device('cpu')


# Bidirectional recurrent neural network (many-to-one)
class BiRNN(nn.Module):
    def __init__(self, input_size, hidden_size, num_layers, num_classes):
        super(BiRNN, self).__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(hidden_size*2, num_classes)  # 2 for bidirection

    def forward(self, x):
        # Set initial states
        h0 = torch.zeros(self.num_layers*2, x.size(0), self.hidden_size).to(device) # 2 for bidirection
        c0 = torch.zeros(self.num_layers*2, x.size(0), self.hidden_size).to(device)

        # Forward propagate LSTM
        out, _ = self.lstm(x, (h0, c0))  # out: tensor of shape (batch_size, seq_length, hidden_size*2)

        # Decode the hidden state of the last time step
        out = self.fc(out[:, -1, :])
        return out


def make(seed: int = 0):
    torch.manual_seed(0)
    model = perturb_torch(BiRNN(28, 32, 2, 10))
    return model, floats(seed, 8, 28, 28)
