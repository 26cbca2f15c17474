"""The benchmark runs end to end and reports sane numbers (timings belong in benchmarks/, not here)."""
import json
import math
import subprocess
import sys

from tests.conftest import ROOT


def test_benchmark_quick_run_writes_sane_json(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.epoch_time", "--quick", "--paths", "torch", "--subset", "2048",
         "--variant", "torch:prefetch=false", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| PyTorch (native) |" in result.stdout  # the Markdown table

    report = json.loads(out.read_text())
    assert report["recipe"]["batch_size"] == 8192 and report["recipe"]["rounds"] == 2
    assert report["machine"]["cores"] >= 1
    assert report["machine"]["cpu"] and isinstance(report["machine"]["vector_extensions"], list)
    assert len(report["machine"]["load_average"]) == 3 and len(report["machine"]["load_average_end"]) == 3
    assert report["machine"]["versions"]["torch"].startswith("2.13.0")
    assert result.stdout.startswith("machine: ") and "load average" in result.stdout
    torch_path = report["paths"]["torch"]
    assert "error" not in torch_path
    assert torch_path["train_examples"] == 2048 - round(2048 * 0.1)
    assert len(torch_path["round_seconds_per_epoch"]) == 2
    for key in ("seconds_per_epoch", "cpu_seconds_per_epoch", "peak_rss_mib", "notebook_recipe_seconds"):
        assert math.isfinite(torch_path[key]) and torch_path[key] > 0, key
    assert all(s > 0 for s in torch_path["epoch_seconds"])
    assert 0 <= torch_path["data_share"] <= 1
    assert torch_path["ratio_to_torch"] == 1.0
    # a second entry (the same loop without read-ahead): its ratio is its own time over PyTorch's
    other = report["paths"]["torch [prefetch=False]"]
    assert "error" not in other and math.isfinite(other["seconds_per_epoch"]) and other["seconds_per_epoch"] > 0
    assert other["seconds_per_epoch"] != torch_path["seconds_per_epoch"]  # else the ratio below proves nothing
    assert other["ratio_to_torch"] == other["seconds_per_epoch"] / torch_path["seconds_per_epoch"]
    assert torch_path["device"]
    assert torch_path["settings"]["torch_threads"] >= 1


def test_cli_benchmark_times_the_real_command(tmp_path):
    """One round of the PyTorch command, 3 epochs on a slice: every figure present and consistent."""
    out = tmp_path / "cli.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.cli_time", "--paths", "torch", "--epochs", "3", "--rounds", "1",
         "--subset", "2048", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| PyTorch (native) |" in result.stdout
    report = json.loads(out.read_text())
    assert report["epochs"] == 3 and report["rounds"] == 1
    torch_path = report["paths"]["torch"]
    assert "error" not in torch_path and torch_path["rounds"] == 1
    run = torch_path["runs"][0]
    assert len(run["epoch_seconds"]) == 3 and len(run["arrivals"]) == 3
    assert run["arrivals"] == sorted(run["arrivals"]) and run["arrivals"][-1] < run["seconds"]
    # line to line = the epoch's own seconds + the command's work outside it
    assert math.isclose(torch_path["per_epoch"], torch_path["epoch_line"] + torch_path["outside"], abs_tol=1e-9)
    assert 0 < torch_path["epoch_line"] <= torch_path["per_epoch"] < run["seconds"]
    assert torch_path["startup"] > 0 and torch_path["whole_run"] == run["seconds"]
    assert torch_path["settings"].startswith("speed settings (PyTorch): torch threads=")
