"""Train a PyTorch model and its Keras twin step by step on the same batches and measure drift.

Starting from transferred weights (:func:`parity.weights.torch_to_keras`), the two
models stay equal to float rounding only if two differences are removed first:

1. **Biases.**  torch's ``nn.RNN``/``nn.LSTM`` keep ``bias_ih`` and ``bias_hh``;
   Keras keeps their sum.  Both torch biases get the same gradient, so one
   optimizer step moves the sum twice as far as Keras moves its single bias
   (SGD: ``-2 lr g`` vs ``-lr g``; Adam: two equal steps vs one).
   :func:`align_torch_for_lockstep` folds ``bias_hh`` into ``bias_ih`` and
   freezes ``bias_hh`` at zero.  GRU needs nothing: Keras ``GRU(reset_after=True)``
   keeps both biases, like torch.

2. **Adam's epsilon.**  With ``b1t = 1 - beta_1**t`` and ``b2t = 1 - beta_2**t``:

   * torch:  ``p -= lr / b1t * m / (sqrt(v) / sqrt(b2t) + eps_torch)``
   * keras:  ``p -= lr * sqrt(b2t) / b1t * m / (sqrt(v) + eps_keras)``
     ``      = lr / b1t * m / (sqrt(v) / sqrt(b2t) + eps_keras / sqrt(b2t))``

   They agree at step ``t`` iff ``eps_torch = eps_keras / sqrt(1 - beta_2**t)``.
   No constant pair does that: with beta_2 = 0.999 Keras's default 1e-7 acts like
   a torch epsilon of 3.16e-6 at step 1, 1e-6 at step 10 and tends to 1e-7 only
   after thousands of steps, while torch's default is 1e-8 (and torch's 1e-8
   equals a Keras epsilon of 3.16e-10 at step 1).  Two exact equivalents:

   * :func:`keras_adam_like_torch` -- a Keras optimizer (:class:`TorchAdam`) that
     evaluates torch's formula, to pair with a stock ``torch.optim.Adam``;
   * :func:`torch_adam_like_keras` -- a stock ``torch.optim.Adam`` whose
     ``eps`` a step pre-hook resets to ``eps_keras / sqrt(1 - beta_2**t)`` before
     every step, to pair with a stock ``keras.optimizers.Adam``.

   Both agree with their partner up to float32 rounding (torch evaluates the
   bias corrections in float64 Python scalars, Keras in float32 tensors).

Keras gradients come from each backend's own autodiff (``jax.grad`` over
``model.stateless_call``, ``tf.GradientTape``, ``torch.autograd``); Keras
training steps go through ``model.train_on_batch``, the code path of ``fit``.

Import this module only after ``KERAS_BACKEND`` is set: it imports Keras.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import keras
import numpy as np
import torch
from keras import ops
from torch import nn

from parity.weights import torch_to_keras_arrays

__all__ = [
    "align_torch_for_lockstep", "TorchAdam", "keras_adam_like_torch", "torch_adam_like_keras",
    "keras_loss", "compile_for_lockstep", "keras_gradients", "keras_train_step", "torch_train_step",
    "param_drift", "run_lockstep",
]


def align_torch_for_lockstep(torch_model: nn.Module) -> list[str]:
    """Fold ``bias_hh`` into ``bias_ih`` and freeze ``bias_hh`` at zero, for every nn.RNN/nn.LSTM.

    The function of the model is unchanged up to one float rounding per bias
    element (``bias_ih + bias_hh`` is rounded once, exactly as
    :func:`parity.weights.torch_to_keras` rounds it).  Returns the names of the
    frozen parameters.  GRU modules are left alone: their ``bias_hh`` (the ``n``
    gate part) sits inside ``r * (W_hn h + b_hn)`` and cannot be folded, and Keras
    keeps it too.
    """
    frozen = []
    with torch.no_grad():
        for module_name, module in torch_model.named_modules():
            if not isinstance(module, (nn.RNN, nn.LSTM)) or not module.bias:
                continue
            for name, param in module.named_parameters(recurse=False):
                if not name.startswith("bias_hh"):
                    continue
                bias_ih = getattr(module, name.replace("bias_hh", "bias_ih"))
                bias_ih.add_(param)
                param.zero_()
                param.requires_grad_(False)
                frozen.append(f"{module_name}.{name}" if module_name else name)
    return frozen


@keras.saving.register_keras_serializable(package="parity")
class TorchAdam(keras.optimizers.Optimizer):
    """Adam evaluated as ``torch.optim.Adam`` does (defaults: ``amsgrad=False``, no weight decay).

    ``p -= lr / (1 - beta_1**t) * m / (sqrt(v) / sqrt(1 - beta_2**t) + epsilon)``,
    so ``epsilon`` means what torch's ``eps`` means.  Moment updates are those of
    both libraries: ``m += (1 - beta_1) (g - m)``, ``v += (1 - beta_2) (g^2 - v)``.
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, name="torch_adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        correction_1 = 1 - ops.power(ops.cast(self.beta_1, dtype), step)
        correction_2 = 1 - ops.power(ops.cast(self.beta_2, dtype), step)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        denom = ops.add(ops.divide(ops.sqrt(v), ops.sqrt(correction_2)), self.epsilon)
        self.assign_sub(variable, ops.divide(ops.multiply(m, lr / correction_1), denom))

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config


def keras_adam_like_torch(learning_rate: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999,
                          epsilon: float = 1e-8) -> TorchAdam:
    """A Keras optimizer that takes the steps ``torch.optim.Adam(lr, (beta_1, beta_2), eps=epsilon)`` takes."""
    return TorchAdam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)


def torch_adam_like_keras(params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                          eps: float = 1e-7) -> torch.optim.Adam:
    """A ``torch.optim.Adam`` that takes the steps ``keras.optimizers.Adam(lr, *betas, epsilon=eps)`` takes.

    Before step ``t`` (1-based) a pre-hook sets each group's ``eps`` to
    ``eps / sqrt(1 - beta_2**t)``; see the module docstring for the algebra.
    """
    optimizer = torch.optim.Adam(params, lr=lr, betas=betas, eps=eps)
    steps = [0]

    def set_eps(opt, args, kwargs):
        steps[0] += 1
        for group in opt.param_groups:
            group["eps"] = eps / math.sqrt(1 - group["betas"][1] ** steps[0])

    optimizer.register_step_pre_hook(set_eps)
    return optimizer


def keras_loss() -> keras.losses.Loss:
    """torch's ``CrossEntropyLoss()`` on logits: the mean over the batch."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def compile_for_lockstep(model: keras.Model, optimizer, jit_compile="auto") -> keras.Model:
    model.compile(optimizer=optimizer, loss=keras_loss(), jit_compile=jit_compile)
    return model


def keras_gradients(model: keras.Model, x: np.ndarray, y: np.ndarray, training: bool = True) -> dict[str, np.ndarray]:
    """d(mean cross-entropy)/d(weight) for every trainable Keras variable, keyed by variable path.

    Uses the running backend's own autodiff, the one ``fit`` uses; ``training=False``
    runs the model in inference mode (no dropout), as ``parity.check_equivalent`` does.
    """
    backend = keras.backend.backend()
    loss_fn = keras_loss()
    variables = model.trainable_variables
    if backend == "jax":
        import jax
        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss_of(trainable):
            logits, _ = model.stateless_call(trainable, non_trainable, x, training=training)
            return loss_fn(y, logits)

        # Compiled as a whole, as the trainer does; eager jax would compile every recurrent loop separately.
        grads = jax.jit(jax.grad(loss_of))([v.value for v in variables])
    elif backend == "tensorflow":
        import tensorflow as tf
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=training))
        grads = tape.gradient(loss, variables)
    elif backend == "torch":
        loss = loss_fn(y, model(x, training=training))
        grads = torch.autograd.grad(loss, [v.value for v in variables])
    else:
        raise NotImplementedError(f"keras_gradients has no implementation for the {backend!r} backend")
    return {v.path: ops.convert_to_numpy(g) for v, g in zip(variables, grads, strict=True)}


def keras_train_step(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    """One optimizer step of a compiled model; returns the loss before the step."""
    return float(model.train_on_batch(x, y))


def torch_train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: np.ndarray, y: np.ndarray) -> float:
    """One optimizer step with ``CrossEntropyLoss``; returns the loss before the step."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(np.asarray(y, np.int64)))
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def param_drift(torch_model: nn.Module, keras_model: keras.Model) -> float:
    """Largest |difference| between the two models' parameters, compared in Keras's layout.

    torch's two RNN/LSTM biases are compared through their sum, the only form in
    which the function uses them, so an unaligned model is measured fairly.
    """
    mapped = torch_to_keras_arrays(torch_model, keras_model)
    current = {v.path: np.asarray(v.numpy()) for v in keras_model.weights}
    return max(float(np.max(np.abs(mapped[path] - current[path]))) for path in mapped)


def run_lockstep(torch_model: nn.Module, torch_optimizer: torch.optim.Optimizer, keras_model: keras.Model,
                 keras_optimizer, batches: Iterable[tuple[np.ndarray, np.ndarray]], jit_compile="auto") -> list[dict]:
    """Train both models on the same batches, one step each in turn; record losses and drift per step.

    The models should start equal (e.g. ``align_torch_for_lockstep`` then
    ``torch_to_keras``).  ``keras_model`` is compiled here with ``keras_optimizer``.
    """
    compile_for_lockstep(keras_model, keras_optimizer, jit_compile)
    history = []
    for step, (x, y) in enumerate(batches, start=1):
        torch_loss = torch_train_step(torch_model, torch_optimizer, x, y)
        keras_loss_value = keras_train_step(keras_model, x, y)
        history.append({"step": step, "torch_loss": torch_loss, "keras_loss": keras_loss_value,
                        "drift": param_drift(torch_model, keras_model)})
    return history
