"""TensorFlow's "Text classification with an RNN", the stacked model: two Bidirectional LSTMs (64, 32), Dense(64, relu), Dropout, Dense(1).  A refusal.

Source: https://www.tensorflow.org/text/tutorials/text_classification_rnn ("Stack two or more LSTM layers").
Author: the TensorFlow authors.  Licence: Apache-2.0.
As :mod:`tests.zoo.tf_text_classification_rnn`: the TextVectorization is left out,
``tf.keras.layers`` is ``keras.layers``, and ``mask_zero=True`` has no plain torch counterpart.
Sizes: the tutorial's.
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
        keras.layers.Embedding(VOCAB_SIZE, 64, mask_zero=True),
        keras.layers.Bidirectional(keras.layers.LSTM(64,  return_sequences=True)),
        keras.layers.Bidirectional(keras.layers.LSTM(32)),
        keras.layers.Dense(64, activation='relu'),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(1)
    ])

    x = tokens(seed, 8, 24, VOCAB_SIZE, padded=True)
    return perturb_keras(build_keras(model, x)), x
