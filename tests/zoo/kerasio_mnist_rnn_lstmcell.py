"""keras-io, "Working with RNNs": the same MNIST model built as ``RNN(LSTMCell(64))`` (``allow_cudnn_kernel=False``).

Source: https://keras.io/guides/working_with_rnns/
(https://github.com/keras-team/keras-io/blob/master/guides/working_with_rnns.py), ``build_model(allow_cudnn_kernel=False)``.
Authors: Scott Zhu, Francois Chollet (keras-io).  Licence: Apache-2.0.
The author's ``build_model`` is the one in :mod:`tests.zoo.kerasio_mnist_lstm_bn`.
"""
from tests.zoo._weights import floats, perturb_keras
from tests.zoo.kerasio_mnist_lstm_bn import build_model, input_dim

FRAMEWORK = "keras"
SOURCE = "https://keras.io/guides/working_with_rnns/"
AUTHOR = "Scott Zhu, Francois Chollet: keras-io"
LICENCE = "Apache-2.0"
EXPECT = "convert"
WHY = None


def make(seed: int = 0):
    import keras
    keras.utils.set_random_seed(0)
    return perturb_keras(build_model(allow_cudnn_kernel=False)), floats(seed, 8, 28, input_dim)
