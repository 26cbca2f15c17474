"""Whole command-line runs, timed as a user waits for them: per epoch and in all.

    python -m benchmarks.cli_time [--paths torch,keras-torch,keras-jax,keras-tensorflow]
                                  [--epochs 8] [--rounds 3] [--json out.json]

Each path is the real command (``python -m torch_version train`` or
``python -m keras_version train --backend B``) with the notebook's recipe, ``--epochs``
epochs, once per round; the rounds rotate the order of the paths, so a change in the
machine's load hits them alike.  While a run goes, the time each epoch line arrives on
its standard output is noted.  Per path (medians over rounds, epochs 2 to N):

* **per epoch** = the time from one epoch line to the next: everything the command
  does per epoch (training, validation, checkpoint, history, the line itself);
* **epoch line** = the seconds the run itself records for an epoch (``metrics.json``:
  training steps and validation, what the epoch line prints);
* **outside the epoch** = per epoch - epoch line: the command's own per-epoch work
  beyond the recipe (the checkpoint's snapshot and hand-over, the history, the line).
  Both come from the same epochs of the same run, so the machine's load cancels;
* **whole run**, **first epoch** (compilation included) and **start-up** = whole run
  - the epochs' own seconds (imports, data, model, final evaluation, plots, files).

Every run writes into a fresh temporary folder, deleted afterwards.
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
from benchmarks.machine import finish, machine, machine_line
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


EPOCH_LINE = re.compile(r"^epoch\s+(\d+)/(\d+)\s")


def run_once(path: str, epochs: int, folder: Path, extra: list[str]) -> dict:
    """One whole run: its wall seconds, when each epoch line arrived, what the run recorded."""
    out = Path(tempfile.mkdtemp(prefix=f"{path}-{epochs}-", dir=folder))
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    started = time.perf_counter()
    arrivals, lines = {}, []
    with subprocess.Popen(command(path, epochs, out, extra), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, bufsize=1) as process:
        for line in process.stdout:
            found = EPOCH_LINE.match(line)
            if found:
                arrivals[int(found.group(1))] = time.perf_counter() - started
            lines.append(line)
        stderr = process.stderr.read()
        code = process.wait()
    seconds = time.perf_counter() - started
    try:
        if code != 0:
            return {"error": f"exit {code}: {(stderr.strip().splitlines() or ['no output'])[-1]}"}
        metrics = json.loads((out / "metrics.json").read_text())
        settings = next((x.strip() for x in lines if x.startswith("speed settings")), None)
        return {"seconds": seconds, "epoch_seconds": metrics["epoch_seconds"],
                "arrivals": [arrivals.get(e) for e in range(1, epochs + 1)], "settings": settings}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def measure(paths, epochs: int, rounds: int, extra: list[str]) -> dict:
    runs = {p: [] for p in paths}
    with tempfile.TemporaryDirectory(prefix="cli-time-") as folder:
        for r in range(rounds):
            order = list(paths[r % len(paths):]) + list(paths[:r % len(paths)])
            for path in order:
                done = run_once(path, epochs, Path(folder), extra)
                runs[path].append(done)
                text = done.get("error") or (f"{done['seconds']:.1f} s, first epoch {done['epoch_seconds'][0]:.1f} s, "
                                             f"then {' '.join(f'{s:.2f}' for s in done['epoch_seconds'][1:])} s")
                print(f"  round {r + 1}/{rounds}  {path:<18} {text}", flush=True)
    return {p: summarize(p, runs[p]) for p in paths}


def summarize(path: str, runs: list[dict]) -> dict:
    good = [r for r in runs if "error" not in r and None not in r["arrivals"]]
    out = {"path": path, "label": LABELS[path], "rounds": len(good)}
    errors = [r["error"] for r in runs if "error" in r]
    if errors:
        out["error"] = errors[0]
    if not good or len(good[0]["arrivals"]) < 3:
        return out
    cycles = [b - a for r in good for a, b in zip(r["arrivals"][1:], r["arrivals"][2:])]  # epochs 3..N
    recorded = [s for r in good for s in r["epoch_seconds"][2:]]
    outside = [(b - a) - s for r in good for a, b, s in zip(r["arrivals"][1:], r["arrivals"][2:], r["epoch_seconds"][2:])]
    out.update(
        per_epoch=median(cycles), epoch_line=median(recorded), outside=median(outside),
        whole_run=median([r["seconds"] for r in good]), first_epoch=median([r["epoch_seconds"][0] for r in good]),
        startup=median([r["seconds"] - sum(r["epoch_seconds"]) for r in good]),
        settings=good[-1]["settings"], runs=good,
    )
    out["outside_share"] = out["outside"] / out["epoch_line"] if out["epoch_line"] else None
    epochs = len(good[0]["arrivals"])
    out["notebook_recipe_seconds"] = out["whole_run"] + (NOTEBOOK_EPOCHS - epochs) * out["per_epoch"]
    return out


def markdown(results: dict, epochs: int) -> str:
    reference = (results.get(REFERENCE) or {}).get("per_epoch")
    lines = [f"| path | s / epoch, line to line | × PyTorch | epoch line s / epoch | outside the epoch "
             f"| whole run of {epochs} epochs, s | first epoch s | start-up s | 64 epochs, est. s | settings |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results.values():
        if "per_epoch" not in r:
            lines.append(f"| {r['label']} (failed: {r.get('error', '?')[:80]}) |" + "  |" * 9)
            continue
        ratio = f"{r['per_epoch'] / reference:.2f}" if reference else "–"
        settings = (r.get("settings") or "").split(": ", 1)[-1]
        lines.append(f"| {r['label']} | {r['per_epoch']:.3f} | {ratio} | {r['epoch_line']:.3f} | "
                     f"{r['outside']:+.3f} s ({100 * r['outside_share']:+.1f} %) | {r['whole_run']:.1f} | "
                     f"{r['first_epoch']:.1f} | {r['startup']:.1f} | {r['notebook_recipe_seconds']:.0f} | {settings} |")
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


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.cli_time", description=__doc__.split("\n\n")[0])
    p.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, from {','.join(PATHS)} (default: all)")
    p.add_argument("--epochs", type=int, default=8, help="epochs per run, at least 3 (default: 8)")
    p.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported (default: 3)")
    p.add_argument("--subset", type=int, default=None, help="train on the first N examples (tests; default: all)")
    p.add_argument("--json", type=Path, default=None, help="write every number to this JSON file")
    args = p.parse_args(argv)
    args.paths = [x.strip() for x in args.paths.split(",") if x.strip()]
    unknown = [x for x in args.paths if x not in PATHS]
    if unknown:
        p.error(f"unknown path {unknown[0]!r}; choose from {', '.join(PATHS)}")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if args.epochs < 3:
        p.error("--epochs must be at least 3 (the first epoch compiles; the second starts the measurement)")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    extra = ["--subset", str(args.subset)] if args.subset else []
    report = {"command": "python -m benchmarks.cli_time " + " ".join(sys.argv[1:] if argv is None else argv),
              "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "machine": machine(), "epochs": args.epochs, "rounds": args.rounds, "subset": args.subset}
    print(machine_line(report["machine"]), flush=True)
    report["paths"] = measure(args.paths, args.epochs, args.rounds, extra)
    print("\n" + markdown(report["paths"], args.epochs) + "\n")
    print(markdown_goals(report["paths"]) + "\n")
    return finish(report, args.json, started)


if __name__ == "__main__":
    main()
