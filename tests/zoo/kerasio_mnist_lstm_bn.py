"""keras-io, "Working with RNNs" (performance and CuDNN kernels): LSTM(64) over MNIST rows, BatchNormalization, Dense(10).

Source: https://keras.io/guides/working_with_rnns/
(https://github.com/keras-team/keras-io/blob/master/guides/working_with_rnns.py), ``build_model(allow_cudnn_kernel=True)``.
Authors: Scott Zhu, Francois Chollet (keras-io).  Licence: Apache-2.0.
Kept as written: ``input_shape=(None, input_dim)`` (any number of steps), a BatchNormalization
head whose moving statistics ``make()`` moves off 0 and 1 as training would.
"""
from tests.zoo._weights import floats, perturb_keras

FRAMEWORK = "keras"
SOURCE = "https://keras.io/guides/working_with_rnns/"
AUTHOR = "Scott Zhu, Francois Chollet: keras-io"
LICENCE = "Apache-2.0"
EXPECT = "convert"
WHY = None

batch_size = 64
# Each MNIST image batch is a tensor of shape (batch_size, 28, 28).
# Each input sequence will be of size (28, 28) (height is treated like time).
input_dim = 28

units = 64
output_size = 10  # labels are from 0 to 9


def build_model(allow_cudnn_kernel=True):
    import keras
    # CuDNN is only available at the layer level, and not at the cell level.
    # This means `LSTM(units)` will use the CuDNN kernel,
    # while RNN(LSTMCell(units)) will run on non-CuDNN kernel.
    if allow_cudnn_kernel:
        # The LSTM layer with default options uses CuDNN.
        lstm_layer = keras.layers.LSTM(units, input_shape=(None, input_dim))
    else:
        # Wrapping a LSTMCell in a RNN layer will not use CuDNN.
        lstm_layer = keras.layers.RNN(
            keras.layers.LSTMCell(units), input_shape=(None, input_dim)
        )
    model = keras.models.Sequential(
        [
            lstm_layer,
            keras.layers.BatchNormalization(),
            keras.layers.Dense(output_size),
        ]
    )
    return model


def make(seed: int = 0):
    import keras
    keras.utils.set_random_seed(0)
    return perturb_keras(build_model(allow_cudnn_kernel=True)), floats(seed, 8, 28, input_dim)
