"""A sequence-learning project on GitHub: Embedding, one GRU, the mean over time, Linear.

Source: https://github.com/christinasaidy/Sequential-Learning/blob/HEAD/models/gru.py
Author: christinasaidy (GitHub).  Licence: none stated in the repository; quoted (12 lines)
with attribution as a test fixture for interoperability.
Kept as written: ``out.mean(dim=1)`` is the readout (the issue's CLI wrote this one wrong).
Sizes: vocabulary -> 700, embedding 24, hidden 40, 3 classes.
"""
import torch
import torch.nn as nn

from tests.zoo._weights import perturb_torch, tokens

FRAMEWORK = "torch"
SOURCE = "https://github.com/christinasaidy/Sequential-Learning/blob/HEAD/models/gru.py"
AUTHOR = "christinasaidy"
LICENCE = "none stated (quoted with attribution)"
EXPECT = "convert"
WHY = None


class GRUClassifier(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim, output_dim):
        super(GRUClassifier, self).__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.gru = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.fc = nn.Linear(hidden_dim, output_dim)

    def forward(self, x):
        x = self.embedding(x)
        out, _ = self.gru(x)
        out = out.mean(dim=1)
        out = self.fc(out)
        return out


def make(seed: int = 0):
    torch.manual_seed(0)
    model = perturb_torch(GRUClassifier(700, 24, 40, 3))
    return model, tokens(seed, 8, 22, 700)
