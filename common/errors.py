"""Errors a user can cause, each carrying a one-line message that says how to fix it.

The command-line entry points catch :class:`UserError` and print its message on
one line, without a traceback.  Library callers catch the specific subclasses.
"""


class UserError(Exception):
    """Base class: bad input, missing data or a run that cannot continue."""


class DataError(UserError):
    """The dataset is missing, corrupt or of the wrong shape."""


class ConfigError(UserError, ValueError):
    """A setting is out of range or unknown (cell, backend, sizes, ...)."""


class ShapeError(UserError, ValueError):
    """A model was fed an input that is not (batch, time, features)."""


class CheckpointError(UserError):
    """A checkpoint is missing, unreadable or belongs to another architecture."""


class OutputError(UserError):
    """The output folder cannot take the run: in use by another run, full, or not writable."""


class ConversionError(UserError, ValueError):
    """Weights cannot be copied between two models that do not match."""


class NonFiniteLossError(UserError):
    """The training loss became NaN or Inf; ``checkpoint`` is the last good one, if any."""

    def __init__(self, epoch: int, step: int, value: float, checkpoint=None):
        super().__init__(epoch, step, value)
        self.epoch, self.step, self.value, self.checkpoint = epoch, step, value, checkpoint

    def __str__(self) -> str:
        kept = (f"the last good checkpoint is {self.checkpoint}" if self.checkpoint
                else "no epoch had completed, so there is no checkpoint")
        return (f"training stopped: the loss became {self.value} at epoch {self.epoch}, step {self.step}; "
                f"{kept} (try a lower --learning-rate)")


def check_sequence_shape(shape, input_size: int, time_steps: int | None = None) -> None:
    """Raise :class:`ShapeError` unless ``shape`` is (batch, time, input_size).

    ``time_steps`` also fixes the time dimension, for a model declared with a fixed length (Keras).
    """
    shape = tuple(shape)
    if len(shape) != 3 or shape[2] != input_size or (time_steps is not None and shape[1] != time_steps):
        steps = f"{time_steps} time steps and " if time_steps is not None else ""
        raise ShapeError(
            f"the model expects input of shape (batch, time, features) with {steps}{input_size} "
            f"features, got {shape}; Fashion-MNIST images of shape (N, 28, 28) are already "
            "(batch, time=rows, features=columns)"
        )
