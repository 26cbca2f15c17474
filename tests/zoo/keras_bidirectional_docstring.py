"""Keras 2's ``Bidirectional`` docstring example: two Bidirectional(LSTM(10)), Dense(5), ``Activation('softmax')``.

Source: https://github.com/keras-team/keras/blob/2.3.1/keras/layers/wrappers.py (class Bidirectional, "Examples").
Author: the Keras team.  Licence: MIT (Keras 2.3's licence).
Kept as written: ``input_shape=(5, 10)`` and a separate ``Activation('softmax')`` layer (the
issue's refused example).
"""
from tests.zoo._weights import floats, perturb_keras

FRAMEWORK = "keras"
SOURCE = "https://github.com/keras-team/keras/blob/2.3.1/keras/layers/wrappers.py"
AUTHOR = "the Keras team"
LICENCE = "MIT (Keras 2.3)"
EXPECT = "convert"
WHY = None


def make(seed: int = 0):
    import keras
    from keras.layers import LSTM, Activation, Bidirectional, Dense
    from keras.models import Sequential
    keras.utils.set_random_seed(0)

    model = Sequential()
    model.add(Bidirectional(LSTM(10, return_sequences=True),
                            input_shape=(5, 10)))
    model.add(Bidirectional(LSTM(10)))
    model.add(Dense(5))
    model.add(Activation('softmax'))

    return perturb_keras(model), floats(seed, 8, 5, 10)
