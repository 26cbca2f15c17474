"""The notebooks, self-contained, written by ``build.py`` from their sources in ``src/``."""
