"""bentrevett's "2 - Upgraded Sentiment Analysis": a bidirectional LSTM over packed padded sequences.  A refusal.

Source: https://github.com/bentrevett/pytorch-sentiment-analysis (2 - Upgraded Sentiment Analysis.ipynb,
torchtext-era version).  Author: Ben Trevett.  Licence: MIT.
Kept as written: the forward takes the token ids and their lengths, packs them with
``pack_padded_sequence`` and reads ``cat(hidden[-2], hidden[-1])``.  The lengths are data: the
LSTM stops at each review's own end, which no fixed-graph Keras model does without a mask,
and ``convert_module(model, x)`` has one example input for a forward that needs two.
Sizes: vocabulary 25,002 -> 500, embedding 100 -> 24, hidden 256 -> 32, 2 layers.
"""
import torch
import torch.nn as nn

from tests.zoo._weights import perturb_torch, tokens

FRAMEWORK = "torch"
SOURCE = "https://github.com/bentrevett/pytorch-sentiment-analysis (2 - Upgraded Sentiment Analysis.ipynb, torchtext-era version)"
AUTHOR = "Ben Trevett, pytorch-sentiment-analysis"
LICENCE = "MIT"
EXPECT = "refuse"
WHY = "packed sequences: the forward takes the lengths as a second input and stops each sequence at its own end"
TIME_MAJOR = True  # the forward reads (time, batch, ...): the converted Keras model takes it transposed


class RNN(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_dim, output_dim, n_layers,
                 bidirectional, dropout, pad_idx):

        super().__init__()

        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx = pad_idx)

        self.rnn = nn.LSTM(embedding_dim,
                           hidden_dim,
                           num_layers=n_layers,
                           bidirectional=bidirectional,
                           dropout=dropout)

        self.fc = nn.Linear(hidden_dim * 2, output_dim)

        self.dropout = nn.Dropout(dropout)

    def forward(self, text, text_lengths):

        #text = [sent len, batch size]

        embedded = self.dropout(self.embedding(text))

        #embedded = [sent len, batch size, emb dim]

        #pack sequence
        # lengths need to be on CPU!
        packed_embedded = nn.utils.rnn.pack_padded_sequence(embedded, text_lengths.to('cpu'))

        packed_output, (hidden, cell) = self.rnn(packed_embedded)

        #unpack sequence
        output, output_lengths = nn.utils.rnn.pad_packed_sequence(packed_output)

        #output = [sent len, batch size, hid dim * num directions]
        #output over padding tokens are zero tensors

        #hidden = [num layers * num directions, batch size, hid dim]
        #cell = [num layers * num directions, batch size, hid dim]

        #concat the final forward (hidden[-2,:,:]) and backward (hidden[-1,:,:]) hidden layers
        #and apply dropout

        hidden = self.dropout(torch.cat((hidden[-2,:,:], hidden[-1,:,:]), dim = 1))

        #hidden = [batch size, hid dim * num directions]

        return self.fc(hidden)


def make(seed: int = 0):
    torch.manual_seed(0)
    model = perturb_torch(RNN(500, 24, 32, 1, 2, True, 0.5, 1))
    return model, tokens(seed, 8, 20, 500).T.copy()  # [sent len, batch size]; the lengths are the missing second input
