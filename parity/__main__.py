"""Command line: ``python -m parity compare [--epochs N] [--backends torch,jax,tensorflow] [--seeds K] ...``."""
import argparse
import sys
from pathlib import Path

from common.cli import OneLineParser, positive_int, run_cli, seed_int
from common.config import RunConfig

PROG = "python -m parity"


def main() -> None:
    from parity.worker import MODES
    parser = OneLineParser(prog=PROG, description="Parity between the PyTorch and Keras 3 stacked RNNs.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    p = commands.add_parser("compare", help="train both frameworks side by side and write a report")
    d = RunConfig()
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help=f"epochs per run (default: {d.epochs})")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size, help=f"batch size (default: {d.batch_size})")
    p.add_argument("--subset", type=positive_int, default=None, help="first N training examples (default: all)")
    p.add_argument("--backends", default="torch,jax,tensorflow",
                   help="Keras backends, comma-separated (default: torch,jax,tensorflow)")
    p.add_argument("--seeds", type=positive_int, default=1, help="seeds per framework and backend (default: 1)")
    p.add_argument("--seed", type=seed_int, default=0, help="first seed (default: 0)")
    p.add_argument("--mode", choices=MODES, default="faithful",
                   help="faithful: each framework's defaults; torch-init: Keras starts from PyTorch's weights; "
                        "lockstep: same weights, biases and Adam (default: faithful)")
    p.add_argument("--out", type=Path, default=Path("runs/compare"), help="output folder (default: runs/compare)")
    args = parser.parse_args()
    from parity.compare import compare, parse_backends
    backends = parse_backends(args.backends)
    config = RunConfig(epochs=args.epochs, batch_size=args.batch_size, subset=args.subset, seed=args.seed, out=args.out)
    compare(config, backends, args.seeds, args.mode, args.out)


if __name__ == "__main__":
    sys.exit(run_cli(main, PROG))
