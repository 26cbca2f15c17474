"""keras-io, "Working with RNNs" (the built-in RNN layers section): Embedding(1000, 64), LSTM(128), Dense(10).

Source: https://keras.io/guides/working_with_rnns/
(https://github.com/keras-team/keras-io/blob/master/guides/working_with_rnns.py).
Authors: Scott Zhu, Francois Chollet (keras-io).  Licence: Apache-2.0.
Kept as written, sizes included; the Sequential has no Input, so ``make()`` builds it by
calling it once, as ``fit`` would.
"""
from tests.zoo._weights import build_keras, perturb_keras, tokens

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
    # Add an Embedding layer expecting input vocab of size 1000, and
    # output embedding dimension of size 64.
    model.add(layers.Embedding(input_dim=1000, output_dim=64))

    # Add a LSTM layer with 128 internal units.
    model.add(layers.LSTM(128))

    # Add a Dense layer with 10 units.
    model.add(layers.Dense(10))

    x = tokens(seed, 8, 20, 1000)
    return perturb_keras(build_keras(model, x)), x
