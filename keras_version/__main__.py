"""Command line: ``python -m keras_version train --backend {torch,jax,tensorflow} [--epochs N] ...``."""
import os
import sys

from common.cli import build_parser, config_from_args, run_cli
from common.config import BACKENDS, check_choice

PROG = "python -m keras_version"


def main() -> None:
    args = build_parser(PROG, "The notebook's stacked RNN on Fashion-MNIST, in Keras 3.", with_backend=True).parse_args()
    backend = check_choice("backend", args.backend, BACKENDS)
    config = config_from_args(args, default_out=f"keras-{backend}")
    # Keras reads KERAS_BACKEND once, at its first import: set it before anything imports keras.
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_version.run import main as run
    run(config)


if __name__ == "__main__":
    sys.exit(run_cli(main, PROG))
