"""A fake-news project on GitHub: a bidirectional LSTM pooled by learned attention weights.

Source: https://github.com/Marius-Suteu/Suteu-Marius-Master-IA-An1-NLP/blob/HEAD/ProiectFinal_NLP/model_lstm.py
Author: Marius Suteu (GitHub).  Licence: none stated in the repository; quoted (24 lines) with
attribution as a test fixture for interoperability.
Kept as written: a Linear scores every time step, a softmax over time turns the scores into
weights, and the weighted sum of the outputs feeds the classifier.  Attention pooling is not
among the readouts the issue lists, but every op in it (Linear, softmax, product, sum over
time) is: a correct converter either maps it exactly or refuses it in one line.
Sizes: vocabulary -> 600, embedding 100 -> 24, hidden 128 -> 32.
"""
import torch
import torch.nn as nn

from tests.zoo._weights import perturb_torch, tokens

FRAMEWORK = "torch"
SOURCE = "https://github.com/Marius-Suteu/Suteu-Marius-Master-IA-An1-NLP/blob/HEAD/ProiectFinal_NLP/model_lstm.py"
AUTHOR = "Marius Suteu"
LICENCE = "none stated (quoted with attribution)"
EXPECT = "either"
WHY = "attention pooling: softmax over time of a learned score, then a weighted sum of the outputs"


class Attention(nn.Module):
    def __init__(self, hidden_dim):
        super().__init__()
        self.att = nn.Linear(hidden_dim*2, 1)

    def forward(self, outputs):
        weights = torch.softmax(self.att(outputs), dim=1)
        return torch.sum(weights * outputs, dim=1)

class LSTMClassifier(nn.Module):
    def __init__(self, vocab_size, embed_dim=100, hidden_dim=128, num_classes=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, bidirectional=True, batch_first=True)
        self.attention = Attention(hidden_dim)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(hidden_dim*2, num_classes)

    def forward(self, x):
        x = self.embedding(x)
        lstm_out, _ = self.lstm(x)
        att_out = self.attention(lstm_out)
        return self.fc(self.dropout(att_out))


def make(seed: int = 0):
    torch.manual_seed(0)
    model = perturb_torch(LSTMClassifier(600, 24, 32))
    return model, tokens(seed, 8, 20, 600)
