"""``python -m parity compare``: train PyTorch and Keras (per backend) side by side and report.

Each (framework, backend, seed) runs in its own process, one after the other, on
the same data, split and batches; each worker's epoch lines are shown as they come,
prefixed with its run, and a worker never outlives this process.  The report gives,
per framework and backend: parameters, test accuracy (mean ± std over seeds), seconds per epoch, the largest
|difference| between its logits and PyTorch's at initialisation, and how far its
loss curve ends from PyTorch's (same seed).  Writes report.md, report.json and
curves.png into --out, and prints the table.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common.checkpoint import atomic_write, atomic_write_json, folder_locked
from common.config import BACKENDS, MAX_SEED, RunConfig
from common.errors import ConfigError, UserError
from common.plots import plot_overlay
from common.report import label, median, read_metrics, strict_json
from common.runs import BUSY, make_out_dir
from parity.worker import MODES

ROOT = Path(__file__).resolve().parents[1]


def run_one(framework: str, backend: str, mode: str, config: RunConfig, out: Path, log=print,
            prefix: str = "") -> dict:
    """Train one run in a worker process; relay its epoch lines to ``log`` as they come, with ``prefix``.

    The worker dies with this process, whatever ends it (``parity.worker.die_with_parent``),
    and is killed here if this process stops waiting for it (Ctrl-C, an error).
    """
    spec = {"framework": framework, "backend": backend, "mode": mode, "out": str(out), "parent": os.getpid(),
            "config": {**config.to_json(), "out": str(out)}}
    # The worker runs in the caller's folder, like this process, so relative paths mean the same
    # to both; PYTHONPATH lets it import this project from anywhere.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": path}
    with tempfile.TemporaryFile("w+") as errors:
        worker = subprocess.Popen([sys.executable, "-m", "parity.worker", json.dumps(spec)], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=errors, bufsize=1)
        try:
            for line in worker.stdout:
                log(f"{prefix}{line.rstrip()}")
            worker.wait()
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            worker.stdout.close()
        if worker.returncode != 0:
            errors.seek(0)
            last = (errors.read().strip().splitlines() or ["no output"])[-1]
            raise UserError(f"the {label(framework, backend)} run (seed {config.seed}) failed: {last}")
    return read_metrics(out)


def summarise(runs: list[dict], reference: dict[int, dict]) -> dict:
    """Aggregate the seeds of one framework/backend; compare each seed with PyTorch's run of that seed."""
    accs = [r["test_accuracy"] for r in runs]
    final_gap = [abs(r["history"]["loss"][-1] - reference[r["seed"]]["history"]["loss"][-1]) for r in runs]
    max_gap = [max(abs(a - b) for a, b in zip(r["history"]["loss"], reference[r["seed"]]["history"]["loss"]))
               for r in runs]
    return {
        "label": runs[0]["label"], "framework": runs[0]["framework"], "backend": runs[0]["backend"],
        "params": runs[0]["params"], "seeds": [r["seed"] for r in runs],
        "test_accuracy": accs, "mean": statistics.fmean(accs),
        "std": statistics.stdev(accs) if len(accs) > 1 else float("nan"),
        "seconds_per_epoch": median([s for r in runs for s in r["epoch_seconds"][1:] or r["epoch_seconds"]]),
        "init_max_abs_logit_diff": max(r["init_max_abs_logit_diff"] for r in runs),
        "final_loss_divergence": max(final_gap), "max_loss_divergence": max(max_gap),
    }


def verdict(row: dict, ref: dict) -> str:
    """Is the gap to PyTorch within the seed-to-seed noise?  (2 standard errors of the difference.)

    Either side with one seed has no spread, and a spread that is not a number tells nothing:
    then the verdict says so, never "beyond the noise"."""
    n, m = len(row["test_accuracy"]), len(ref["test_accuracy"])
    diff = row["mean"] - ref["mean"]
    if min(n, m) < 2:
        return "one seed: noise cannot be told apart (use --seeds 3 or more)"
    se = math.sqrt(row["std"] ** 2 / n + ref["std"] ** 2 / m)
    if not math.isfinite(se) or not math.isfinite(diff):
        return "cannot be told: the spread over seeds is not a number (a run's accuracy is not a number)"
    if abs(diff) <= 2 * se:
        return f"{100 * diff:+.2f} pp, within the noise (2 SE = {200 * se:.2f} pp)"
    return f"{100 * diff:+.2f} pp, beyond the noise (2 SE = {200 * se:.2f} pp)"


def render(rows: list[dict], mode: str, config: RunConfig) -> str:
    ref = rows[0]
    lines = [f"Mode `{mode}`; {config.epochs} epochs, batch {config.batch_size}, "
             f"{'all 60000' if config.subset is None else config.subset} training examples (10 % held out), "
             f"seeds {', '.join(map(str, ref['seeds']))}.", "",
             "| run | params | test accuracy (mean ± std) | vs PyTorch | s/epoch | max abs Δ logits at init "
             "| final abs Δ train loss | max abs Δ train loss |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    for row in rows:
        std = "" if math.isnan(row["std"]) else f" ± {100 * row['std']:.2f}"
        vs = "reference" if row is ref else verdict(row, ref)
        lines.append(f"| {row['label']} | {row['params']} | {100 * row['mean']:.2f}{std} % | {vs} "
                     f"| {row['seconds_per_epoch']:.3f} | {row['init_max_abs_logit_diff']:.2e} "
                     f"| {row['final_loss_divergence']:.2e} | {row['max_loss_divergence']:.2e} |")
    return "\n".join(lines)


def compare(config: RunConfig, backends: list[str], seeds: int, mode: str, out: Path, log=None) -> dict:
    log = log or (lambda line: print(line, flush=True))
    if config.seed + seeds - 1 > MAX_SEED:
        raise ConfigError(f"--seed {config.seed} with --seeds {seeds} would use seeds up to {config.seed + seeds - 1}, "
                          f"beyond the largest, {MAX_SEED}; lower --seed or --seeds")
    out = make_out_dir(dataclasses.replace(config, out=Path(out).absolute()))
    finished: list[str] = []
    with folder_locked(out, busy=BUSY):
        try:
            return _compare(config, backends, seeds, mode, out, log, finished)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(interrupted(out / "runs", finished)) from None


def interrupted(runs: Path, finished: list[str]) -> str:
    """What Ctrl-C leaves: the runs of this compare that finished (by name), or that none did."""
    if not finished:
        return "interrupted; no run had finished, so no report was written"
    return (f"interrupted; {len(finished)} {'run' if len(finished) == 1 else 'runs'} had finished, each with its "
            f"metrics.json in {runs}: {', '.join(finished)}; the report is written once every run has finished")


def _compare(config: RunConfig, backends: list[str], seeds: int, mode: str, out: Path, log,
             finished: list[str]) -> dict:
    plan = [("torch", "native")] + [("keras", b) for b in backends]
    results: dict[tuple[str, str], list[dict]] = {key: [] for key in plan}
    total, done = len(plan) * seeds, 0
    for seed in range(config.seed, config.seed + seeds):
        seeded = dataclasses.replace(config, seed=seed)
        for framework, backend in plan:
            done += 1
            name = f"{framework}-{backend}" if framework == "keras" else "torch"
            prefix = f"[{done}/{total}] {label(framework, backend)}, seed {seed}: "
            m = run_one(framework, backend, mode, seeded, out / "runs" / f"{name}-seed{seed}", log, prefix)
            finished.append(f"{name}-seed{seed}")
            results[(framework, backend)].append(m)
            log(f"{prefix}test accuracy {100 * m['test_accuracy']:.2f} %, {median(m['epoch_seconds']):.3f} s/epoch")
    reference = {m["seed"]: m for m in results[("torch", "native")]}
    rows = [summarise(results[key], reference) for key in plan]
    table = render(rows, mode, config)
    atomic_write(out / "report.md", lambda tmp: tmp.write_text(
        f"# PyTorch vs Keras 3: `{mode}`\n\n{table}\n\n![curves](curves.png)\n"))
    atomic_write_json(out / "report.json", strict_json({"mode": mode, "config": config.to_json(), "rows": rows}))
    first_seed = {f"{m['label']}": m["history"] for key in plan for m in results[key][:1]}
    atomic_write(out / "curves.png", lambda tmp: plot_overlay(first_seed, tmp, f"{mode}: seed {config.seed}"))
    log(table)
    return {"rows": rows, "table": table}


def parse_backends(text: str) -> list[str]:
    """The backends of ``--backends``, names compared in lower case; each at most once (a backend
    named twice would run the same folders twice and compare a run with itself)."""
    backends = [b.strip() for b in text.split(",") if b.strip()]
    for b in backends:
        if b.lower() not in BACKENDS:
            raise UserError(f"unknown backend {b!r} in --backends; choose from: {', '.join(BACKENDS)}")
    if not backends:
        raise UserError("--backends names no backend; give e.g. torch,jax")
    seen: dict[str, str] = {}
    for b in backends:
        if b.lower() in seen:
            raise UserError(f"--backends names {b.lower()} twice ({seen[b.lower()]!r} and {b!r}); give each backend "
                            "once, and --seeds K for more runs of one")
        seen[b.lower()] = b
    return list(seen)
