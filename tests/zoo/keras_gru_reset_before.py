"""keras-io's "Working with RNNs" GRU(256) -> SimpleRNN(128) model with ``reset_after=False``.  A refusal.

Source: https://keras.io/guides/working_with_rnns/ (Authors: Scott Zhu, Francois Chollet; Apache-2.0),
with one argument added by us: ``reset_after=False``, the default of Keras before 2.3 (and of
tf.keras 1.x), so every GRU saved by those versions has it.  That GRU applies the reset gate
before the recurrent matrix; torch's nn.GRU applies it after, so no torch GRU computes it and
a correct converter refuses in one line.
Sizes: embedding 64 -> 16, GRU 256 -> 32, SimpleRNN 128 -> 16 (it runs in make test on every backend).
"""
from tests.zoo._weights import build_keras, perturb_keras, tokens

FRAMEWORK = "keras"
SOURCE = "https://keras.io/guides/working_with_rnns/ (with reset_after=False, Keras 2.2's default)"
AUTHOR = "Scott Zhu, Francois Chollet: keras-io (reset_after=False added by us)"
LICENCE = "Apache-2.0"
EXPECT = "refuse"
WHY = "GRU(reset_after=False): the reset gate comes before the recurrent matrix; torch's GRU has no such cell"


def make(seed: int = 0):
    import keras
    from keras import layers
    keras.utils.set_random_seed(0)

    model = keras.Sequential()
    model.add(layers.Embedding(input_dim=1000, output_dim=16))
    model.add(layers.GRU(32, return_sequences=True, reset_after=False))
    model.add(layers.SimpleRNN(16))
    model.add(layers.Dense(10))

    x = tokens(seed, 8, 16, 1000)
    return perturb_keras(build_keras(model, x)), x
