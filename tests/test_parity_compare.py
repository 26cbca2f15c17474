"""``python -m parity compare`` end to end: it shows each run's epochs as they come, keeps its final
table, resolves paths against the caller's folder, and never leaves a worker behind, whatever
signal ends it.  (Its bad flags are rows of tests/test_errors.py's table.)"""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import cli_support as cli
from tests.conftest import ROOT

TINY = ["--epochs", "2", "--subset", "1024", "--batch-size", "512"]


def test_compare_shows_progress_and_writes_where_the_caller_is(tmp_path):
    """Run from another folder with a relative --out: the report lands there; every epoch of every run is
    printed as it ends, prefixed with its run, before that run's result line; the table follows."""
    result = subprocess.run([sys.executable, "-m", "parity", "compare", "--backends", "torch", *TINY, "--out", "rel"],
                            cwd=tmp_path, env=cli.cli_env(), capture_output=True, text=True,
                            timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "rel"
    assert {p.name for p in out.iterdir()} >= {"report.md", "report.json", "curves.png", "runs"}
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["keras-torch-seed0", "torch-seed0"]
    assert not (ROOT / "rel").exists()

    lines = result.stdout.splitlines()
    for n, name in ((1, "PyTorch"), (2, "Keras (torch)")):
        prefix = f"[{n}/2] {name}, seed 0: "
        mine = [line[len(prefix):] for line in lines if line.startswith(prefix)]
        assert len(mine) == 3, lines
        for epoch, line in enumerate(mine[:2], start=1):
            assert re.fullmatch(rf"epoch {epoch}/2  loss \d+\.\d{{4}}  accuracy \d\.\d{{4}}  val_loss \d+\.\d{{4}}  "
                                r"val_accuracy \d\.\d{4}  \d+\.\d\d s", line), line
        assert re.fullmatch(r"test accuracy \d+\.\d\d %, \d+\.\d{3} s/epoch", mine[2]), mine[2]
    table = lines.index("| run | params | test accuracy (mean ± std) | vs PyTorch | s/epoch "
                        "| max abs Δ logits at init | final abs Δ train loss | max abs Δ train loss |")
    assert lines[table + 2].startswith("| PyTorch | 682 | ") and lines[table + 3].startswith("| Keras (torch) | 658 | ")
    report = json.loads((out / "report.json").read_text())
    assert [row["label"] for row in report["rows"]] == ["PyTorch", "Keras (torch)"]
    for row, run in zip(report["rows"], ("torch-seed0", "keras-torch-seed0")):
        metrics = json.loads((out / "runs" / run / "metrics.json").read_text())
        assert row["test_accuracy"] == [metrics["test_accuracy"]] and len(metrics["history"]["loss"]) == 2


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["SIGKILL", "SIGTERM", "SIGINT"])
def test_a_stopped_compare_leaves_no_worker_behind(sig, tmp_path):
    """Stop compare while its worker trains: within 5 s no worker is left, and none writes results later.
    Ctrl-C (SIGINT) also gets one line that promises no checkpoint."""
    out = tmp_path / "compare"
    proc = subprocess.Popen([sys.executable, "-m", "parity", "compare", "--backends", "torch", "--epochs", "500",
                             "--subset", "2048", "--batch-size", "256", "--out", str(out)],
                            cwd=ROOT, env=cli.cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # the worker's first epoch line: it is training
        assert re.match(r"\[1/2\] PyTorch, seed 0: epoch +1/500  loss ", first), first
        workers = cli.children(proc.pid)
        assert len(workers) == 1 and cli.alive(workers[0])
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
        deadline = time.monotonic() + 5
        while cli.alive(workers[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not cli.alive(workers[0]), f"the worker outlived compare after {sig.name}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if sig == signal.SIGINT:
        cli.one_error_line(subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr), "parity",
                           r"^python -m parity: interrupted; no run had finished, so no report was written$", code=130)
    else:
        assert proc.returncode == -sig
    time.sleep(1)
    assert not (out / "runs" / "torch-seed0" / "metrics.json").exists()


def test_the_ctrl_c_line_names_the_runs_that_finished(tmp_path):
    from parity.compare import interrupted
    runs = tmp_path / "runs"
    assert interrupted(runs, []) == "interrupted; no run had finished, so no report was written"
    assert interrupted(runs, ["torch-seed0", "keras-jax-seed0"]) == (
        f"interrupted; 2 runs had finished, each with its metrics.json in {runs}: torch-seed0, keras-jax-seed0; "
        "the report is written once every run has finished")
    assert interrupted(runs, ["torch-seed0"]).startswith("interrupted; 1 run had finished, ")


def test_a_stopped_compare_names_the_folder_that_holds_the_finished_runs(tmp_path, monkeypatch):
    """Ctrl-C after the first run finished: the line names each finished run and a folder that
    holds its metrics.json, the folder compare itself gave the run (the workers are stood in for)."""
    import parity.compare as compare_module
    from common.config import RunConfig
    given = []

    def fake_run_one(framework, backend, mode, config, out, log=print, prefix=""):
        if given:
            raise KeyboardInterrupt
        given.append(out)
        out.mkdir(parents=True)
        (out / "metrics.json").write_text("{}")
        return {"test_accuracy": 0.5, "epoch_seconds": [1.0]}

    monkeypatch.setattr(compare_module, "run_one", fake_run_one)
    with pytest.raises(KeyboardInterrupt) as caught:
        compare_module.compare(RunConfig(epochs=1), ["torch"], 1, "faithful", tmp_path / "cmp", log=lambda line: None)
    match = re.fullmatch(r"interrupted; 1 run had finished, each with its metrics\.json in (\S+): (\S+); the report "
                         r"is written once every run has finished", str(caught.value))
    assert match, str(caught.value)
    folder, name = match.groups()
    assert (Path(folder) / name / "metrics.json").is_file() and Path(folder) / name == given[0]


def test_a_verdict_without_a_spread_says_it_cannot_be_told():
    """One seed (either side), or a spread that is not a number, never gives 'beyond the noise'."""
    from parity.compare import verdict

    def row(accuracies, std):
        return {"test_accuracy": accuracies, "mean": sum(accuracies) / len(accuracies), "std": std}

    ref = row([0.80, 0.82], 0.0141)
    one_seed = "one seed: noise cannot be told apart (use --seeds 3 or more)"
    assert verdict(row([0.70], float("nan")), ref) == one_seed
    assert verdict(row([0.70, 0.70], 0.0), row([0.81], float("nan"))) == one_seed  # --backends jax,jax did this
    assert verdict(row([0.70, 0.72], float("nan")), ref).startswith("cannot be told: the spread")
    assert verdict(row([0.70, 0.72], 0.0141), ref) == "-10.00 pp, beyond the noise (2 SE = 2.82 pp)"
    assert verdict(row([0.80, 0.82], 0.0141), ref) == "+0.00 pp, within the noise (2 SE = 2.82 pp)"


def test_duplicate_backends_are_refused_after_normalising():
    from common.errors import UserError
    from parity.compare import parse_backends
    assert parse_backends(" JAX , torch") == ["jax", "torch"]
    for text in ("jax,jax", "JAX,jax", "torch, Torch ,jax"):
        with pytest.raises(UserError, match=r"^--backends names (jax|torch) twice "):
            parse_backends(text)
