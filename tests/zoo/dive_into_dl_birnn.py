"""Dive-into-DL-PyTorch (the PyTorch port of the book's first edition), 10.7 "Text sentiment classification with RNNs".

Source: https://github.com/ShusenTang/Dive-into-DL-PyTorch/blob/HEAD/code/chapter10_natural-language-processing/10.7_sentiment-analysis-rnn.ipynb
Author: Shusen Tang and contributors.  Licence: Apache-2.0.
Kept as written: ``inputs.permute(1, 0)`` to time-major, ``torch.cat((outputs[0], outputs[-1]), -1)``,
the vocabulary passed as an object whose ``len`` is the vocabulary size.
Sizes: vocabulary -> 400 tokens, embedding 100 -> 24, hiddens 100 -> 24 (2 layers, as the book).
"""
import torch
from torch import nn

from tests.zoo._weights import perturb_torch, tokens

FRAMEWORK = "torch"
SOURCE = "https://github.com/ShusenTang/Dive-into-DL-PyTorch/blob/HEAD/code/chapter10_natural-language-processing/10.7_sentiment-analysis-rnn.ipynb"
AUTHOR = "Shusen Tang, Dive-into-DL-PyTorch"
LICENCE = "Apache-2.0"
EXPECT = "convert"
WHY = None


class BiRNN(nn.Module):
    def __init__(self, vocab, embed_size, num_hiddens, num_layers):
        super(BiRNN, self).__init__()
        self.embedding = nn.Embedding(len(vocab), embed_size)
        # bidirectional设为True即得到双向循环神经网络
        self.encoder = nn.LSTM(input_size=embed_size,
                                hidden_size=num_hiddens,
                                num_layers=num_layers,
                                bidirectional=True)
        # 初始时间步和最终时间步的隐藏状态作为全连接层输入
        self.decoder = nn.Linear(4*num_hiddens, 2)

    def forward(self, inputs):
        # inputs的形状是(批量大小, 词数)，因为LSTM需要将序列长度(seq_len)作为第一维，所以将输入转置后
        # 再提取词特征，输出形状为(词数, 批量大小, 词向量维度)
        embeddings = self.embedding(inputs.permute(1, 0))
        # rnn.LSTM只传入输入embeddings，因此只返回最后一层的隐藏层在各时间步的隐藏状态。
        # outputs形状是(词数, 批量大小, 2 * 隐藏单元个数)
        outputs, _ = self.encoder(embeddings) # output, (h, c)
        # 连结初始时间步和最终时间步的隐藏状态作为全连接层输入。它的形状为
        # (批量大小, 4 * 隐藏单元个数)。
        encoding = torch.cat((outputs[0], outputs[-1]), -1)
        outs = self.decoder(encoding)
        return outs


def make(seed: int = 0):
    torch.manual_seed(0)
    vocab = [f"token{i}" for i in range(400)]  # the book passes a torchtext Vocab; only len() is used
    model = perturb_torch(BiRNN(vocab, 24, 24, 2))
    return model, tokens(seed, 8, 20, 400)
