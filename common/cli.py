"""The command line both versions share: the same flags, the same errors, the same exit codes.

``torch_version/__main__.py`` and ``keras_version/__main__.py`` stay thin: they
build this parser, turn the arguments into a :class:`RunConfig` and hand it to
their own ``run.main``.  Errors a user can cause print one line and exit 2.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback
from pathlib import Path

from common.config import BACKENDS, CELLS, MAX_SEED, RunConfig
from common.data import SOURCES
from common.errors import UserError
from common.speed import JIT_CHOICES, help_text, parse_jit_compile

DEBUG_ENV = "STACKED_RNN_DEBUG"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def seed_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {MAX_SEED}, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {MAX_SEED}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus the error; a learner gets one line that says what to fix."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(prog: str, description: str, with_backend: bool = False) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description=description)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    train = commands.add_parser("train", help="train on Fashion-MNIST, evaluate, write metrics, model and plots",
                                description="Train the stacked RNN with the notebook's recipe by default.")
    d = RunConfig()
    if with_backend:
        default_backend = os.environ.get("KERAS_BACKEND", "jax")
        train.add_argument("--backend", default=default_backend,
                           help=f"Keras backend, one of {', '.join(BACKENDS)} (default: $KERAS_BACKEND or jax; "
                                f"now {default_backend})")
    train.add_argument("--epochs", type=positive_int, default=d.epochs, help=f"epochs to train (default: {d.epochs})")
    train.add_argument("--batch-size", type=positive_int, default=d.batch_size,
                       help=f"examples per batch (default: {d.batch_size})")
    train.add_argument("--hidden-size", type=positive_int, default=d.hidden_size,
                       help=f"units per recurrent layer (default: {d.hidden_size})")
    train.add_argument("--num-layers", type=positive_int, default=d.num_layers,
                       help=f"stacked recurrent layers (default: {d.num_layers})")
    train.add_argument("--cell", default=d.cell, help=f"one of {', '.join(CELLS)} (default: {d.cell})")
    train.add_argument("--bidirectional", action="store_true", help="bidirectional layers (default: off)")
    train.add_argument("--learning-rate", type=positive_float, default=d.learning_rate,
                       help=f"Adam learning rate (default: {d.learning_rate})")
    train.add_argument("--seed", type=seed_int, default=d.seed, help=f"seed for split, shuffling and weights (default: {d.seed})")
    train.add_argument("--subset", type=positive_int, default=None,
                       help="train on the first N training examples, for quick runs (default: all 60000)")
    train.add_argument("--source", default=d.source,
                       help=f"data source: {', '.join(SOURCES)} or a folder of IDX files (default: {d.source})")
    train.add_argument("--out", type=Path, default=None, help="output folder (default: runs/<framework>[-<backend>])")
    train.add_argument("--resume", type=Path, default=None, metavar="DIR",
                       help="continue the run in DIR from its last completed epoch (default: start afresh)")
    train.add_argument("--overwrite", action="store_true",
                       help="start afresh even if --out holds another run's checkpoints; they are kept until this "
                            "run saves its first epoch (default: refuse)")
    if with_backend:
        add_speed_flags(train)
    return parser


def add_speed_flags(parser: argparse.ArgumentParser) -> None:
    """Keras's speed settings; each defaults to the backend's entry in ``common/speed.py``."""
    group = parser.add_argument_group("speed settings (Keras; the defaults depend on the backend: common/speed.py)")
    group.add_argument("--unroll", action=argparse.BooleanOptionalAction, default=None,
                       help=f"unroll the recurrent layers' time loop (default: {help_text('unroll')})")
    group.add_argument("--jit-compile", choices=JIT_CHOICES, default=None,
                       help=f"Keras's jit_compile: XLA on JAX and TensorFlow, torch.compile on torch "
                            f"(default: {help_text('jit_compile')})")
    group.add_argument("--steps-per-execution", type=positive_int, default=None, metavar="N",
                       help=f"training steps per compiled call (default: {help_text('steps_per_execution')})")


def config_from_args(args: argparse.Namespace, default_out: str) -> RunConfig:
    """Turn parsed flags into a RunConfig (which validates them)."""
    if args.resume is not None and args.out is not None and args.resume != args.out:
        raise UserError(f"--resume {args.resume} and --out {args.out} name different folders; give only --resume")
    out = args.resume or args.out or Path("runs") / default_out
    return RunConfig(epochs=args.epochs, batch_size=args.batch_size, hidden_size=args.hidden_size,
                     num_layers=args.num_layers, cell=args.cell, bidirectional=args.bidirectional,
                     seed=args.seed, subset=args.subset, learning_rate=args.learning_rate,
                     source=args.source, out=out, resume=args.resume is not None, overwrite=args.overwrite,
                     unroll=getattr(args, "unroll", None), steps_per_execution=getattr(args, "steps_per_execution", None),
                     jit_compile=None if getattr(args, "jit_compile", None) is None else parse_jit_compile(args.jit_compile))


def one_line(text: str) -> str:
    """``text`` with its line breaks and other control characters escaped: a path may hold them."""
    return "".join(c if c.isprintable() or c == "\t" else repr(c)[1:-1] for c in text)


def out_of_memory(e: BaseException) -> bool:
    """MemoryError, or the RuntimeError torch raises when its CPU allocator fails."""
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and "can't allocate memory" in str(e))


def run_cli(main, prog: str) -> int:
    """Call ``main()``; turn errors into one line on stderr and an exit code, never a traceback.

    2: a user error (:class:`UserError`), a full disk or too little memory; 130: Ctrl-C
    (its message, if any, says what was kept); 1: a bug.
    """
    def say(message: str) -> None:
        print(f"{prog}: {one_line(message)}", file=sys.stderr, flush=True)

    try:
        main()
        return 0
    except UserError as e:
        say(f"error: {e}")
        return 2
    except KeyboardInterrupt as e:
        say(str(e) or "interrupted")
        return 130
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            return internal_error(e, say)
        where = f" to write {e.filename}" if e.filename else ""
        say(f"error: no space left on the device{where} ({os.strerror(e.errno)}); free some space, or choose "
            "another --out")
        return 2
    except Exception as e:
        if not out_of_memory(e):
            return internal_error(e, say)
        say(f"error: out of memory ({type(e).__name__}); choose a smaller --hidden-size, --num-layers or "
            "--batch-size, or close other programs")
        return 2


def internal_error(e: Exception, say) -> int:
    """A bug, not a user error: still one line, the traceback on request."""
    if os.environ.get(DEBUG_ENV):
        traceback.print_exception(e)
    else:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        say(f"internal error: {type(e).__name__}: {first} (set {DEBUG_ENV}=1 to see the traceback, "
            "and please report it)")
    return 1
