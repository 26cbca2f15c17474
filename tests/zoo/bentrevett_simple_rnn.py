"""bentrevett's "1 - Simple Sentiment Analysis": an Embedding and a time-major nn.RNN read through ``hidden.squeeze(0)``.

Source: https://github.com/bentrevett/pytorch-sentiment-analysis, notebook "1 - Simple Sentiment
Analysis.ipynb" (the torchtext-era version, before the 2023 rewrite).  Author: Ben Trevett.  Licence: MIT.
Kept as written, the ``assert`` included: it checks in the forward that the last output
step is the final hidden state.  Token ids arrive time-major, ``[sent len, batch size]``.
Sizes: vocabulary 25,002 -> 500, embedding 100 -> 32, hidden 256 -> 48, one output.
"""
import torch
import torch.nn as nn

from tests.zoo._weights import perturb_torch, tokens

FRAMEWORK = "torch"
SOURCE = "https://github.com/bentrevett/pytorch-sentiment-analysis (1 - Simple Sentiment Analysis.ipynb, torchtext-era version)"
AUTHOR = "Ben Trevett, pytorch-sentiment-analysis"
LICENCE = "MIT"
EXPECT = "either"  # first classed "convert"; see WHY, and docs/convert.md's zoo section
WHY = ("its forward asserts torch.equal(output[-1], hidden.squeeze(0)), a check on the data that torch.export "
       "cannot trace (strict or not): the converter cannot read the forward, and says so in one line naming the "
       "assert and the way around it (export the forward without it)")
TIME_MAJOR = True  # the forward reads (time, batch, ...): the converted Keras model takes it transposed


class RNN(nn.Module):
    def __init__(self, input_dim, embedding_dim, hidden_dim, output_dim):

        super().__init__()

        self.embedding = nn.Embedding(input_dim, embedding_dim)

        self.rnn = nn.RNN(embedding_dim, hidden_dim)

        self.fc = nn.Linear(hidden_dim, output_dim)

    def forward(self, text):

        #text = [sent len, batch size]

        embedded = self.embedding(text)

        #embedded = [sent len, batch size, emb dim]

        output, hidden = self.rnn(embedded)

        #output = [sent len, batch size, hid dim]
        #hidden = [1, batch size, hid dim]

        assert torch.equal(output[-1,:,:], hidden.squeeze(0))

        return self.fc(hidden.squeeze(0))


def make(seed: int = 0):
    torch.manual_seed(0)
    model = perturb_torch(RNN(500, 32, 48, 1))
    return model, tokens(seed, 8, 26, 500).T.copy()  # [sent len, batch size]
