"""Benchmarks: seconds per epoch of the notebook's recipe on every framework, side by side.

    python -m benchmarks.epoch_time            # the table in benchmarks/RESULTS.md (about 4 min on 2 cores)
    python -m benchmarks.epoch_time --quick    # a rough table in under a minute

Timings live here, never in the tests: ``tests/test_benchmark_smoke.py`` only checks
that the benchmark runs and reports sane numbers.
"""
