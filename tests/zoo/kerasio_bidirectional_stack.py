"""keras-io, "Working with RNNs" (bidirectional RNNs): Bidirectional(LSTM(64)) then Bidirectional(LSTM(32)), Dense(10).

Source: https://keras.io/guides/working_with_rnns/
(https://github.com/keras-team/keras-io/blob/master/guides/working_with_rnns.py).
Authors: Scott Zhu, Francois Chollet (keras-io).  Licence: Apache-2.0.
Kept as written: ``input_shape=(5, 10)`` on the first layer (5 steps of 10 features), two
bidirectional layers of unequal widths (the issue's refused example).
"""
from tests.zoo._weights import floats, perturb_keras

FRAMEWORK = "keras"
SOURCE = "https://keras.io/guides/working_with_rnns/"
AUTHOR = "Scott Zhu, Francois Chollet: keras-io"
LICENCE = "Apache-2.0"
EXPECT = "convert"
WHY = None


def make(seed: int = 0):
    import keras
    from keras import layers
    keras.utils.set_random_seed(0)

    model = keras.Sequential()

    model.add(
        layers.Bidirectional(layers.LSTM(64, return_sequences=True), input_shape=(5, 10))
    )
    model.add(layers.Bidirectional(layers.LSTM(32)))
    model.add(layers.Dense(10))

    return perturb_keras(model), floats(seed, 8, 5, 10)
