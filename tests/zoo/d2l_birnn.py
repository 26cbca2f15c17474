"""Dive into Deep Learning, "Sentiment Analysis: Using Recurrent Neural Networks": a bidirectional LSTM on IMDb tokens.

Source: https://d2l.ai/chapter_natural-language-processing-applications/sentiment-analysis-rnn.html
(code in https://github.com/d2l-ai/d2l-en).  Authors: Aston Zhang, Zachary C. Lipton, Mu Li,
Alexander J. Smola.  Licence: the book's sample code is MIT-0 (LICENSE-SAMPLECODE).
Kept as written: batch-first token ids transposed with ``inputs.T`` (time-major LSTM), the
first and last time steps' outputs concatenated, Linear(4 * hiddens, 2).
Sizes: vocabulary 49,347 -> 500, embedding 100 -> 32, hiddens 100 -> 32 (2 layers, as the book).
"""
import torch
from torch import nn

from tests.zoo._weights import perturb_torch, tokens

FRAMEWORK = "torch"
SOURCE = "https://d2l.ai/chapter_natural-language-processing-applications/sentiment-analysis-rnn.html"
AUTHOR = "Aston Zhang, Zachary C. Lipton, Mu Li, Alexander J. Smola: Dive into Deep Learning"
LICENCE = "MIT-0 (the book's sample code)"
EXPECT = "convert"
WHY = None


class BiRNN(nn.Module):
    def __init__(self, vocab_size, embed_size, num_hiddens,
                 num_layers, **kwargs):
        super(BiRNN, self).__init__(**kwargs)
        self.embedding = nn.Embedding(vocab_size, embed_size)
        # Set `bidirectional` to True to get a bidirectional RNN
        self.encoder = nn.LSTM(embed_size, num_hiddens, num_layers=num_layers,
                                bidirectional=True)
        self.decoder = nn.Linear(4 * num_hiddens, 2)

    def forward(self, inputs):
        # The shape of `inputs` is (batch size, no. of time steps). Because
        # LSTM requires its input's first dimension to be the temporal
        # dimension, the input is transposed before obtaining token
        # representations. The output shape is (no. of time steps, batch size,
        # word vector dimension)
        embeddings = self.embedding(inputs.T)
        self.encoder.flatten_parameters()
        # Returns hidden states of the last hidden layer at different time
        # steps. The shape of `outputs` is (no. of time steps, batch size,
        # 2 * no. of hidden units)
        outputs, _ = self.encoder(embeddings)
        # Concatenate the hidden states at the initial and final time steps as
        # the input of the fully connected layer. Its shape is (batch size,
        # 4 * no. of hidden units)
        encoding = torch.cat((outputs[0], outputs[-1]), dim=1)
        outs = self.decoder(encoding)
        return outs


def make(seed: int = 0):
    torch.manual_seed(0)
    model = perturb_torch(BiRNN(500, 32, 32, 2))
    return model, tokens(seed, 8, 24, 500)  # (batch, 24 tokens)
