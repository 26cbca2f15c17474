"""The notebook's stacked RNN ported to Keras 3; runs on the torch, JAX and TensorFlow backends.

Run it with ``python -m keras_version train --backend jax --help``.  Choose the
backend before keras is imported: Keras reads ``KERAS_BACKEND`` once.
"""
