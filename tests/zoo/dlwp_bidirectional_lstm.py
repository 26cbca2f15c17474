"""Deep Learning with Python (2nd ed.), chapter 11: Embedding, Bidirectional(LSTM(32)), Dropout(0.5), Dense(1, sigmoid).

Source: https://github.com/fchollet/deep-learning-with-python-notebooks/blob/master/chapter11_part02_sequence-models.ipynb
("Instantiating a model that uses an Embedding layer from scratch").
Author: Francois Chollet.  Licence: MIT.
Kept as written: a functional model on ``Input(shape=(None,), dtype="int64")``.
Sizes: max_tokens 20000 -> 1000, embedding 256 -> 32; reviews of 28 tokens (max_length 600 in the book).
"""
from tests.zoo._weights import perturb_keras, tokens

FRAMEWORK = "keras"
SOURCE = "https://github.com/fchollet/deep-learning-with-python-notebooks/blob/master/chapter11_part02_sequence-models.ipynb"
AUTHOR = "Francois Chollet: Deep Learning with Python, 2nd edition"
LICENCE = "MIT"
EXPECT = "convert"
WHY = None

max_tokens = 1000


def make(seed: int = 0):
    import keras
    from keras import layers
    keras.utils.set_random_seed(0)

    inputs = keras.Input(shape=(None,), dtype="int64")
    embedded = layers.Embedding(input_dim=max_tokens, output_dim=32)(inputs)
    x = layers.Bidirectional(layers.LSTM(32))(embedded)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)

    return perturb_keras(model), tokens(seed, 8, 28, max_tokens)
