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
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| PyTorch (native) |" in result.stdout  # the Markdown table

    report = json.loads(out.read_text())
    assert report["recipe"]["batch_size"] == 8192 and report["recipe"]["rounds"] == 2
    assert report["machine"]["cores"] >= 1
    torch_path = report["paths"]["torch"]
    assert "error" not in torch_path
    assert torch_path["train_examples"] == 2048 - round(2048 * 0.1)
    assert len(torch_path["round_seconds_per_epoch"]) == 2
    for key in ("seconds_per_epoch", "cpu_seconds_per_epoch", "peak_rss_mib", "notebook_recipe_seconds"):
        assert math.isfinite(torch_path[key]) and torch_path[key] > 0, key
    assert all(s > 0 for s in torch_path["epoch_seconds"])
    assert 0 <= torch_path["data_share"] <= 1
    assert torch_path["ratio_to_torch"] == 1.0
    assert torch_path["device"]
    assert torch_path["settings"]["torch_threads"] >= 1
