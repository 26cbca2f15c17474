"""``python -m parity compare``: train PyTorch and Keras (per backend) side by side and report.

Each (framework, backend, seed) runs in its own process, one after the other, on
the same data, split and batches.  The report gives, per framework and backend:
parameters, test accuracy (mean ± std over seeds), seconds per epoch, the largest
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
from pathlib import Path

from common.config import BACKENDS, RunConfig
from common.errors import UserError
from common.plots import plot_overlay
from common.report import label, median
from parity.worker import MODES

ROOT = Path(__file__).resolve().parents[1]


def run_one(framework: str, backend: str, mode: str, config: RunConfig, out: Path) -> dict:
    spec = {"framework": framework, "backend": backend, "mode": mode, "out": str(out),
            "config": {**config.to_json(), "out": str(out)}}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-m", "parity.worker", json.dumps(spec)], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"the {label(framework, backend)} run (seed {config.seed}) failed: {last}")
    return json.loads((out / "metrics.json").read_text())


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
    """Is the gap to PyTorch within the seed-to-seed noise?  (2 standard errors of the difference.)"""
    n = len(row["test_accuracy"])
    if n < 2:
        return "one seed: noise cannot be told apart (use --seeds 3 or more)"
    diff = row["mean"] - ref["mean"]
    se = math.sqrt(row["std"] ** 2 / n + ref["std"] ** 2 / len(ref["test_accuracy"]))
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
    out.mkdir(parents=True, exist_ok=True)
    plan = [("torch", "native")] + [("keras", b) for b in backends]
    results: dict[tuple[str, str], list[dict]] = {key: [] for key in plan}
    total, done = len(plan) * seeds, 0
    for seed in range(config.seed, config.seed + seeds):
        seeded = dataclasses.replace(config, seed=seed)
        for framework, backend in plan:
            done += 1
            name = f"{framework}-{backend}" if framework == "keras" else "torch"
            m = run_one(framework, backend, mode, seeded, out / "runs" / f"{name}-seed{seed}")
            results[(framework, backend)].append(m)
            log(f"[{done}/{total}] {m['label']}, seed {seed}: test accuracy {100 * m['test_accuracy']:.2f} %, "
                f"{median(m['epoch_seconds']):.3f} s/epoch")
    reference = {m["seed"]: m for m in results[("torch", "native")]}
    rows = [summarise(results[key], reference) for key in plan]
    table = render(rows, mode, config)
    (out / "report.md").write_text(f"# PyTorch vs Keras 3: `{mode}`\n\n{table}\n\n![curves](curves.png)\n")
    (out / "report.json").write_text(json.dumps({"mode": mode, "config": config.to_json(), "rows": rows}, indent=2) + "\n")
    first_seed = {f"{m['label']}": m["history"] for key in plan for m in results[key][:1]}
    plot_overlay(first_seed, out / "curves.png", f"{mode}: seed {config.seed}")
    log(table)
    return {"rows": rows, "table": table}


def parse_backends(text: str) -> list[str]:
    backends = [b.strip() for b in text.split(",") if b.strip()]
    for b in backends:
        if b not in BACKENDS:
            raise UserError(f"unknown backend {b!r} in --backends; choose from: {', '.join(BACKENDS)}")
    if not backends:
        raise UserError("--backends names no backend; give e.g. torch,jax")
    return backends
