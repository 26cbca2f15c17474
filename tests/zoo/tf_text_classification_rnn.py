"""TensorFlow's "Text classification with an RNN": Embedding(mask_zero=True), Bidirectional(LSTM(64)), Dense(64, relu), Dense(1).  A refusal.

Source: https://www.tensorflow.org/text/tutorials/text_classification_rnn
(https://github.com/tensorflow/text/blob/master/docs/tutorials/text_classification_rnn.ipynb).
Author: the TensorFlow authors.  Licence: Apache-2.0.
Kept as written from the Embedding on: the tutorial's first layer, a TextVectorization that
turns strings into ids, is preprocessing with no torch counterpart and is left out (the
model here takes the ids it produces); ``tf.keras.layers`` is written ``keras.layers``.
``mask_zero=True`` makes the LSTMs skip padding: the backward direction starts at each
review's last real token.  A plain torch forward cannot, so a correct converter refuses
(or matches the masked outputs exactly on padded input, which the test checks).
Sizes: the tutorial's (VOCAB_SIZE 1000, 64 everywhere).
"""
from tests.zoo._weights import build_keras, perturb_keras, tokens

FRAMEWORK = "keras"
SOURCE = "https://www.tensorflow.org/text/tutorials/text_classification_rnn"
AUTHOR = "The TensorFlow Authors"
LICENCE = "Apache-2.0"
EXPECT = "refuse"
WHY = "mask_zero=True: the layers skip padding tokens, which a fixed torch graph does not"

VOCAB_SIZE = 1000


def make(seed: int = 0):
    import keras
    keras.utils.set_random_seed(0)

    model = keras.Sequential([
        keras.layers.Embedding(
            input_dim=VOCAB_SIZE,
            output_dim=64,
            # Use masking to handle the variable sequence lengths
            mask_zero=True),
        keras.layers.Bidirectional(keras.layers.LSTM(64)),
        keras.layers.Dense(64, activation='relu'),
        keras.layers.Dense(1)
    ])

    x = tokens(seed, 8, 24, VOCAB_SIZE, padded=True)  # a padded batch of reviews
    return perturb_keras(build_keras(model, x)), x
