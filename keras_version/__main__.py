"""Command line: ``python -m keras_version train --backend {torch,jax,tensorflow} [--epochs N] ...``."""
import os
import sys

from common.cli import build_parser, config_from_args, run_cli
from common.config import BACKENDS, check_choice, check_floatx
from common.data import prepare_data
from common.runs import preflight

PROG = "python -m keras_version"


def main() -> None:
    args = build_parser(PROG, "The notebook's stacked RNN on Fashion-MNIST, in Keras 3.", with_backend=True).parse_args()
    backend = check_choice("backend", args.backend, BACKENDS)
    config = config_from_args(args, default_out=f"keras-{backend}")
    check_floatx()  # keras.json's floatx, before Keras reads it
    config = preflight(config, ".keras")  # a wrong --out or --resume is reported before keras loads
    # Keras reads KERAS_BACKEND once, at its first import: set it before anything imports keras.
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    data = prepare_data(config)  # missing or corrupt data, too, is reported before keras loads
    from common.quiet import import_tensorflow_quietly
    import_tensorflow_quietly()  # before keras, which imports it on the tensorflow backend
    from keras_version.run import main as run
    run(config, data)


if __name__ == "__main__":
    sys.exit(run_cli(main, PROG))
