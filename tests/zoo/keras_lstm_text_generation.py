"""Keras 2's example ``lstm_text_generation.py``: LSTM(128) over one-hot characters, Dense(len(chars), softmax).

Source: https://github.com/keras-team/keras/blob/2.3.1/examples/lstm_text_generation.py
Author: the Keras team.  Licence: MIT (Keras 2.3's licence).
Kept as written: a next-character classifier, ``input_shape=(maxlen, len(chars))``.
Sizes: maxlen 40 -> 20 characters, an alphabet of 40 characters (Nietzsche's text has 57).
"""
import numpy as np

from tests.zoo._weights import perturb_keras

FRAMEWORK = "keras"
SOURCE = "https://github.com/keras-team/keras/blob/2.3.1/examples/lstm_text_generation.py"
AUTHOR = "the Keras team"
LICENCE = "MIT (Keras 2.3)"
EXPECT = "convert"
WHY = None

maxlen = 20
chars = [chr(ord(" ") + i) for i in range(40)]


def make(seed: int = 0):
    import keras
    from keras.layers import LSTM, Dense
    from keras.models import Sequential
    keras.utils.set_random_seed(0)

    # build the model: a single LSTM
    model = Sequential()
    model.add(LSTM(128, input_shape=(maxlen, len(chars))))
    model.add(Dense(len(chars), activation='softmax'))

    # the example's x: one-hot sentences of maxlen characters (bool there, float32 here)
    index = np.random.default_rng(seed).integers(0, len(chars), size=(8, maxlen))
    x = np.eye(len(chars), dtype=np.float32)[index]
    return perturb_keras(model), x
