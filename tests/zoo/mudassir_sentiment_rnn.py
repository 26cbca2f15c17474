"""A review-sentiment project on GitHub: Embedding, nn.RNN with an explicit zero ``h0``, last output step.

Source: https://github.com/Mudassir-A/rnn-review-sentiment/blob/HEAD/src/model.py
Author: Mudassir-A (GitHub).  Licence: none stated in the repository; quoted (10 lines) with
attribution as a test fixture for interoperability.
Kept as written.  Sizes: vocabulary -> 600, embedding and hidden 128 -> 32, 2 classes.
"""
import torch
from torch import nn

from tests.zoo._weights import perturb_torch, tokens

FRAMEWORK = "torch"
SOURCE = "https://github.com/Mudassir-A/rnn-review-sentiment/blob/HEAD/src/model.py"
AUTHOR = "Mudassir-A"
LICENCE = "none stated (quoted with attribution)"
EXPECT = "convert"
WHY = None


class SentimentRNN(nn.Module):
    def __init__(self, vocab_size, embed_size, hidden_size, output_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.RNN(embed_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        x = self.embedding(x)
        h0 = torch.zeros(1, x.size(0), self.hidden_size).to(x.device)
        out, _ = self.rnn(x, h0)
        out = self.fc(out[:, -1, :])
        return out


def make(seed: int = 0):
    torch.manual_seed(0)
    model = perturb_torch(SentimentRNN(600, 32, 32, 2))
    return model, tokens(seed, 8, 20, 600)
