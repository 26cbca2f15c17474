"""Seconds per epoch of the notebook's recipe on every path, measured side by side.

    python -m benchmarks.epoch_time [--quick] [--paths torch,keras-jax] [--json out.json]

Paths: ``notebook`` (the notebook's per-example ``Dataset`` + ``DataLoader`` feeding
the PyTorch loop), ``torch`` (the project's PyTorch version), and Keras 3 on the
``torch``, ``jax`` and ``tensorflow`` backends.  All train the same 54,000 examples
(Fashion-MNIST after the 10 % validation split) in batches of 8192 with Adam, through
the project's own code (see ``benchmarks/worker.py``).

How it measures:

* every path runs in its own process (Keras reads ``KERAS_BACKEND`` once), started
  together; each builds its data and model and trains ``--warmup-epochs`` untimed
  epochs (compilation, first-touch allocations);
* then the timed rounds: in each round every path trains ``--epochs`` epochs, one
  path at a time, in a rotating order, so a change in machine load hits all paths
  alike; a path's figure is the median over rounds of its mean seconds per epoch;
* an epoch is what ``train`` records on its epoch line: the training steps plus the
  validation pass;
* the data share is the time the training loop waited for its next batch, over the
  epoch time; peak memory is the high-water resident set of the path's process.

The scaling table trains ``--scale-batches`` whole batches per epoch (with a validation
set in the same proportion) and scales the epoch time to the 54,000 examples.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import finish, load_average, machine, machine_line
from benchmarks.worker import LABELS, PATHS, backend_of

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "torch"  # the ratio column divides by this path's seconds per epoch
NOTEBOOK_EPOCHS = 64


# --- Workers ------------------------------------------------------------------------

class WorkerError(RuntimeError):
    pass


class WorkerProcess:
    """One ``benchmarks.worker`` process: send a command, read its one-line answer."""

    def __init__(self, path: str, settings: dict | None = None):
        self.path, self.settings = path, dict(settings or {})
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
        if backend_of(path):
            env["KERAS_BACKEND"] = backend_of(path)
        env.update({k: str(v) for k, v in self.settings.items() if k.isupper()})  # e.g. XLA_FLAGS, experiments
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", path, json.dumps(self.settings)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=ROOT, env=env)

    def send(self, cmd: str, **kwargs) -> None:
        self.process.stdin.write(json.dumps({"cmd": cmd, **kwargs}) + "\n")
        self.process.stdin.flush()

    def receive(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise WorkerError(f"{self.path}: the worker exited ({self.process.wait()}):\n{self.log_tail()}")
        answer = json.loads(line)
        if "error" in answer:
            raise WorkerError(f"{self.path}: {answer['error']}\n{self.log_tail()}")
        return answer

    def request(self, cmd: str, **kwargs) -> dict:
        self.send(cmd, **kwargs)
        return self.receive()

    def log_tail(self, lines: int = 15) -> str:
        self.log.seek(0)
        return "\n".join(self.log.read().splitlines()[-lines:])

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                self.send("quit")
                self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self.log.close()


def start_all(entries: list[dict], setup: dict) -> dict[str, WorkerProcess]:
    """Start one worker per entry and set them up in parallel (nothing is timed yet)."""
    workers = {e["key"]: WorkerProcess(e["path"], e.get("settings")) for e in entries}
    for worker in workers.values():
        worker.send("setup", **setup)
    for e in entries:
        try:
            e["setup"] = workers[e["key"]].receive()
        except WorkerError as err:
            e["error"] = str(err)
            print(f"  {e['key']}: failed\n{err}", file=sys.stderr, flush=True)
    return workers


def timed_rounds(entries: list[dict], workers: dict, rounds: int, epochs: int, progress: str = "") -> None:
    """``rounds`` rounds; in each, every live entry trains ``epochs`` epochs, one at a time."""
    live = [e for e in entries if "error" not in e]
    for e in live:
        e["runs"] = []
    for r in range(rounds):
        order = live[r % len(live):] + live[:r % len(live)] if live else []
        for e in order:
            if "error" in e:
                continue
            try:
                e["runs"].append(workers[e["key"]].request("run", epochs=epochs))
            except WorkerError as err:
                e["error"] = str(err)
                print(f"  {e['key']}: failed\n{err}", file=sys.stderr, flush=True)
                continue
            print(f"  {progress}round {r + 1}/{rounds}  {e['key']:<28} "
                  f"{' '.join(f'{s:.3f}' for s in e['runs'][-1]['seconds'])} s", flush=True)


# --- Statistics ---------------------------------------------------------------------------

def median(values):
    values = sorted(values)
    if not values:
        return float("nan")
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def summarize(entry: dict, scale: float = 1.0) -> dict:
    """Median over rounds of each round's mean seconds per epoch, data share, peak memory."""
    runs = entry.get("runs") or []
    per_round = [sum(r["seconds"]) / len(r["seconds"]) * scale for r in runs if r["seconds"]]
    epoch_total = sum(sum(r["seconds"]) for r in runs)
    epochs = sum(len(r["seconds"]) for r in runs)
    wait_total = sum(wait for r in runs for wait, _ in r["data_seconds"])
    background_total = sum(background for r in runs for _, background in r["data_seconds"])
    data_total = wait_total + background_total
    out = {
        "path": entry["path"],
        "label": LABELS[entry["path"]],
        "settings": (entry.get("setup") or {}).get("settings", entry.get("settings", {})),
        "seconds_per_epoch": median(per_round) if per_round else None,
        "round_seconds_per_epoch": per_round,
        "epoch_seconds": [s * scale for r in runs for s in r["seconds"]],
        "cpu_seconds_per_epoch": median([sum(r["cpu_seconds"]) / len(r["cpu_seconds"]) * scale
                                         for r in runs if r["cpu_seconds"]]) if runs else None,
        "data_seconds_per_epoch": data_total / epochs * scale if epochs else None,
        "data_share": data_total / epoch_total if epoch_total > 0 else None,
        "data_wait_share": wait_total / epoch_total if epoch_total > 0 else None,
        "data_background_share": background_total / epoch_total if epoch_total > 0 else None,
        "validation_seconds_per_epoch": (sum(v for r in runs for v in r.get("validation_seconds", [])) / epochs * scale
                                         if epochs else None),
        "peak_rss_mib": max((r["peak_rss_mib"] for r in runs), default=None),
        "final_loss": runs[-1]["loss"][-1] if runs else None,
    }
    setup = entry.get("setup") or {}
    out.update(device=setup.get("device"), warmup_seconds=setup.get("warmup_seconds"),
               setup_seconds=setup.get("setup_seconds"), train_examples=setup.get("train_examples"))
    if "error" in entry:
        out["error"] = entry["error"].splitlines()[0]
    return out


# --- The benchmark --------------------------------------------------------------------------

def feed_key(path: str) -> str:
    return f"{path} [feed=arrays]"


def main_table(args) -> dict:
    entries = [{"key": p, "path": p, "settings": args.settings} for p in args.paths]
    variants = list(args.variants)
    if args.feed_baseline:  # plain fit(x, y) on arrays beside each Keras path: the feed's overhead
        variants += [(p, {"feed": "arrays"}) for p in args.paths if backend_of(p)]
    for path, settings in variants:
        key = f"{path} [{', '.join(f'{k}={v}' for k, v in settings.items())}]"
        entries.append({"key": key, "path": path, "settings": {**args.settings, **settings}})
    setup = {"cell": "rnn", "hidden_size": 8, "subset": args.subset, "warmup_epochs": args.warmup_epochs,
             "timed_epochs": args.repeats * args.epochs}
    print(f"Setting up {len(entries)} paths in parallel (data, model, {args.warmup_epochs} untimed epoch(s))...",
          flush=True)
    workers = start_all(entries, setup)
    try:
        timed_rounds(entries, workers, args.repeats, args.epochs)
    finally:
        for worker in workers.values():
            worker.close()
    results = {e["key"]: summarize(e) for e in entries}
    reference = results.get(REFERENCE, {}).get("seconds_per_epoch")
    versions = {}
    for e in entries:
        versions.update((e.get("setup") or {}).get("versions", {}))
    for r in results.values():
        s = r["seconds_per_epoch"]
        r["ratio_to_torch"] = s / reference if s and reference else None
        r["notebook_recipe_seconds"] = s * NOTEBOOK_EPOCHS if s else None
    return {"paths": results, "versions": versions}


# The goals of issue 11, in seconds per epoch of the notebook's recipe.
FEED_LIMIT = 1.05        # the shared batches at most 5 % over fit on arrays, on every backend
RATIO_LIMITS = {"keras-torch": 1.25, "keras-jax": 0.9, "keras-tensorflow": 0.8}  # × PyTorch
BEST_LIMIT, MOONSHOT = 0.3, 0.15


def goals(results: dict) -> list[dict]:
    """Each goal with the measured value (wall clock; CPU seconds beside it) and met or not."""
    rows = []

    def seconds(key, field="seconds_per_epoch"):
        return (results.get(key) or {}).get(field)

    for path in RATIO_LIMITS:
        feed, arrays = seconds(path), seconds(feed_key(path))
        if feed and arrays:
            cpu_feed, cpu_arrays = seconds(path, "cpu_seconds_per_epoch"), seconds(feed_key(path), "cpu_seconds_per_epoch")
            rows.append({"goal": f"{LABELS[path]}: shared batches vs fit on arrays", "limit": f"≤ {FEED_LIMIT:.2f}×",
                         "value": feed / arrays, "cpu_value": cpu_feed / cpu_arrays if cpu_feed and cpu_arrays else None,
                         "met": feed / arrays <= FEED_LIMIT})
    reference = seconds(REFERENCE)
    for path, limit in RATIO_LIMITS.items():
        if seconds(path) and reference:
            cpu, cpu_ref = seconds(path, "cpu_seconds_per_epoch"), seconds(REFERENCE, "cpu_seconds_per_epoch")
            rows.append({"goal": f"{LABELS[path]} vs PyTorch", "limit": f"≤ {limit:.2f}×",
                         "value": seconds(path) / reference, "cpu_value": cpu / cpu_ref if cpu and cpu_ref else None,
                         "met": seconds(path) / reference <= limit})
    measured = [(r["seconds_per_epoch"], k) for k, r in results.items()
                if r.get("seconds_per_epoch") and "[" not in k and k != "notebook"]
    if measured:
        best, key = min(measured)
        rows.append({"goal": f"best path ({LABELS[results[key]['path']]})", "limit": f"≤ {BEST_LIMIT} s/epoch "
                     f"(moonshot {MOONSHOT})", "value": best, "unit": "s", "met": best <= BEST_LIMIT})
    return rows


def markdown_goals(rows: list[dict]) -> str:
    lines = ["| goal | target | measured (wall) | CPU time | met |", "|---|---:|---:|---:|---|"]
    for r in rows:
        unit = " s" if r.get("unit") == "s" else "×"
        lines.append(f"| {r['goal']} | {r['limit']} | {r['value']:.2f}{unit} | "
                     f"{fmt(r.get('cpu_value'), '.2f')}{'×' if r.get('cpu_value') else ''} | "
                     f"{'yes' if r['met'] else '**no**'} |")
    return "\n".join(lines)


def best_keras_path(results: dict) -> str | None:
    keras_paths = [(r["seconds_per_epoch"], k) for k, r in results.items()
                   if backend_of(k) and "[" not in k and r.get("seconds_per_epoch")]
    return min(keras_paths)[1] if keras_paths else None


def scaling_table(args, paths: list[str]) -> list[dict]:
    """Seconds per epoch for each cell and hidden size, one worker per path for all of them."""
    rows = []
    entries = [{"key": p, "path": p, "settings": args.settings} for p in paths]
    workers = {e["key"]: WorkerProcess(e["path"], e["settings"]) for e in entries}
    try:
        for cell in args.cells:
            for hidden in args.hidden_sizes:
                setup = {"cell": cell, "hidden_size": hidden, "subset": args.subset,
                         "train_batches": args.scale_batches, "warmup_epochs": 1, "timed_epochs": args.scale_epochs}
                for e in entries:
                    e.pop("error", None)
                    e["runs"] = []
                    try:
                        e["setup"] = workers[e["key"]].request("setup", **setup)
                    except WorkerError as err:
                        e["error"] = str(err)
                        print(f"  {e['key']}: failed\n{err}", file=sys.stderr, flush=True)
                timed_rounds(entries, workers, 1, args.scale_epochs, progress=f"{cell} {hidden:>3}  ")
                for e in entries:
                    scale = (e.get("setup") or {}).get("scale", 1.0)
                    s = summarize(e, scale)
                    rows.append({"path": e["path"], "cell": cell, "hidden_size": hidden,
                                 "seconds_per_epoch": s["seconds_per_epoch"], "scale": scale,
                                 "peak_rss_mib": s["peak_rss_mib"], **({"error": s["error"]} if "error" in s else {})})
    finally:
        for worker in workers.values():
            worker.close()
    return rows


# --- Output ------------------------------------------------------------------------------------

def fmt(value, spec: str, missing: str = "–") -> str:
    return missing if value is None else format(value, spec)


def data_share_text(r: dict) -> str:
    if r.get("data_share") is None:
        return "–"
    return (f"{r['data_share'] * 100:.1f} % ({r['data_wait_share'] * 100:.1f} + "
            f"{r['data_background_share'] * 100:.1f})")


def markdown_main(results: dict) -> str:
    lines = ["| path | s / epoch (median) | min – max | CPU s / epoch | validation s / epoch "
             "| data share (wait + background) | peak RSS (MiB) | × PyTorch | 64 epochs (s) | device |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for key, r in results.items():
        rounds = r["round_seconds_per_epoch"]
        spread = f"{min(rounds):.3f} – {max(rounds):.3f}" if rounds else "–"
        name = r["label"] if key == r["path"] else f"{r['label']} {key[len(r['path']):].strip()}"
        if r.get("error"):
            name += f" (failed: {r['error'][:60]})"
        lines.append(f"| {name} | {fmt(r['seconds_per_epoch'], '.3f')} | {spread} | "
                     f"{fmt(r['cpu_seconds_per_epoch'], '.2f')} | {fmt(r.get('validation_seconds_per_epoch'), '.3f')} | "
                     f"{data_share_text(r)} | "
                     f"{fmt(r['peak_rss_mib'], '.0f')} | {fmt(r['ratio_to_torch'], '.2f')} | "
                     f"{fmt(r['notebook_recipe_seconds'], '.1f')} | {r.get('device') or '–'} |")
    return "\n".join(lines)


def markdown_scaling(rows: list[dict], hidden_sizes, cells) -> str:
    paths = list(dict.fromkeys(r["path"] for r in rows))
    head = "| path | cell | " + " | ".join(f"{h} units" for h in hidden_sizes) + " |"
    lines = [head, "|---|---|" + "---:|" * len(hidden_sizes)]
    for path in paths:
        for cell in cells:
            cells_text = []
            for h in hidden_sizes:
                match = [r for r in rows if r["path"] == path and r["cell"] == cell and r["hidden_size"] == h]
                cells_text.append(fmt(match[0]["seconds_per_epoch"], ".2f") if match else "–")
            lines.append(f"| {LABELS[path]} | {cell} | " + " | ".join(cells_text) + " |")
    return "\n".join(lines)


# --- Command line ------------------------------------------------------------------------------

def csv(kind):
    def parse(text: str):
        return [kind(item.strip()) for item in text.split(",") if item.strip()]
    return parse


def setting(text: str):
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def variant(text: str):
    """``PATH:KEY=VALUE,KEY=VALUE``: one more entry, a path with its own settings."""
    path, _, rest = text.partition(":")
    if path not in PATHS:
        raise argparse.ArgumentTypeError(f"unknown path {path!r}; choose from {', '.join(PATHS)}")
    return path, dict(setting(item) for item in rest.split(",") if item)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.epoch_time", description=__doc__.split("\n\n")[0])
    p.add_argument("--paths", type=csv(str), default=list(PATHS), help=f"comma-separated, from {','.join(PATHS)}")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs per round (default 2)")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds (default 3); the median is reported")
    p.add_argument("--warmup-epochs", type=int, default=1, help="untimed epochs before timing (default 1)")
    p.add_argument("--hidden-sizes", type=csv(int), default=[8, 32, 128], help="scaling table (default 8,32,128)")
    p.add_argument("--cells", type=csv(str), default=["rnn", "gru", "lstm"], help="scaling table (default all)")
    p.add_argument("--scaling-paths", default="auto",
                   help="'auto' (PyTorch and the fastest Keras path), 'all', 'none' or a comma-separated list")
    p.add_argument("--scale-batches", type=int, default=2, help="batches per epoch in the scaling table (default 2)")
    p.add_argument("--scale-epochs", type=int, default=1, help="timed epochs per scaling cell (default 1)")
    p.add_argument("--subset", type=int, default=None, help="train on the first N training examples (tests)")
    p.add_argument("--setting", dest="settings", type=setting, action="append", default=[],
                   help="KEY=VALUE override for every path (experiments): torch_threads=N, prefetch=false, "
                        "jit_compile=auto|true|false, steps_per_execution=N, torch_compile=true, unroll=true|false, "
                        "feed=arrays|pydataset, "
                        "tf_threads=N, or an UPPERCASE environment variable such as XLA_FLAGS=...")
    p.add_argument("--variant", dest="variants", type=variant, action="append", default=[],
                   help="PATH:KEY=VALUE,... : also time PATH with these settings, side by side (experiments)")
    p.add_argument("--feed-baseline", action=argparse.BooleanOptionalAction, default=True,
                   help="also time each Keras path on plain fit(x, y) arrays, for the feed's overhead (default: on)")
    p.add_argument("--json", type=Path, default=None, help="write every number to this JSON file")
    p.add_argument("--quick", action="store_true", help="1 timed epoch x 2 rounds, no scaling table (< 1 min)")
    p.add_argument("--render", metavar="JSON", help="only print the tables of a saved --json report")
    args = p.parse_args(argv)
    args.settings = dict(args.settings)
    unknown = [x for x in args.paths if x not in PATHS]
    if unknown:
        p.error(f"unknown path {unknown[0]!r}; choose from {', '.join(PATHS)}")
    if args.quick:
        args.epochs, args.repeats, args.scaling_paths = 1, 2, "none"
    return args


def run(args) -> dict:
    started = time.perf_counter()
    report = {"command": "python -m benchmarks.epoch_time " + " ".join(sys.argv[1:]),
              "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "machine": machine(),
              "recipe": {"batch_size": 8192, "optimizer": "Adam(lr=1e-3)", "model": "3 x rnn(8) -> last step -> linear(10)",
                         "subset": args.subset, "epochs_per_round": args.epochs, "rounds": args.repeats,
                         "warmup_epochs": args.warmup_epochs, "settings": args.settings}}
    print(machine_line(report["machine"]), flush=True)
    report.update(main_table(args))
    results = report["paths"]
    report["machine"]["load_average_after_main_table"] = load_average()
    print("\n" + markdown_main(results) + "\n", flush=True)
    report["goals"] = goals(results)
    print(markdown_goals(report["goals"]) + "\n", flush=True)

    if args.scaling_paths == "none":
        scaling_paths = []
    elif args.scaling_paths == "all":
        scaling_paths = list(args.paths)
    elif args.scaling_paths == "auto":
        best = best_keras_path(results)
        scaling_paths = [p for p in (REFERENCE if REFERENCE in args.paths else None, best) if p]
    else:
        scaling_paths = csv(str)(args.scaling_paths)
    if scaling_paths:
        print(f"Scaling: {', '.join(scaling_paths)}; cells {','.join(args.cells)}; "
              f"hidden sizes {','.join(map(str, args.hidden_sizes))}", flush=True)
        rows = scaling_table(args, scaling_paths)
        report["scaling"] = {"paths": scaling_paths, "train_batches": args.scale_batches,
                             "epochs": args.scale_epochs, "rows": rows}
        print("\n" + markdown_scaling(rows, args.hidden_sizes, args.cells) + "\n", flush=True)
    return finish(report, args.json, started)


def render(path: Path) -> None:
    """Print the Markdown tables of a saved ``--json`` report again."""
    report = json.loads(Path(path).read_text())
    print(machine_line(report["machine"]) + "\n")
    print(markdown_main(report["paths"]) + "\n")
    print(markdown_goals(goals(report["paths"])))
    if report.get("scaling"):
        rows = report["scaling"]["rows"]
        hidden = sorted({r["hidden_size"] for r in rows})
        cells = list(dict.fromkeys(r["cell"] for r in rows))
        print("\n" + markdown_scaling(rows, hidden, cells))


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--render"] and len(argv) == 2:
        render(Path(argv[1]))
        return
    run(parse_args(argv))


if __name__ == "__main__":
    main()
