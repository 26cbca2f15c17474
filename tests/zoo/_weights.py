"""Weights and inputs for the zoo: seeded, and moved off their initial values.

A freshly built model has zero biases, a BatchNormalization with mean 0 and variance 1 and,
in Keras, zero recurrent biases: a converter that drops a bias or a moving statistic would
still agree with it.  Training moves all of them, so :func:`perturb_torch` and
:func:`perturb_keras` add seeded noise of a trained model's size to every weight and buffer
(variances stay positive), and the example inputs come from :func:`tokens` and :func:`floats`.
"""
from __future__ import annotations

import numpy as np

WEIGHT_SEED = 1234  # the weights never depend on make()'s seed: only the example does


def perturb_torch(model, seed: int = WEIGHT_SEED, scale: float = 0.1):
    """Add N(0, scale²) to every parameter and floating buffer of ``model``; return it in eval mode."""
    import torch
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            if not tensor.is_floating_point():
                continue  # num_batches_tracked
            noise = torch.randn(tensor.shape, generator=generator) * scale
            if name.endswith("running_var"):
                tensor.copy_(tensor.abs() + noise.abs() + 0.5)  # a variance stays positive
            else:
                tensor.add_(noise)
    return model.eval()


def perturb_keras(model, seed: int = WEIGHT_SEED, scale: float = 0.1):
    """The same for a built Keras model: every weight, trainable or not (moving statistics)."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = np.asarray(weight.numpy(), dtype=np.float64)
        noise = rng.normal(0.0, scale, value.shape)
        if "moving_variance" in weight.path:
            value = np.abs(value) + np.abs(noise) + 0.5
        else:
            value = value + noise
        weight.assign(value.astype(weight.dtype))
    return model


def tokens(seed: int, batch: int, steps: int, vocab: int, padded: bool = False) -> np.ndarray:
    """``(batch, steps)`` int64 token ids in ``[1, vocab)``; ``padded``: each row ends in a run of
    zeros (the padding id) of a different length, as a padded batch of reviews does."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, size=(batch, steps), dtype=np.int64)
    if padded:
        for row, pad in enumerate(rng.integers(1, steps // 2, size=batch)):
            ids[row, steps - pad:] = 0
    return ids


def floats(seed: int, *shape: int) -> np.ndarray:
    """Float32 N(0, 1) values of ``shape``: standardised features, as the authors' pipelines give."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def one_hot(seed: int, steps: int, batch: int, letters: int) -> np.ndarray:
    """``(steps, batch, letters)`` one-hot float32 letters, time-major as a line tensor is."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, letters, size=(steps, batch))
    return np.eye(letters, dtype=np.float32)[index]


def build_keras(model, x):
    """Build a Sequential written without an Input (as the authors did) by calling it once on ``x``."""
    model(x[:2])
    return model
