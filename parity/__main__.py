"""Command line: ``python -m parity compare [--epochs N] [--backends torch,jax,tensorflow] [--seeds K] ...``
and ``python -m parity convert SRC DST [--backend B] [--nonlinearity tanh|relu] [--readout last-output|h_n]
[--overwrite]``."""
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
    add_convert_parser(commands)
    args = parser.parse_args()
    from common.config import check_floatx
    check_floatx()  # both commands run Keras, which reads keras.json's floatx at import
    if args.command == "convert":
        return convert(args)
    from parity.compare import compare, parse_backends
    backends = parse_backends(args.backends)
    config = RunConfig(epochs=args.epochs, batch_size=args.batch_size, subset=args.subset, seed=args.seed, out=args.out)
    compare(config, backends, args.seeds, args.mode, args.out)


def add_convert_parser(commands) -> None:
    import os
    from common.config import BACKENDS, NONLINEARITIES, READOUTS
    default_backend = os.environ.get("KERAS_BACKEND", "jax")
    p = commands.add_parser(
        "convert", help="convert a trained model file: .pt2 or PyTorch state dict -> .keras, .keras -> .pt",
        description="Convert a model file and check the result against SRC before writing DST.  A .pt2 "
                    "(torch.export.save) carries its forward and converts as it computes.  A state dict cannot "
                    "show its forward: it converts only as this project's StackedRNN (recurrent layers, then one "
                    "Linear), with --readout (and --nonlinearity for nn.RNN) saying what the forward does.  A "
                    ".keras file converts when it is that same chain.")
    p.add_argument("src", type=Path, metavar="SRC", help="a .pt2 (torch.export.save), a state dict "
                                                         "(torch.save(model.state_dict(), path)), this project's "
                                                         "model.pt, or a .keras file")
    p.add_argument("dst", type=Path, metavar="DST", help="the file to write: *.keras or *.pt")
    p.add_argument("--backend", default=default_backend,
                   help=f"Keras backend, one of {', '.join(BACKENDS)} "
                        f"(default: $KERAS_BACKEND or jax; now {default_backend})")
    p.add_argument("--nonlinearity", default=None, choices=NONLINEARITIES,
                   help="a state dict's nn.RNN nonlinearity, which weights cannot show (default: what SRC records; "
                        "refused without it otherwise)")
    p.add_argument("--readout", default=None, choices=READOUTS,
                   help="what a state dict's forward hands the Linear: last-output (out[:, -1]; for one direction "
                        "the same as h_n) or h_n (each direction's final state); a forward that pools over time or "
                        "does anything else: convert a .pt2 (default: what SRC records; refused without it "
                        "otherwise)")
    p.add_argument("--overwrite", action="store_true", help="replace DST if it exists (default: refuse)")


def convert(args: argparse.Namespace) -> None:
    import os
    from common.config import BACKENDS, check_choice
    import warnings
    from parity.destination import check_destination
    check_destination(args.src, args.dst, args.overwrite)  # a wrong DST is reported before anything is loaded
    backend = check_choice("backend", args.backend, BACKENDS)
    # Keras reads KERAS_BACKEND once, at its first import: set it before anything imports keras.
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from common.cli import out_of_memory
    from common.errors import ConversionError
    from parity.convert_command import convert_file
    # A library warning (an inf met in NumPy, a zip entry's odd name) is no line for the user: every
    # problem that matters is refused in one line of its own.
    warnings.simplefilter("ignore")
    _quiet_torch_logs()
    try:
        convert_file(args.src, args.dst, args.nonlinearity, out=lambda line: print(line, flush=True),
                     readout=args.readout, overwrite=args.overwrite)
    except Exception as e:
        if not out_of_memory(e):
            raise
        raise ConversionError(f"out of memory while converting {args.src} ({type(e).__name__}); the model it "
                              "describes does not fit in this machine's memory: close other programs, or convert "
                              "on a machine with more") from None


def _quiet_torch_logs() -> None:
    """torch.export logs warnings of its own (e.g. about tensors assigned during export): not lines for the user."""
    import logging
    for name in ("torch", "torch.export", "torch._export"):
        logging.getLogger(name).setLevel(logging.ERROR)


if __name__ == "__main__":
    sys.exit(run_cli(main, PROG))
