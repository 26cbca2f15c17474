"""Keras 2's example ``imdb_lstm.py``: Embedding, LSTM(128) with dropout and recurrent_dropout, Dense(1, sigmoid).

Source: https://github.com/keras-team/keras/blob/2.3.1/examples/imdb_lstm.py
Author: the Keras team (Francois Chollet and contributors).  Licence: MIT (Keras 2.3's licence).
Kept as written (``from keras.layers import ...`` is Keras 3's ``keras.layers`` here); the
two dropouts act only in training, so inference is unchanged by them.
Sizes: max_features 20000 -> 1000, embedding and LSTM 128 -> 48; maxlen 80 -> 20.
"""
from tests.zoo._weights import build_keras, perturb_keras, tokens

FRAMEWORK = "keras"
SOURCE = "https://github.com/keras-team/keras/blob/2.3.1/examples/imdb_lstm.py"
AUTHOR = "the Keras team"
LICENCE = "MIT (Keras 2.3)"
EXPECT = "convert"
WHY = None

max_features = 1000
maxlen = 20  # cut texts after this number of words (among top max_features most common words)


def make(seed: int = 0):
    import keras
    from keras.layers import LSTM, Dense, Embedding
    from keras.models import Sequential
    keras.utils.set_random_seed(0)

    model = Sequential()
    model.add(Embedding(max_features, 48))
    model.add(LSTM(48, dropout=0.2, recurrent_dropout=0.2))
    model.add(Dense(1, activation='sigmoid'))

    x = tokens(seed, 8, maxlen, max_features)
    return perturb_keras(build_keras(model, x)), x
