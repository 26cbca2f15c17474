"""A news-classification project on GitHub: Embedding, a 2-layer bidirectional GRU, ``cat(h[-2], h[-1])``, an MLP head.

Source: https://github.com/cnzx05cnzx/news_cla/blob/HEAD/gru.py
Author: cnzx05cnzx (GitHub).  Licence: none stated in the repository; quoted (22 lines) with
attribution as a test fixture for interoperability.
Kept as written: the head is Linear -> Dropout -> ReLU -> Linear in an nn.Sequential.
Sizes: emb_len -> 800, emb_dim 24, out_dim 32.
"""
import torch
from torch import nn

from tests.zoo._weights import perturb_torch, tokens

FRAMEWORK = "torch"
SOURCE = "https://github.com/cnzx05cnzx/news_cla/blob/HEAD/gru.py"
AUTHOR = "cnzx05cnzx"
LICENCE = "none stated (quoted with attribution)"
EXPECT = "convert"
WHY = None


class GRU(nn.Module):
    def __init__(self, emb_len, emb_dim, out_dim):
        super(GRU, self).__init__()
        self.embedding = nn.Embedding(emb_len, emb_dim)
        self.gru = nn.GRU(emb_dim, out_dim, batch_first=True, dropout=0.5, bidirectional=True, num_layers=2)
        self.linear = nn.Sequential(
            nn.Linear(2 * out_dim, 64),
            nn.Dropout(0.3),
            nn.ReLU(),
            nn.Linear(64, 5)
        )

    def forward(self, x):
        # 初始输入格式为(length, batch_size)
        out = self.embedding(x)
        # (length, batch_size, emb) -> (batch_size, length , emb )
        out, h = self.gru(out)
        out = torch.cat((h[-2, :, :], h[-1, :, :]), dim=1)
        out = self.linear(out)
        return out


def make(seed: int = 0):
    torch.manual_seed(0)
    model = perturb_torch(GRU(800, 24, 32))
    return model, tokens(seed, 8, 24, 800)
