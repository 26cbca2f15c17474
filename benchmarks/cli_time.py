"""Whole command-line runs, timed from outside: what a user waits for, per epoch and in all.

    python -m benchmarks.cli_time [--paths torch,keras-torch,keras-jax,keras-tensorflow]
                                  [--epochs 2,8] [--rounds 2] [--json out.json]

Each path is the real command (``python -m torch_version train`` or
``python -m keras_version train --backend B``) with the notebook's recipe, run once
for each number of epochs in ``--epochs`` (a short and a long run) in every round.
The rounds rotate the order of the paths, so a change in the machine's load hits
them alike.  From the wall seconds ``T(n)`` of whole runs of ``n`` epochs:

* **per epoch** = (T(long) - T(short)) / (long - short): start-up (imports, data,
  compilation in the first epoch, the final evaluation and plots) cancels out;
* **start-up** = T(short) - short x per epoch: what a run costs besides its epochs;
* **epoch line** = the seconds the run records for those epochs (``metrics.json``:
  training steps and validation, what the epoch line prints);
* **outside the epoch** = per epoch - epoch line: the command's own per-epoch work
  beyond the recipe (taking the checkpoint's snapshot, the history, the epoch line).

A path's figures are medians over rounds.  Every run writes into a fresh temporary
folder, which is deleted afterwards.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.epoch_time import RATIO_LIMITS, median
from benchmarks.machine import load_average, machine, machine_line
from benchmarks.worker import LABELS, backend_of

ROOT = Path(__file__).resolve().parents[1]
PATHS = ("torch", "keras-torch", "keras-jax", "keras-tensorflow")
REFERENCE = "torch"
OUTSIDE_LIMIT = 0.10  # the command's own work per epoch: at most 10 % of an epoch
NOTEBOOK_EPOCHS = 64


def command(path: str, epochs: int, out: Path, extra: list[str]) -> list[str]:
    if path == "torch":
        return [sys.executable, "-m", "torch_version", "train", "--epochs", str(epochs), "--out", str(out), *extra]
    return [sys.executable, "-m", "keras_version", "train", "--backend", backend_of(path),
            "--epochs", str(epochs), "--out", str(out), *extra]


def run_once(path: str, epochs: int, folder: Path, extra: list[str]) -> dict:
    """One whole run; its wall seconds, the epoch seconds it recorded and the settings it printed."""
    out = Path(tempfile.mkdtemp(prefix=f"{path}-{epochs}-", dir=folder))
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    started = time.perf_counter()
    result = subprocess.run(command(path, epochs, out, extra), cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    try:
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            return {"error": f"exit {result.returncode}: {last}"}
        metrics = json.loads((out / "metrics.json").read_text())
        settings = re.search(r"^speed settings .*$", result.stdout, re.MULTILINE)
        return {"seconds": seconds, "epoch_seconds": metrics["epoch_seconds"],
                "settings": settings.group(0) if settings else None}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def measure(paths, epochs: tuple[int, int], rounds: int, extra: list[str]) -> dict:
    short, long = epochs
    runs = {p: [] for p in paths}
    with tempfile.TemporaryDirectory(prefix="cli-time-") as folder:
        for r in range(rounds):
            order = list(paths[r % len(paths):]) + list(paths[:r % len(paths)])
            for path in order:
                pair = {}
                for n in ((short, long) if r % 2 == 0 else (long, short)):
                    pair[n] = run_once(path, n, Path(folder), extra)
                    done = pair[n]
                    text = done.get("error") or f"{done['seconds']:.1f} s"
                    print(f"  round {r + 1}/{rounds}  {path:<18} {n:>3} epochs  {text}", flush=True)
                runs[path].append(pair)
    return {p: summarize(p, runs[p], short, long) for p in paths}


def summarize(path: str, runs: list[dict], short: int, long: int) -> dict:
    good = [r for r in runs if "error" not in r[short] and "error" not in r[long]]
    out = {"path": path, "label": LABELS[path], "rounds": len(good)}
    errors = [r[n]["error"] for r in runs for n in (short, long) if "error" in r[n]]
    if errors:
        out["error"] = errors[0]
    if not good:
        return out
    per_epoch = [(r[long]["seconds"] - r[short]["seconds"]) / (long - short) for r in good]
    line = [sum(r[long]["epoch_seconds"][short:long]) / (long - short) for r in good]
    startup = [r[short]["seconds"] - short * p for r, p in zip(good, per_epoch)]
    first = [r[n]["epoch_seconds"][0] for r in good for n in (short, long)]
    out.update(
        per_epoch=median(per_epoch), per_epoch_rounds=per_epoch, epoch_line=median(line),
        outside=median([p - e for p, e in zip(per_epoch, line)]), startup=median(startup),
        first_epoch=median(first), settings=good[-1][long]["settings"],
        whole_seconds={n: [r[n]["seconds"] for r in good] for n in (short, long)},
    )
    out["outside_share"] = out["outside"] / out["epoch_line"] if out["epoch_line"] else None
    out["notebook_recipe_seconds"] = out["startup"] + NOTEBOOK_EPOCHS * out["per_epoch"]
    return out


def markdown(results: dict, epochs: tuple[int, int]) -> str:
    short, long = epochs
    reference = (results.get(REFERENCE) or {}).get("per_epoch")
    lines = [f"| path | s / epoch, whole run ({long} − {short} epochs) | × PyTorch | epoch line s / epoch "
             f"| outside the epoch | start-up s | first epoch s | 64 epochs, est. s | settings |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for path, r in results.items():
        if "per_epoch" not in r:
            lines.append(f"| {r['label']} (failed: {r.get('error', '?')[:80]}) |  |  |  |  |  |  |  |  |")
            continue
        ratio = f"{r['per_epoch'] / reference:.2f}" if reference else "–"
        settings = (r.get("settings") or "").split(": ", 1)[-1]
        lines.append(f"| {r['label']} | {r['per_epoch']:.3f} | {ratio} | {r['epoch_line']:.3f} | "
                     f"{r['outside']:+.3f} s ({100 * r['outside_share']:+.1f} %) | {r['startup']:.1f} | "
                     f"{r['first_epoch']:.1f} | {r['notebook_recipe_seconds']:.0f} | {settings} |")
    return "\n".join(lines)


def markdown_goals(results: dict) -> str:
    reference = (results.get(REFERENCE) or {}).get("per_epoch")
    lines = ["| goal | target | measured | met |", "|---|---:|---:|---|"]
    for path, limit in RATIO_LIMITS.items():
        r = results.get(path) or {}
        if reference and r.get("per_epoch"):
            ratio = r["per_epoch"] / reference
            lines.append(f"| {LABELS[path]} vs PyTorch, whole runs | ≤ {limit:.2f}× | {ratio:.2f}× | "
                         f"{'yes' if ratio <= limit else '**no**'} |")
    for path, r in results.items():
        if r.get("outside_share") is not None:
            lines.append(f"| {LABELS[path]}: the command's own work per epoch | ≤ {100 * OUTSIDE_LIMIT:.0f} % of an "
                         f"epoch | {100 * r['outside_share']:.1f} % | "
                         f"{'yes' if r['outside_share'] <= OUTSIDE_LIMIT else '**no**'} |")
    return "\n".join(lines)


def epochs_pair(text: str) -> tuple[int, int]:
    try:
        short, long = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two epoch counts such as 2,8, got {text!r}") from None
    if not 1 <= short < long:
        raise argparse.ArgumentTypeError(f"expected 1 <= short < long, got {text!r}")
    return short, long


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.cli_time", description=__doc__.split("\n\n")[0])
    p.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, from {','.join(PATHS)} (default: all)")
    p.add_argument("--epochs", type=epochs_pair, default=(2, 8), help="short,long run lengths (default: 2,8)")
    p.add_argument("--rounds", type=int, default=2, help="rounds; the median is reported (default: 2)")
    p.add_argument("--subset", type=int, default=None, help="train on the first N examples (tests; default: all)")
    p.add_argument("--json", type=Path, default=None, help="write every number to this JSON file")
    args = p.parse_args(argv)
    args.paths = [x.strip() for x in args.paths.split(",") if x.strip()]
    unknown = [x for x in args.paths if x not in PATHS]
    if unknown:
        p.error(f"unknown path {unknown[0]!r}; choose from {', '.join(PATHS)}")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    extra = ["--subset", str(args.subset)] if args.subset else []
    report = {"command": "python -m benchmarks.cli_time " + " ".join(sys.argv[1:] if argv is None else argv),
              "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "machine": machine(), "epochs": list(args.epochs), "rounds": args.rounds, "subset": args.subset}
    print(machine_line(report["machine"]), flush=True)
    report["paths"] = measure(args.paths, args.epochs, args.rounds, extra)
    report["machine"]["load_average_end"] = load_average()
    print("\n" + markdown(report["paths"], args.epochs) + "\n")
    print(markdown_goals(report["paths"]) + "\n")
    print(machine_line(report["machine"]))
    report["wall_seconds"] = time.perf_counter() - started
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    print(f"benchmark took {report['wall_seconds']:.0f} s")
    return report


if __name__ == "__main__":
    main()
