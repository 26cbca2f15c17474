"""keras-io, "Working with RNNs" (outputs and states): Embedding, GRU(256) returning sequences, SimpleRNN(128), Dense(10).

Source: https://keras.io/guides/working_with_rnns/
(https://github.com/keras-team/keras-io/blob/master/guides/working_with_rnns.py).
Authors: Scott Zhu, Francois Chollet (keras-io).  Licence: Apache-2.0.
Kept as written: two different cells of different widths stacked (the issue's refused example).
Sizes: the author's.
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
    model.add(layers.Embedding(input_dim=1000, output_dim=64))

    # The output of GRU will be a 3D tensor of shape (batch_size, timesteps, 256)
    model.add(layers.GRU(256, return_sequences=True))

    # The output of SimpleRNN will be a 2D tensor of shape (batch_size, 128)
    model.add(layers.SimpleRNN(128))

    model.add(layers.Dense(10))

    x = tokens(seed, 8, 16, 1000)
    return perturb_keras(build_keras(model, x)), x
