"""Command line: ``python -m torch_version train [--epochs N] [--subset N] ...``."""
import sys

from common.cli import build_parser, config_from_args, run_cli
from common.data import prepare_data
from common.runs import preflight

PROG = "python -m torch_version"


def main() -> None:
    args = build_parser(PROG, "The notebook's stacked RNN on Fashion-MNIST, in PyTorch.").parse_args()
    config = config_from_args(args, default_out="torch")
    config = preflight(config, ".pt")  # a wrong --out or --resume is reported before torch loads,
    data = prepare_data(config)  # and so is missing or corrupt data
    from torch_version.run import main as run  # imported after parsing, so --help is instant
    run(config, data)


if __name__ == "__main__":
    sys.exit(run_cli(main, PROG))
