"""A malware-classification project on GitHub: Embedding and a time-major LSTM read through ``hidden.squeeze_(0)``.

Source: https://github.com/schladt/GIMC/blob/HEAD/classifier/models/lstm.py
Author: schladt (GitHub).  Licence: none stated in the repository; quoted (20 lines) with
attribution as a test fixture for interoperability.
Kept as written, the in-place ``squeeze_`` included.  Token ids arrive time-major.
Sizes: input_dim -> 500, embedding 32, hidden 48, 4 classes.
"""
import torch

from tests.zoo._weights import perturb_torch, tokens

FRAMEWORK = "torch"
SOURCE = "https://github.com/schladt/GIMC/blob/HEAD/classifier/models/lstm.py"
AUTHOR = "schladt"
LICENCE = "none stated (quoted with attribution)"
EXPECT = "convert"
WHY = None
TIME_MAJOR = True  # the forward reads (time, batch, ...): the converted Keras model takes it transposed


class LSTM(torch.nn.Module):

    def __init__(self, input_dim, embedding_dim, hidden_dim, output_dim):
        super().__init__()

        self.embedding = torch.nn.Embedding(input_dim, embedding_dim)
        self.rnn = torch.nn.LSTM(embedding_dim, hidden_dim)
        self.fc = torch.nn.Linear(hidden_dim, output_dim)


    def forward(self, text):
        # text dim: [sentence length, batch size]
        embedded = self.embedding(text)
        # embedded dim: [sentence length, batch size, embedding dim]

        output, (hidden, cell) = self.rnn(embedded)
        # output dim: [sentence length, batch size, hidden dim]
        # hidden dim: [1, batch size, hidden dim]

        hidden.squeeze_(0)
        # hidden dim: [batch size, hidden dim]

        output = self.fc(hidden)
        return output


def make(seed: int = 0):
    torch.manual_seed(0)
    model = perturb_torch(LSTM(500, 32, 48, 4))
    return model, tokens(seed, 8, 18, 500).T.copy()  # [sentence length, batch size]
