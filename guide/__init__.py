"""The PyTorch <-> Keras 3 translation guide: its runner, its pictures and its notebooks.

* ``python -m guide.runner PAGE ...``: execute pages of the guide, each in a process of its own.
* ``python -m guide.figures [--from-runs DIR ...]``: draw ``guide/images/*.png``.
* ``python -m guide.notebooks.build [--check]``: write the notebooks.
"""
