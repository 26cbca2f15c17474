"""Framework-neutral code shared by ``torch_version`` and ``keras_version``.

Nothing in this package imports torch, keras, jax or tensorflow at module
level: data loading, splitting and batching, run configuration, errors,
checkpoint bookkeeping, plots and the command-line plumbing live here once.
"""
