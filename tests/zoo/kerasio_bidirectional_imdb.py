"""keras-io example "Bidirectional LSTM on IMDB": Embedding, two Bidirectional(LSTM(64)), Dense(1, sigmoid).

Source: https://keras.io/examples/nlp/bidirectional_lstm_imdb/
(https://github.com/keras-team/keras-io/blob/master/examples/nlp/bidirectional_lstm_imdb.py).
Author: fchollet (keras-io).  Licence: Apache-2.0.
Kept as written: a functional model on ``Input(shape=(None,), dtype="int32")``.
Sizes: max_features 20000 -> 1000, embedding 128 -> 32, LSTM 64 -> 24; reviews of 24 tokens.
"""
from tests.zoo._weights import perturb_keras, tokens

FRAMEWORK = "keras"
SOURCE = "https://keras.io/examples/nlp/bidirectional_lstm_imdb/"
AUTHOR = "fchollet: keras-io"
LICENCE = "Apache-2.0"
EXPECT = "convert"
WHY = None

max_features = 1000  # Only consider the top 20k words (shrunk)


def make(seed: int = 0):
    import keras
    from keras import layers
    keras.utils.set_random_seed(0)

    # Input for variable-length sequences of integers
    inputs = keras.Input(shape=(None,), dtype="int32")
    # Embed each integer in a 128-dimensional vector
    x = layers.Embedding(max_features, 32)(inputs)
    # Add 2 bidirectional LSTMs
    x = layers.Bidirectional(layers.LSTM(24, return_sequences=True))(x)
    x = layers.Bidirectional(layers.LSTM(24))(x)
    # Add a classifier
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)

    return perturb_keras(model), tokens(seed, 8, 24, max_features)
