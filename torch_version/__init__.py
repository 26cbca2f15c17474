"""The notebook's stacked RNN in PyTorch, fed by the shared pipeline in ``common``.

Run it with ``python -m torch_version train --help``.
"""
