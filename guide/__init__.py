"""The PyTorch <-> Keras 3 translation guide: its runner, its pictures and its notebooks.

* ``python -m guide.runner guide/en/README.md``: execute a guide's code blocks.
* ``python -m guide.figures [--from-runs DIR ...]``: draw ``guide/images/*.png``.
* ``python -m guide.notebooks.build [--check]``: write the notebooks.
"""
