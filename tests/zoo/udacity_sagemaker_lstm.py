"""Udacity's SageMaker deployment project: an LSTM whose readout position comes from the input itself.  A refusal.

Source: https://github.com/udacity/sagemaker-deployment/blob/HEAD/Project/train/model.py
Author: Udacity (Machine Learning Engineer Nanodegree).  Licence: none stated in the files we
read; quoted with attribution as a test fixture for interoperability.
Kept as written: each input row is ``[length, token ids...]``; the forward reads the dense
output at step ``lengths - 1`` of each review (``out[lengths - 1, range(len(lengths))]``),
an index computed from the data, which a graph of fixed layers cannot express.
Sizes: vocabulary 5,000 -> 300, embedding 32, hidden 100 -> 40.
"""
import numpy as np
import torch.nn as nn

from tests.zoo._weights import perturb_torch, tokens

FRAMEWORK = "torch"
SOURCE = "https://github.com/udacity/sagemaker-deployment/blob/HEAD/Project/train/model.py"
AUTHOR = "Udacity, sagemaker-deployment"
LICENCE = "none stated in the files read (quoted with attribution)"
EXPECT = "refuse"
WHY = "data-dependent indexing: the readout step of each row is read from the input (out[lengths - 1, ...])"


class LSTMClassifier(nn.Module):
    """
    This is the simple RNN model we will be using to perform Sentiment Analysis.
    """

    def __init__(self, embedding_dim, hidden_dim, vocab_size):
        """
        Initialize the model by setting up the various layers.
        """
        super(LSTMClassifier, self).__init__()

        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim)
        self.dense = nn.Linear(in_features=hidden_dim, out_features=1)
        self.sig = nn.Sigmoid()

        self.word_dict = None

    def forward(self, x):
        """
        Perform a forward pass of our model on some input.
        """
        x = x.t()
        lengths = x[0,:]
        reviews = x[1:,:]
        embeds = self.embedding(reviews)
        lstm_out, _ = self.lstm(embeds)
        out = self.dense(lstm_out)
        out = out[lengths - 1, range(len(lengths))]
        return self.sig(out.squeeze())


def make(seed: int = 0):
    import torch
    torch.manual_seed(0)
    model = perturb_torch(LSTMClassifier(32, 40, 300))
    reviews = tokens(seed, 8, 24, 300, padded=True)  # padded reviews, as the project's convert_and_pad gives
    lengths = (reviews != 0).sum(axis=1, keepdims=True)
    return model, np.concatenate([lengths, reviews], axis=1)  # (batch, 1 + 24): [length, ids...]


def held_out(x):
    """New padded reviews with their true lengths: shuffled ids would put a token where the length goes."""
    reviews = tokens(1, x.shape[0], x.shape[1] - 1, 300, padded=True)
    return np.concatenate([(reviews != 0).sum(axis=1, keepdims=True), reviews], axis=1)
