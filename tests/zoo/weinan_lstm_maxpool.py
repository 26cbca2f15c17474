"""A multi-domain sentiment project on GitHub: a 2-layer LSTM over word vectors, max-pooled over time.

Source: https://github.com/weinan1997/NLP_Sentence/blob/HEAD/LSTM_model.py
Author: weinan1997 (GitHub).  Licence: none stated in the repository; quoted (18 lines) with
attribution as a test fixture for interoperability.
Kept as written: batch-first vectors turned time-major with ``permute(1, 0, 2)``, then
``F.max_pool1d`` over the whole time axis (the issue's CLI wrote a max-pooled LSTM wrong).
Sizes: the ``args`` dict of the project's main.py with vec_len 300 -> 32 and lstm_dim -> 40.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.zoo._weights import floats, perturb_torch

FRAMEWORK = "torch"
SOURCE = "https://github.com/weinan1997/NLP_Sentence/blob/HEAD/LSTM_model.py"
AUTHOR = "weinan1997"
LICENCE = "none stated (quoted with attribution)"
EXPECT = "convert"
WHY = None


class LSTM_Sentence(nn.Module):
    def __init__(self, args):
        super(LSTM_Sentence, self).__init__()
        self.args = args

        self.hidden_dim = args["lstm_dim"]
        self.layer_num = args["layer_num"]
        self.vec_len = args["vec_len"]
        self.dropout = args["dropout"]
        self.batch_size = args["batch_size"]
        self.lstm = nn.LSTM(self.vec_len, self.hidden_dim, self.layer_num)
        self.fc = nn.Linear(self.hidden_dim, 2)


    def forward(self, x):
        x, _ = self.lstm(x.permute(1, 0, 2))
        x = x.permute(1, 2, 0)
        x = F.max_pool1d(x, x.size(2))
        x = x.squeeze(2)
        output = self.fc(x)
        return output


def make(seed: int = 0):
    torch.manual_seed(0)
    args = {"lstm_dim": 40, "layer_num": 2, "vec_len": 32, "dropout": 0.5, "batch_size": 8}
    model = perturb_torch(LSTM_Sentence(args))
    return model, floats(seed, 8, 24, 32)  # (batch, 24 words, 32-wide word vectors)
