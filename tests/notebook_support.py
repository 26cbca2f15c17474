"""The notebook's own model class, as the notebook defines it, for the tests of ``python -m parity convert``."""
from __future__ import annotations

import torch
from torch import nn


class RNNModel(torch.nn.Module):
    """The notebook's model class, exactly as the notebook defines it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rnn1 = torch.nn.RNN(input_size=28, hidden_size=8, batch_first=True)
        self.rnn2 = torch.nn.RNN(input_size=8, hidden_size=8, batch_first=True)
        self.rnn3 = torch.nn.RNN(input_size=8, hidden_size=8, batch_first=True)
        self.fc = torch.nn.Linear(in_features=8, out_features=10)

    def forward(self, x):
        x = x.squeeze(1)
        out, _ = self.rnn1(x)
        out, _ = self.rnn2(out)
        out, _ = self.rnn3(out)
        out = out[:, -1, :]
        out = self.fc(out)
        return out


def trained_notebook_model(small_data, steps: int = 5) -> RNNModel:
    """The notebook's model after a few Adam steps on real images (its weights move off their initial values)."""
    torch.manual_seed(0)
    model = RNNModel()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step, (x, y) in zip(range(steps), small_data.train.epoch(0)):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        optimizer.step()
    return model.eval()
