"""PyTorch's "NLP From Scratch: Classifying Names with a Character-Level RNN": nn.RNN over one-hot letters.

Source: https://pytorch.org/tutorials/intermediate/char_rnn_classification_tutorial.html
(https://github.com/pytorch/tutorials/blob/main/intermediate_source/char_rnn_classification_tutorial.py).
Author: Sean Robertson (updated by Matthew Schultz), PyTorch tutorials.  Licence: BSD-3-Clause.
Kept as written: a time-major ``line_tensor`` ``(letters, batch, 57)``, the final hidden state
``hidden[0]``, LogSoftmax over the 18 languages.
Sizes: the author's (57 letters, hidden 128, 18 languages).
"""
import torch.nn as nn
import torch.nn.functional as F  # noqa: F401  (imported by the tutorial)

from tests.zoo._weights import one_hot, perturb_torch

FRAMEWORK = "torch"
SOURCE = "https://pytorch.org/tutorials/intermediate/char_rnn_classification_tutorial.html"
AUTHOR = "Sean Robertson and Matthew Schultz, PyTorch tutorials"
LICENCE = "BSD-3-Clause"
EXPECT = "convert"
WHY = None
TIME_MAJOR = True  # the forward reads (time, batch, ...): the converted Keras model takes it transposed


class CharRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(CharRNN, self).__init__()

        self.rnn = nn.RNN(input_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, line_tensor):
        rnn_out, hidden = self.rnn(line_tensor)
        output = self.h2o(hidden[0])
        output = self.softmax(output)

        return output


def make(seed: int = 0):
    import torch
    torch.manual_seed(0)
    model = perturb_torch(CharRNN(57, 128, 18))
    return model, one_hot(seed, 12, 6, 57)  # six 12-letter names, (letters, batch, 57)
