"""Recurrent classifiers written by other people, as they wrote them: the converter's test set.

Each module here holds one model class (or Keras builder) copied from a public tutorial or
project, with its source URL, author and licence in the module docstring, and a ``make()``
that returns the model (weights seeded, then moved off their initial values as training
would: see :mod:`tests.zoo._weights`) and a realistic example input: token ids within the
vocabulary, or float sequences of the length the author used.  Only constructor arguments
(vocabulary size, widths) are shrunk, to keep the tests fast; every ``forward`` and every
Keras graph is the author's.

Module attributes:

* ``FRAMEWORK``: ``"torch"`` or ``"keras"``, the framework the author wrote it in;
* ``SOURCE``, ``AUTHOR``, ``LICENCE``: where the code comes from;
* ``EXPECT``: ``"convert"`` when every operation in it is one the issue (#21) lists as
  mappable, ``"refuse"`` when a correct converter has no exact counterpart to build, and
  ``"either"`` beyond the issue's list (exact conversion and a one-line refusal are both right);
* ``WHY``: for ``"refuse"`` and ``"either"``, what a correct converter may not be able to map;
* ``TIME_MAJOR`` (optional, default False): the torch forward reads ``(time, batch, ...)``;
* ``make(seed=0)``: ``(model, example_x)``; ``seed`` changes the example only, never the weights;
* ``held_out(x)`` (optional): a batch the converter never sees, where shuffling the example's
  tokens or steps (:func:`tests.zoo.harness.held_out`) would not give a valid input.

``ZOO`` lists the module names in a fixed order (torch first); :func:`load` imports one.
Keras models import keras inside ``make()``, so a caller still chooses ``KERAS_BACKEND`` first.
"""
from __future__ import annotations

import importlib

ZOO = [
    # PyTorch modules
    "yunjey_rnn", "yunjey_birnn", "d2l_birnn", "dive_into_dl_birnn", "bentrevett_simple_rnn",
    "morvan_rnn_classifier", "pytorch_char_rnn", "mudassir_sentiment_rnn", "christinasaidy_gru_mean",
    "weinan_lstm_maxpool", "cnzx_news_bigru", "schladt_lstm",
    "bentrevett_packed_lstm", "udacity_sagemaker_lstm", "marius_attention_lstm",
    # Keras models
    "kerasio_embedding_lstm", "kerasio_gru_simplernn", "kerasio_bidirectional_stack", "kerasio_mnist_lstm_bn",
    "kerasio_mnist_rnn_lstmcell", "kerasio_bidirectional_imdb", "keras_imdb_lstm", "dlwp_bidirectional_lstm",
    "keras_bidirectional_docstring", "keras_lstm_text_generation",
    "tf_text_classification_rnn", "tf_text_classification_stacked", "keras_gru_reset_before",
]


def load(name: str):
    """The zoo module ``name`` (one of :data:`ZOO`)."""
    if name not in ZOO:
        raise KeyError(f"no zoo model {name!r}; the zoo holds {', '.join(ZOO)}")
    return importlib.import_module(f"{__name__}.{name}")


def names(framework: str | None = None, expect: str | None = None) -> list[str]:
    """The zoo's names, optionally only one framework's or one expectation's."""
    return [name for name in ZOO
            if (framework is None or load(name).FRAMEWORK == framework)
            and (expect is None or load(name).EXPECT == expect)]
