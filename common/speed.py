"""Speed settings of the Keras version: one table of per-backend defaults, each overridable.

Every Keras run prints the settings it uses (``speed_line``), and each has a flag:
``--unroll/--no-unroll``, ``--jit-compile auto|true|false``, ``--steps-per-execution N``.
The model and the training code are the same on every backend; only these values differ.

| backend    | unroll | jit_compile            | steps_per_execution |
|------------|--------|------------------------|---------------------|
| torch      | True   | "auto" (eager)         | 1                   |
| jax        | False  | "auto" (XLA)           | 1                   |
| tensorflow | True   | "auto" (off on CPU)    | 1                   |

Why (measured side by side in ``benchmarks/RESULTS.md``, on the machine it names):

* ``unroll``: Keras runs a recurrent layer's 28 time steps in a loop (a Python loop that
  writes each output into a preallocated tensor on torch, ``tf.while_loop`` on
  TensorFlow, ``lax.scan`` on JAX).  Unrolled, it writes the 28 steps out as plain
  operations: faster on torch and TensorFlow, slower on JAX, where XLA compiles the
  ``scan`` better than 28 copies of the step.  The logits are the same to float32
  rounding (``tests/test_speed.py`` measures how close).
* ``jit_compile``: Keras's own ``"auto"``: XLA on JAX (its only fast mode), eager on
  torch (``torch.compile`` made it slower), and on TensorFlow XLA only with a GPU
  (on this CPU XLA was slower).
* ``steps_per_execution``: 1, so the NaN check after every step names the step;
  more steps per call gained nothing measurable, and the torch backend refuses it.
"""
from __future__ import annotations

import dataclasses
import os

from common.config import BACKENDS, check_choice
from common.errors import ConfigError

JIT_CHOICES = ("auto", "true", "false")


@dataclasses.dataclass(frozen=True)
class KerasSpeed:
    unroll: bool = False              # passed to every recurrent layer (build_model)
    jit_compile: bool | str = "auto"  # passed to model.compile (compile_model)
    steps_per_execution: int = 1      # passed to model.compile (compile_model)


KERAS_DEFAULTS = {
    "torch": KerasSpeed(unroll=True, jit_compile="auto", steps_per_execution=1),
    "jax": KerasSpeed(unroll=False, jit_compile="auto", steps_per_execution=1),
    "tensorflow": KerasSpeed(unroll=True, jit_compile="auto", steps_per_execution=1),
}
FLAGS = {"unroll": "--unroll/--no-unroll", "jit_compile": "--jit-compile",
         "steps_per_execution": "--steps-per-execution"}


def parse_jit_compile(value) -> bool | str:
    """``"auto"``, ``"true"``, ``"false"`` (or a bool) as Keras's ``jit_compile`` value."""
    if isinstance(value, bool):
        return value
    if value not in JIT_CHOICES:
        raise ConfigError(f"jit_compile must be one of {', '.join(JIT_CHOICES)}, got {value!r}")
    return {"auto": "auto", "true": True, "false": False}[value]


def keras_speed(backend: str, unroll: bool | None = None, jit_compile: bool | str | None = None,
                steps_per_execution: int | None = None) -> KerasSpeed:
    """The backend's defaults, with each setting given (not None) in their place."""
    default = KERAS_DEFAULTS[check_choice("backend", backend, BACKENDS)]
    speed = KerasSpeed(
        unroll=default.unroll if unroll is None else bool(unroll),
        jit_compile=default.jit_compile if jit_compile is None else parse_jit_compile(jit_compile),
        steps_per_execution=default.steps_per_execution if steps_per_execution is None else steps_per_execution,
    )
    if speed.steps_per_execution != 1 and backend == "torch":
        raise ConfigError(f"--steps-per-execution {speed.steps_per_execution}: Keras runs one step per call on "
                          "the torch backend; leave it at 1 there")
    return speed


def speed_of(backend: str, config) -> KerasSpeed:
    """The settings a run of ``config`` (a RunConfig) uses on ``backend``."""
    return keras_speed(backend, config.unroll, config.jit_compile, config.steps_per_execution)


def speed_line(backend: str, speed: KerasSpeed, resolved_jit_compile: bool | None = None) -> str:
    """The line every Keras run prints: the settings, which of them differ from the backend's
    defaults, and the flags that change them."""
    default = KERAS_DEFAULTS[backend]
    parts = []
    for field in dataclasses.fields(KerasSpeed):
        value = getattr(speed, field.name)
        text = f"{field.name}={value}"
        if field.name == "jit_compile" and value == "auto" and resolved_jit_compile is not None:
            text += f" (XLA {'on' if resolved_jit_compile else 'off'})"
        if value != getattr(default, field.name):
            text += f" [{FLAGS[field.name]}; the {backend} default is {getattr(default, field.name)}]"
        parts.append(text)
    return f"speed settings (Keras, {backend} backend): {', '.join(parts)}"


def help_text(field: str) -> str:
    """The per-backend defaults of one setting, for ``--help``."""
    return ", ".join(f"{backend}: {getattr(KERAS_DEFAULTS[backend], field)}" for backend in BACKENDS)


def torch_speed_line(device_type: str, threads: int) -> str:
    """The line the PyTorch run prints in the same place: its one setting, the CPU threads."""
    if device_type != "cpu":
        return f"speed settings (PyTorch): device {device_type}"
    return (f"speed settings (PyTorch): torch threads={threads} "
            f"({'OMP_NUM_THREADS' if 'OMP_NUM_THREADS' in os.environ else 'one thread on CPU unless OMP_NUM_THREADS says otherwise'})")
